"""STS over streaming HTTP (README "STS protocol") on aiohttp, running its own event loop in a thread.

    sts = HttpStreamSts(reply=pattern_pcm(16_100), write_size=333).start()
    ... STS_URL=sts.url (http://127.0.0.1:<port>/stream) ...
    req = sts.wait_request()                 # the first POST
    sts.wait_body(req, 32_000)               # caller audio received so far (bytearray)
    sts.wait_ended(req)                      # "eof" (last chunk seen) or "error: ..."
    sts.stop()

Each request is recorded: method, path (with query), headers (raw, in order), the request
body as it streams in, when and how it ended. The answer is a streamed 200 `audio/l16`
response: `reply` written in `write_size` pieces (odd sizes split samples across writes),
then held open until the request body ends, unless `finish_after_reply` (then the response
ends at once: the STS hanging up). With `reply_after_bytes` the reply waits until that much
caller audio has arrived. A `status` other than 200 is answered at once with that status.
"""

from __future__ import annotations

import asyncio
import threading
import time

from aiohttp import web

from loop_thread import AiohttpAppThread
from waiting import wait_on


class HttpStreamSts:
    def __init__(self, reply: bytes = b"", write_size: int = 320, status: int = 200,
                 finish_after_reply: bool = False, path: str = "/stream", reply_after_bytes: int = 0,
                 ssl_context=None):
        self.scheme = "https" if ssl_context else "http"
        self.reply = reply
        self.write_size = write_size
        self.status = status
        self.finish_after_reply = finish_after_reply
        self.path = path
        self.reply_after_bytes = reply_after_bytes
        self.port = 0
        self.requests: list[dict] = []
        self._cond = threading.Condition()
        self._app = AiohttpAppThread("streaming HTTP STS", self._handle,
                                     client_max_size=64 * 1024 * 1024, shutdown_timeout=1.0,
                                     ssl_context=ssl_context)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    # ------------------------------------------------------------------ server
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        entry = {
            "t": time.monotonic(),
            "method": request.method,
            "path": request.path_qs,
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            "body": bytearray(),
            "ended": None,
            "t_end": None,
            "sent": 0,
        }
        with self._cond:
            self.requests.append(entry)
            self._cond.notify_all()

        if self.status != 200:
            return web.Response(status=self.status, text="planned failure")
        enough = asyncio.Event()

        async def read_body():
            try:
                async for data in request.content.iter_any():
                    with self._cond:
                        entry["body"] += data
                        self._cond.notify_all()
                    if len(entry["body"]) >= self.reply_after_bytes:
                        enough.set()
                how = "eof"
            except Exception as exc:  # noqa: BLE001 - recorded for the test to judge
                how = f"error: {exc!r}"
            with self._cond:
                entry["ended"] = how
                entry["t_end"] = time.monotonic()
                self._cond.notify_all()
            enough.set()

        reader = asyncio.create_task(read_body())
        if self.reply_after_bytes <= 0:
            enough.set()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "audio/l16"})
        try:
            await resp.prepare(request)
            await enough.wait()
            for off in range(0, len(self.reply), self.write_size):
                await resp.write(self.reply[off:off + self.write_size])
                with self._cond:
                    entry["sent"] = off + len(self.reply[off:off + self.write_size])
            if not self.finish_after_reply:
                await reader
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError, OSError):
            pass
        if not reader.done():
            await reader
        return resp

    def start(self) -> "HttpStreamSts":
        self.port = self._app.start()
        return self

    def stop(self) -> None:
        self._app.stop()

    # ------------------------------------------------------------------ inspection
    def _wait(self, predicate, timeout: float, what: str):
        def failure() -> str:
            summary = [{k: (len(v) if k == "body" else v) for k, v in r.items()} for r in self.requests]
            return f"HTTP STS: timed out after {timeout}s waiting for {what}; requests: {summary}"

        return wait_on(self._cond, predicate, timeout, failure)

    def wait_request(self, index: int = 0, timeout: float = 5.0) -> dict:
        return self._wait(lambda: self.requests[index] if len(self.requests) > index else None,
                          timeout, f"request #{index + 1}")

    def wait_body(self, entry: dict, nbytes: int, timeout: float = 5.0) -> bytes:
        self._wait(lambda: len(entry["body"]) >= nbytes, timeout, f"{nbytes} body bytes")
        with self._cond:
            return bytes(entry["body"])

    def wait_ended(self, entry: dict, timeout: float = 5.0) -> str:
        return self._wait(lambda: entry["ended"], timeout, "the request body to end")


def header(entry: dict, name: str) -> list[str]:
    return [v for k, v in entry["headers"] if k.lower() == name.lower()]
