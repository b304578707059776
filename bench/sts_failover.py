#!/usr/bin/env python3
"""STS failover gap under load: N calls on STS A (STS_URL lists A then B), SIGKILL A, every
call must fail over to B. Measures, per call, how long the caller heard no echo (from the
kill to the echo of the first frame it sent after the kill) and the server's own `gap_ms` (from the loss to the
new connection open, read from its `STS failover:` log lines); prints p50/p99/max of both.

    python3 bench/sts_failover.py --calls 100 [--sts node|python] [--bin .build/release/avr-core]

The callers are one single-threaded process (this one, epoll), so arrival times carry no
GIL contention; the STS peers are the integration suite's (`Tests/integration/peers`).
Results also go to `bench/results/sts-failover-<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "integration" / "peers"))
from audio import marked_frame, parse_marker  # noqa: E402
from sts_proc import StsPeer  # noqa: E402

FAILOVER_RE = re.compile(r"\[([0-9a-f-]{36})\] STS failover: .* after (\d+) ms$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


class Caller:
    def __init__(self, index: int, port: int):
        self.index = index
        self.uuid = str(uuidlib.uuid4())
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(struct.pack(">BH", 0x01, 16) + uuidlib.UUID(self.uuid).bytes)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.echoes: list[tuple[float, int]] = []  # (arrival, sequence number) of each echoed frame
        self.ended: float | None = None

    def send(self, seq: int) -> None:
        if self.ended is None:
            try:
                self.sock.send(struct.pack(">BH", 0x10, 320) + marked_frame(self.index, seq))
            except (BlockingIOError, OSError):
                pass

    def readable(self, now: float) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.ended = self.ended or now
            return
        self.buf += data
        while len(self.buf) >= 3:
            kind, length = struct.unpack_from(">BH", self.buf, 0)
            if len(self.buf) < 3 + length:
                break
            payload = bytes(self.buf[3:3 + length])
            del self.buf[:3 + length]
            if kind == 0x00:
                self.ended = self.ended or now
            elif kind == 0x10 and (mark := parse_marker(payload)) is not None:
                self.echoes.append((now, mark[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--sts", choices=["node", "python"], default="node")
    parser.add_argument("--bin", default=str(REPO / ".build" / "release" / "avr-core"))
    parser.add_argument("--after", type=float, default=3.0, help="seconds to listen after the kill")
    args = parser.parse_args()

    a, b = StsPeer(args.sts, "echo").start(), StsPeer(args.sts, "echo").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STS_")}
    env.update(PORT=str(port), STS_URL=f"{a.url} {b.url}", DRAIN_TIMEOUT="0")
    env.pop("HTTP_PORT", None)
    env.pop("WEBHOOK_URL", None)
    server = subprocess.Popen([args.bin], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    listening = threading.Event()

    def pump():
        for raw in iter(server.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if "AudioSocket Server listening" in line:
                listening.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not listening.wait(10):
            raise SystemExit(f"avr-core did not start: {lines[-5:]}")
        callers = [Caller(i, port) for i in range(args.calls)]
        sel = selectors.DefaultSelector()
        for c in callers:
            sel.register(c.sock, selectors.EVENT_READ, c)
        t0 = time.monotonic()
        seq = 0
        killed: float | None = None
        first_after = 0
        warm_deadline = t0 + 30
        while True:
            now = time.monotonic()
            due = t0 + seq * 0.020
            if now >= due:
                for c in callers:
                    c.send(seq)
                seq += 1
            if killed is None and all(len(c.echoes) >= 10 for c in callers):
                killed, first_after = time.monotonic(), seq
                os.kill(a.proc.pid, signal.SIGKILL)  # our own child, by PID
            if killed is None and now > warm_deadline:
                raise SystemExit("not every call heard its echo within 30 s")
            if killed is not None and now > killed + args.after:
                break
            for key, _ in sel.select(timeout=max(0.0, t0 + seq * 0.020 - time.monotonic())):
                key.data.readable(time.monotonic())
        caller_gaps = []
        never = 0
        for c in callers:
            # Frames sent after the kill (what was queued before it plays out first).
            after = [t for t, s in c.echoes if s >= first_after]
            if after:
                caller_gaps.append(after[0] - killed)
            else:
                never += 1
        ended = sum(1 for c in callers if c.ended is not None)
        server_gaps = [int(m.group(2)) for m in map(FAILOVER_RE.search, lines) if m]
        result = {
            "calls": args.calls, "sts": args.sts, "failovers_logged": len(server_gaps),
            "calls_ended": ended, "calls_never_resumed": never,
            "caller_gap_ms": {"p50": percentile(caller_gaps, 0.5) * 1000, "p99": percentile(caller_gaps, 0.99) * 1000,
                              "max": max(caller_gaps, default=float("nan")) * 1000},
            "server_gap_ms": {"p50": percentile(server_gaps, 0.5), "p99": percentile(server_gaps, 0.99),
                              "max": max(server_gaps, default=float("nan"))},
        }
        print(f"{args.calls} calls on STS A ({args.sts}), A SIGKILLed: {len(server_gaps)} failovers logged, "
              f"{ended} calls ended, {never} never heard their echo again")
        print(f"caller gap (kill -> first echo after it): p50 {result['caller_gap_ms']['p50']:.0f} ms, "
              f"p99 {result['caller_gap_ms']['p99']:.0f} ms, max {result['caller_gap_ms']['max']:.0f} ms")
        print(f"server gap_ms (loss -> new connection open): p50 {result['server_gap_ms']['p50']} ms, "
              f"p99 {result['server_gap_ms']['p99']} ms, max {result['server_gap_ms']['max']} ms")
        out = REPO / "bench" / "results" / f"sts-failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {out.relative_to(REPO)}")
        for c in callers:
            c.sock.close()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        for peer in (a, b):
            peer.stop()
            try:
                os.unlink(peer.record_path)
            except OSError:
                pass


if __name__ == "__main__":
    main()
