#!/usr/bin/env python3
"""The STS peer again, on Python `websockets` (asyncio). Same CLI and record format as
sts_node.js:  sts_python.py <port|0> <mode> <record.jsonl> [key=value ...]

Modes: echo | mute | long | interrupt | close | closeframe
Options: accept_delay_ms, close_after (5), long_ms (3000), extra (0), chunk (640),
audio_ms (5000), interrupt_after_ms (300), second_after_ms (300, -1 none), second_ms (200).
With STS_TLS_CERT and STS_TLS_KEY (PEM files) in the environment it serves wss:// (ssl);
STS_TLS_MAX=1.2 caps the protocol at TLS 1.2.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audio import pattern_pcm  # noqa: E402

from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


def main() -> None:
    port, mode, record_path, *rest = sys.argv[1:]
    opts = {k: float(v) for k, v in (kv.split("=", 1) for kv in rest)}
    opt = lambda k, d: opts.get(k, d)  # noqa: E731
    fh = open(record_path, "a", buffering=1)

    def record(obj):
        obj["t"] = time.monotonic()
        fh.write(json.dumps(obj) + "\n")

    conn_ids = iter(range(1, 1_000_000))

    async def send_pcm(ws, conn, pcm, chunk, label):
        for off in range(0, len(pcm), chunk):
            await ws.send(json.dumps({"type": "audio", "audio": base64.b64encode(pcm[off:off + chunk]).decode()}))
        record({"conn": conn, "event": "sent", "type": "audio", "label": label, "bytes": len(pcm)})

    async def interrupt_later(ws, conn):
        await asyncio.sleep(opt("interrupt_after_ms", 300) / 1000)
        await ws.send(json.dumps({"type": "interruption"}))
        record({"conn": conn, "event": "sent", "type": "interruption", "json": {"type": "interruption"}})
        after = opt("second_after_ms", 300)
        if after >= 0:
            await asyncio.sleep(after / 1000)
            await send_pcm(ws, conn, pattern_pcm(int(opt("second_ms", 200)) * 16, second=True), 640, "second")

    async def process_request(connection, request):
        delay = opt("accept_delay_ms", 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        return None

    async def handler(ws):
        conn = next(conn_ids)
        tls = ws.transport.get_extra_info("ssl_object")
        record({"conn": conn, "event": "connection", "url": ws.request.path,
                "headers": dict(ws.request.headers.raw_items()),
                "tls": None if tls is None else {"version": tls.version(), "resumed": tls.session_reused}})
        count = 0
        init_seen = False
        tasks = []
        try:
            async for data in ws:
                count += 1
                entry = {"conn": conn, "event": "message", "binary": isinstance(data, bytes), "len": len(data)}
                msg = None
                if isinstance(data, str):
                    try:
                        msg = json.loads(data)
                    except ValueError:
                        entry["invalid_json"] = True
                    if isinstance(msg, dict):
                        entry["type"] = msg.get("type")
                        if msg.get("type") == "audio" and isinstance(msg.get("audio"), str):
                            entry["audio"] = msg["audio"]
                            entry["audio_len"] = len(base64.b64decode(msg["audio"]))
                        else:
                            entry["json"] = msg
                    else:
                        entry["text"] = data[:1000]
                record(entry)
                first = isinstance(msg, dict) and msg.get("type") == "init" and not init_seen
                if first:
                    init_seen = True
                if mode == "echo" and isinstance(msg, dict) and msg.get("type") == "audio":
                    await ws.send(json.dumps({"type": "audio", "audio": msg["audio"]}))
                elif mode == "close" and count >= opt("close_after", 5):
                    record({"conn": conn, "event": "terminate"})
                    ws.transport.abort()
                    break
                elif mode == "closeframe" and count >= opt("close_after", 5):
                    record({"conn": conn, "event": "close_sent", "code": 1000})
                    await ws.close(1000, "bye")
                    break
                if first and mode == "long":
                    pcm = pattern_pcm(int(opt("long_ms", 3000)) * 16 + int(opt("extra", 0)))
                    await send_pcm(ws, conn, pcm, int(opt("chunk", 640)), "long")
                elif first and mode == "interrupt":
                    await send_pcm(ws, conn, pattern_pcm(int(opt("audio_ms", 5000)) * 16), int(opt("chunk", 640)), "first")
                    tasks.append(asyncio.create_task(interrupt_later(ws, conn)))
        except ConnectionClosed:
            pass
        finally:
            for t in tasks:
                t.cancel()
            rcvd = ws.protocol.close_rcvd
            record({"conn": conn, "event": "close", "code": rcvd.code if rcvd else 1006,
                    "reason": rcvd.reason if rcvd else ""})

    async def run():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        tls = None
        if os.environ.get("STS_TLS_CERT"):
            import ssl
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(os.environ["STS_TLS_CERT"], os.environ["STS_TLS_KEY"])
            if os.environ.get("STS_TLS_MAX") == "1.2":
                tls.maximum_version = ssl.TLSVersion.TLSv1_2
        async with serve(handler, "127.0.0.1", int(port), process_request=process_request,
                         max_size=64 * 1024 * 1024, ping_interval=None, ssl=tls) as server:
            real = server.sockets[0].getsockname()[1]
            print(f"LISTENING {real}", flush=True)
            await stop.wait()
            server.close(close_connections=False)

    asyncio.run(run())
    fh.close()


if __name__ == "__main__":
    main()
