#!/usr/bin/env python3
"""Load generator for `bench/run.py --ingress websocket`: N simulated Asterisk WebSocket channels
(chan_websocket's protocol: MEDIA_START in plain text, slin media in binary frames, DTMF_END
events) on avr-core's `/media`, each sending a stamped 20 ms frame on its own 20 ms grid and
timing the echo. Prints one JSON line with the fields `avr-loadgen` prints (failed, lost,
wrong_call, stalls, calls_stalled, jitter, latency, dtmf_sent), so run.py's table reads both.

Python (asyncio, `websockets`): it costs more harness CPU than the Swift load generator, which
run.py reports separately; avr-core's CPU is measured on its own pid either way.
"""
import argparse
import asyncio
import json
import struct
import sys
import time
import uuid

from websockets.asyncio.client import connect

MARK = 20000


def frame(call_id, seq):
    body = bytearray(320)
    for i in range(160):
        struct.pack_into("<h", body, 2 * i, 3000 if (i // 10) % 2 else -3000)
    struct.pack_into("<hh", body, 0, MARK + (call_id % 10000), 1 + (seq % 30000))
    return bytes(body)


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


async def call(args, index, stats):
    u = str(uuid.uuid4())
    sent = {}
    received = []
    arrivals = []
    try:
        async with connect(f"ws://127.0.0.1:{args.http_port}/media?uuid={u}", compression=None, ping_interval=None,
                           max_size=None) as ws:
            await ws.send(f"MEDIA_START connection_id:bench channel:WebSocket/bench/{index} channel_id:{index}.1 "
                          "format:slin optimal_frame_size:320 ptime:20")

            async def reader():
                async for msg in ws:
                    if isinstance(msg, bytes):
                        now = time.monotonic()
                        arrivals.append(now)
                        if len(msg) >= 4:
                            mark, seq = struct.unpack_from("<hh", msg, 0)
                            if mark >= MARK:
                                if mark - MARK != index % 10000:
                                    stats["wrong_call"] += 1
                                elif seq in sent:
                                    received.append(seq)
                                    stats["latency"].append((now - sent[seq]) * 1000.0)

            task = asyncio.create_task(reader())
            start = time.monotonic()
            end = start + args.duration
            seq = 0
            next_dtmf = start + args.dtmf_every if args.dtmf_every else None
            while True:
                due = start + 0.020 * seq
                now = time.monotonic()
                if due >= end:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                sent[1 + seq % 30000] = time.monotonic()
                await ws.send(frame(index, seq))
                seq += 1
                if next_dtmf and time.monotonic() >= next_dtmf:
                    await ws.send(f"DTMF_END digit:5 channel_id:{index}.1")
                    stats["dtmf_sent"] += 1
                    next_dtmf += args.dtmf_every
            await asyncio.sleep(0.5)  # the last echoes
            task.cancel()
            stats["frames_sent"] += seq
            # Frames of the steady part that never came back.
            stats["lost"] += max(0, min(seq, 30000) - len(set(received)))
            # Jitter: each inter-arrival's deviation from 20 ms, after the first second.
            steady = [t for t in arrivals if t > start + 1.0]
            gaps = [(b - a) * 1000.0 for a, b in zip(steady, steady[1:])]
            stats["jitter"].extend(abs(g - 20.0) for g in gaps)
            stalls = sum(1 for g in gaps if g > 100.0)
            stats["stalls"] += stalls
            stats["calls_stalled"] += 1 if stalls else 0
            await ws.close()
    except Exception as exc:  # noqa: BLE001 - counted and reported
        stats["failed"] += 1
        print(f"call {index} failed: {exc!r}", file=sys.stderr)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--ramp", type=float, default=50.0)
    p.add_argument("--dtmf-every", type=float, default=0.0)
    args = p.parse_args()
    stats = {"failed": 0, "lost": 0, "wrong_call": 0, "stalls": 0, "calls_stalled": 0, "dtmf_sent": 0,
             "frames_sent": 0, "latency": [], "jitter": []}
    tasks = []
    for i in range(args.calls):
        tasks.append(asyncio.create_task(call(args, i, stats)))
        await asyncio.sleep(1.0 / args.ramp)
    await asyncio.gather(*tasks)
    out = {k: v for k, v in stats.items() if k not in ("latency", "jitter")}
    for key in ("latency", "jitter"):
        values = stats[key]
        out[key] = {"p50_ms": pct(values, 50), "p99_ms": pct(values, 99), "max_ms": max(values) if values else 0.0,
                    "count": len(values)}
    print(json.dumps(out))


asyncio.run(main())
