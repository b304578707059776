"""An asyncio event loop of its own in a daemon thread, for peers that serve while a test
(plain blocking code) drives the server under test; `AiohttpAppThread` serves an aiohttp
handler that way.

    self._loop_thread = LoopThread("webhook receiver")
    self._loop_thread.start(setup, cleanup)   # returns once `setup` has finished on the loop
    ...
    self._loop_thread.stop()                  # `cleanup` runs on the loop, then it closes
"""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable

from aiohttp import web


class LoopThread:
    def __init__(self, what: str):
        self.what = what  # named in the error when the peer does not start
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, setup: Callable[[], Awaitable[None]],
              cleanup: Callable[[], Awaitable[None]] | None = None, timeout: float = 10.0) -> None:
        """Run `setup()` on a new loop in a new thread, then keep the loop running until `stop`;
        returns when `setup` is done (RuntimeError if not within `timeout`)."""
        self._thread = threading.Thread(target=self._run, args=(setup, cleanup), daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.what} did not start")

    def _run(self, setup, cleanup) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(setup())
        self._ready.set()
        self.loop.run_forever()
        if cleanup is not None:
            self.loop.run_until_complete(cleanup())
        self.loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (from any thread), let `cleanup` run, and wait for the thread."""
        if self.loop and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread:
            self._thread.join(timeout=timeout)


class AiohttpAppThread:
    """An aiohttp app on 127.0.0.1 whose every request (any method, any path) goes to
    `handler`, served from a `LoopThread`; `port` 0 picks a free one (read it after `start`)."""

    def __init__(self, what: str, handler, port: int = 0, client_max_size: int = 1024 ** 2,
                 ssl_context=None, **runner_kw):
        self.handler = handler
        self.ssl_context = ssl_context  # serves HTTPS when set
        self.port = port
        self.client_max_size = client_max_size
        self.runner_kw = runner_kw
        self._loop_thread = LoopThread(what)
        self._runner: web.AppRunner | None = None

    def start(self) -> int:
        """Serve; returns the port listened on."""
        async def setup():
            app = web.Application(client_max_size=self.client_max_size)
            app.router.add_route("*", "/{tail:.*}", self.handler)
            self._runner = web.AppRunner(app, access_log=None, **self.runner_kw)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        self._loop_thread.start(setup, lambda: self._runner.cleanup())
        return self.port

    def stop(self) -> None:
        self._loop_thread.stop()
