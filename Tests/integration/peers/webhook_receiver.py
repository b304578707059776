"""Webhook receiver (SPEC section 6) on aiohttp, running its own event loop in a thread.

    hooks = WebhookReceiver().start()
    hooks.respond("call_initiated", sts_url_reply("ws://127.0.0.1:7000"))
    hooks.respond("call_started", *fail(2))           # 500 twice, then the default
    ... hooks.url ...  hooks.wait_for_events("call_ended") ...  hooks.stop()

Every request (any method, any path) is recorded: method, path, headers, body, parsed JSON,
arrival time (time.monotonic()). Also runnable alone:
    webhook_receiver.py <port|0> <record.jsonl> [sts_url=<url>]   (prints LISTENING <port>)
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: str = '{"ok":true}'
    delay: float = 0.0
    content_type: str = "application/json"


def sts_url_reply(url: str) -> Reply:
    return Reply(200, json.dumps({"sts_url": url}))


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    r = reply or Reply()
    return Reply(r.status, r.body, seconds, r.content_type)


def fail(n: int, status: int = 500) -> list[Reply]:
    return [Reply(status, '{"error":"planned failure"}') for _ in range(n)]


def garbage() -> Reply:
    return Reply(200, "<<<this is not json", 0.0, "application/json")


class WebhookReceiver:
    def __init__(self, port: int = 0, record_path: str | None = None):
        self.port = port
        self.record_path = record_path
        self.requests: list[dict] = []
        self.default = Reply()
        self._plans: dict[str, list[Reply]] = {}
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def respond(self, event_type: str, *replies: Reply) -> None:
        """Queue replies for an event type, used in order; afterwards the default applies."""
        flat: list[Reply] = []
        for r in replies:
            flat.extend(r if isinstance(r, list) else [r])
        with self._cond:
            self._plans.setdefault(event_type, []).extend(flat)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry = {
            "t": time.monotonic(),
            "method": request.method,
            "path": request.path_qs,
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        try:
            entry["json"] = json.loads(body)
        except ValueError:
            entry["json"] = None
        etype = entry["json"].get("type") if isinstance(entry["json"], dict) else None
        with self._cond:
            plan = self._plans.get(etype) or []
            reply = plan.pop(0) if plan else self.default
            entry["replied"] = reply.status
            self.requests.append(entry)
            self._cond.notify_all()
        if self.record_path:
            with open(self.record_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, body=reply.body.encode(), content_type=None,
                            headers={"Content-Type": reply.content_type})

    def start(self) -> "WebhookReceiver":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("webhook receiver did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def setup():
            app = web.Application(client_max_size=16 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(setup())
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(timeout=5)

    def events(self, event_type: str | None = None) -> list[dict]:
        with self._cond:
            return [r for r in self.requests
                    if event_type is None or (isinstance(r["json"], dict) and r["json"].get("type") == event_type)]

    def wait_for_events(self, event_type: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events(event_type)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [r["json"] for r in self.requests]
                    raise AssertionError(f"waited {timeout}s for {count} x {event_type}; got {got}")
                self._cond.wait(min(left, 0.05))
            return self.events(event_type)


def main() -> None:
    port, record, *rest = sys.argv[1:]
    hooks = WebhookReceiver(int(port), record)
    for kv in rest:
        k, _, v = kv.partition("=")
        if k == "sts_url":
            hooks.respond("call_initiated", *[sts_url_reply(v)] * 1000)
    hooks.start()
    print(f"LISTENING {hooks.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        hooks.stop()


if __name__ == "__main__":
    main()
