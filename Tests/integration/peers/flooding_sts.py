"""An STS that floods: after the WebSocket handshake it writes `count` copies of one text
message, `rate` a second (None: as fast as the server under test reads them) (raw asyncio streams, frames built once,
so the peer is not what limits the rate), then `last` (a marker message, if given), then keeps
the connection open until the server closes it. `finished` is set when every frame has been written; `written` counts them.

Hostile on purpose: one per-message log line (or webhook) per frame is what it provokes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading

from loop_thread import LoopThread

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def text_frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return head + payload


class FloodingSts:
    def __init__(self, message: dict, count: int, last: dict | None = None, rate: float | None = None,
                 batch: int = 2000):
        self.frame = text_frame(json.dumps(message).encode())
        self.last = text_frame(json.dumps(last).encode()) if last is not None else b""
        self.count = count
        self.rate = rate
        self.batch = batch
        self.port = 0
        self.written = 0
        self.connections = 0
        self.finished = threading.Event()
        self._loop_thread = LoopThread("flooding STS")
        self._server = None
        self._writers: set = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            key = next(l.split(":", 1)[1].strip() for l in head.split("\r\n")
                       if l.lower().startswith("sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            chunk = self.frame * self.batch
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while self.written < self.count:
                if self.rate:  # on an absolute schedule
                    delay = t0 + self.written / self.rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                n = min(self.batch, self.count - self.written)
                writer.write(chunk if n == self.batch else self.frame * n)
                await writer.drain()
                self.written += n
            writer.write(self.last)
            await writer.drain()
            self.finished.set()
            while await reader.read(65536):  # the caller's audio, until the server closes
                pass
        except (ConnectionError, asyncio.IncompleteReadError, StopIteration):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> "FloodingSts":
        async def setup():
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        async def cleanup():
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        self._loop_thread.start(setup, cleanup)
        return self

    def stop(self) -> None:
        self._loop_thread.stop()
