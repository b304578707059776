#!/usr/bin/env python3
"""Many simultaneous simulated Asterisk callers in one single-threaded process (epoll), so
arrival times are measured without GIL contention from the test process.

    load_callers.py <host> <port> <calls> <seconds> [speak_frames=10]

Each caller connects, sends its UUID message, then `speak_frames` 320-byte slin frames
(20 ms apart, so the server can detect the codec and start its paced stream), then only
listens. After `seconds` every caller hangs up (closes its socket) at once. Prints one JSON
object: {"uuids": [...], "arrivals": [[t, ...], ...], "sizes": [[n, ...], ...],
"connected": [t, ...], "hangup_at": t, "eof": [t|null, ...]} with times from
time.monotonic() (the same clock as the test process).
"""

from __future__ import annotations

import json
import math
import selectors
import socket
import struct
import sys
import time
import uuid as uuidlib


def frame(seq: int) -> bytes:
    n = 160
    pcm = struct.pack(f"<{n}h", *(int(3000 * math.sin(2 * math.pi * 300 * (seq * n + i) / 8000)) for i in range(n)))
    return struct.pack(">BH", 0x10, len(pcm)) + pcm


def main() -> None:
    host, port, n, seconds, *rest = sys.argv[1:]
    port, n, seconds = int(port), int(n), float(seconds)
    opts = dict(kv.split("=", 1) for kv in rest)
    speak = int(opts.get("speak_frames", 10))
    sel = selectors.DefaultSelector()
    socks, uuids, bufs = [], [], []
    arrivals: list[list[float]] = [[] for _ in range(n)]
    sizes: list[list[int]] = [[] for _ in range(n)]
    eof: list[float | None] = [None] * n
    connected = []
    for i in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        u = str(uuidlib.uuid4())
        s.sendall(struct.pack(">BH", 0x01, 16) + uuidlib.UUID(u).bytes)
        s.setblocking(False)
        connected.append(time.monotonic())
        socks.append(s)
        uuids.append(u)
        bufs.append(b"")
        sel.register(s, selectors.EVENT_READ, i)
    frames = [frame(k) for k in range(speak)]
    t0 = time.monotonic()
    end = t0 + seconds
    sent = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        next_send = t0 + sent * 0.020 if sent < speak else end
        if sent < speak and now >= next_send:
            for s in socks:
                try:
                    s.send(frames[sent])
                except OSError:
                    pass
            sent += 1
            continue
        for key, _ in sel.select(timeout=max(0.0, min(next_send, end) - now)):
            i = key.data
            t = time.monotonic()
            try:
                data = socks[i].recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                eof[i] = t
                sel.unregister(socks[i])
                continue
            buf = bufs[i] + data
            while len(buf) >= 3:
                kind, length = struct.unpack_from(">BH", buf, 0)
                if len(buf) < 3 + length:
                    break
                if 0x10 <= kind <= 0x18:
                    arrivals[i].append(t)
                    sizes[i].append(length)
                buf = buf[3 + length:]
            bufs[i] = buf
    hangup_at = time.monotonic()
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    json.dump({"uuids": uuids, "arrivals": arrivals, "sizes": sizes, "connected": connected,
               "hangup_at": hangup_at, "eof": eof}, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
