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
from audio import MARK, parse_marker, sine_pcm  # noqa: E402
from sts_proc import StsPeer  # noqa: E402

# A marked frame (call id, sequence number in its first two samples, as the suite's
# `marked_frame`), over one precomputed tone: computing a sine per frame for 100 calls would
# make this process, not the server, the bottleneck.
TONE = sine_pcm(320)


def marked(call_id: int, seq: int) -> bytes:
    return struct.pack(">BH", 0x10, 320) + struct.pack("<hh", MARK + call_id, 1 + seq) + TONE[4:]


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
                self.sock.send(marked(self.index, seq))
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
    parser.add_argument("--after", type=float, default=5.0, help="seconds to listen after the kill")
    parser.add_argument("--server-log", help="write the server's output to this file")
    parser.add_argument("--ramp", type=float, default=50.0, help="calls started per second (real calls do not all start in the same millisecond)")
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
        callers: list[Caller] = []
        sel = selectors.DefaultSelector()
        t0 = time.monotonic()
        seq = 0
        killed: float | None = None
        first_after = 0
        warm_deadline = t0 + args.calls / args.ramp + 10
        while True:
            now = time.monotonic()
            while len(callers) < args.calls and len(callers) < (now - t0) * args.ramp + 1:
                caller = Caller(len(callers), port)
                callers.append(caller)
                sel.register(caller.sock, selectors.EVENT_READ, caller)
            due = t0 + seq * 0.020
            if now >= due:
                for c in callers:
                    c.send(seq)
                seq += 1
            warm = len(callers) == args.calls and (all(len(c.echoes) >= 10 for c in callers) or now > warm_deadline)
            if killed is None and warm:
                killed, first_after = time.monotonic(), seq
                os.kill(a.proc.pid, signal.SIGKILL)  # our own child, by PID
            if killed is not None and now > killed + args.after:
                # Past the window, wait (up to twice as long again) for calls whose echo is
                # still in the harness's own socket buffers when the machine is loaded.
                if now > killed + 3 * args.after or all(
                        len(c.echoes) < 10 or (c.echoes and c.echoes[-1][1] >= first_after) for c in callers):
                    break
            for key, _ in sel.select(timeout=max(0.0, t0 + seq * 0.020 - time.monotonic())):
                key.data.readable(time.monotonic())
        caller_gaps, silences = [], []
        never = 0
        cold = [c for c in callers if len(c.echoes) < 10 and not any(t > killed for t, _ in c.echoes)]
        for c in callers:
            if c in cold:
                continue
            # Frames sent after the kill (what was queued before it plays out first).
            after = [t for t, s in c.echoes if s >= first_after]
            if after:
                caller_gaps.append(after[0] - killed)
            else:
                never += 1
            # The longest the caller heard no echo at all, from its last echo before the kill.
            times = [t for t, _ in c.echoes]
            before = [t for t in times if t <= killed]
            around = ([before[-1]] if before else []) + [t for t in times if t > killed]
            if len(around) > 1:
                silences.append(max(b - a for a, b in zip(around, around[1:])))
        ended = sum(1 for c in callers if c.ended is not None)
        server_gaps = [int(m.group(2)) for m in map(FAILOVER_RE.search, lines) if m]
        result = {
            "calls": args.calls, "calls_without_echo_before_kill": len(cold), "sts": args.sts,
            "failovers_logged": len(server_gaps),
            "calls_ended": ended, "calls_never_resumed": never,
            "caller_gap_ms": {"p50": percentile(caller_gaps, 0.5) * 1000, "p99": percentile(caller_gaps, 0.99) * 1000,
                              "max": max(caller_gaps, default=float("nan")) * 1000},
            "caller_silence_ms": {"p50": percentile(silences, 0.5) * 1000, "p99": percentile(silences, 0.99) * 1000,
                                  "max": max(silences, default=float("nan")) * 1000},
            "server_gap_ms": {"p50": percentile(server_gaps, 0.5), "p99": percentile(server_gaps, 0.99),
                              "max": max(server_gaps, default=float("nan"))},
        }
        print(f"harness: {len(callers)} callers, window {time.monotonic() - killed:.1f} s after the kill")
        print(f"{args.calls} calls on STS A ({args.sts}), A SIGKILLed: {len(server_gaps)} failovers logged, "
              f"{ended} calls ended, {never} never heard their echo again"
              + (f" ({len(cold)} calls heard no echo before the kill, left out)" if cold else ""))
        print(f"caller silence (longest time without echo around the kill): p50 {result['caller_silence_ms']['p50']:.0f} ms, "
              f"p99 {result['caller_silence_ms']['p99']:.0f} ms, max {result['caller_silence_ms']['max']:.0f} ms")
        print(f"caller gap (kill -> echo of the first frame sent after it, queued audio included): p50 {result['caller_gap_ms']['p50']:.0f} ms, "
              f"p99 {result['caller_gap_ms']['p99']:.0f} ms, max {result['caller_gap_ms']['max']:.0f} ms")
        print(f"server gap_ms (loss -> new connection open): p50 {result['server_gap_ms']['p50']} ms, "
              f"p99 {result['server_gap_ms']['p99']} ms, max {result['server_gap_ms']['max']} ms")
        out = REPO / "bench" / "results" / f"sts-failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {out.relative_to(REPO)}")
        for c in callers:
            c.sock.close()
    finally:
        if args.server_log:
            Path(args.server_log).write_text("\n".join(lines) + "\n")
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
