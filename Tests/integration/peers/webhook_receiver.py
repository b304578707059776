"""Webhook receiver (README "Webhooks") on aiohttp, running its own event loop in a thread.

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

from loop_thread import AiohttpAppThread
from waiting import wait_on


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


def recorded_request(method: str, path: str, headers: dict, body: bytes) -> dict:
    """What a receiver records of a request: arrival time, method, path, headers, body (text,
    and `raw`: the exact bytes, which a signature covers), JSON."""
    entry = {
        "t": time.monotonic(),
        "method": method,
        "path": path,
        "headers": headers,
        "body": body.decode("utf-8", "replace"),
        "raw": bytes(body),
    }
    try:
        entry["json"] = json.loads(body)
    except ValueError:
        entry["json"] = None
    return entry


def event_type_of(entry: dict) -> str | None:
    return entry["json"].get("type") if isinstance(entry["json"], dict) else None


class RequestLog:
    """The requests a receiver has recorded (appended under `_cond`, which is notified),
    and waiting for webhook events among them."""

    def __init__(self):
        self.requests: list[dict] = []
        self._cond = threading.Condition()

    def events(self, event_type: str | None = None) -> list[dict]:
        with self._cond:
            return [r for r in self.requests if event_type is None or event_type_of(r) == event_type]

    def wait_for_events(self, event_type: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        with self._cond:
            wait_on(self._cond, lambda: len(self.events(event_type)) >= count, timeout,
                    lambda: f"waited {timeout}s for {count} x {event_type}; got {[r['json'] for r in self.requests]}")
            return self.events(event_type)


class WebhookReceiver(RequestLog):
    def __init__(self, port: int = 0, record_path: str | None = None, ssl_context=None):
        """With `ssl_context` (an `ssl.SSLContext`) the receiver serves HTTPS."""
        super().__init__()
        self.scheme = "https" if ssl_context else "http"
        self.port = port
        self.record_path = record_path
        self.default = Reply()
        self._plans: dict[str, list[Reply]] = {}
        self._app = AiohttpAppThread("webhook receiver", self._handle, port,
                                     client_max_size=16 * 1024 * 1024, ssl_context=ssl_context)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/events"

    def respond(self, event_type: str, *replies: Reply) -> None:
        """Queue replies for an event type, used in order; afterwards the default applies."""
        flat: list[Reply] = []
        for r in replies:
            flat.extend(r if isinstance(r, list) else [r])
        with self._cond:
            self._plans.setdefault(event_type, []).extend(flat)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry = recorded_request(request.method, request.path_qs,
                                 {k: v for k, v in request.headers.items()}, body)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        entry["peer_port"] = peer[1] if peer else None  # one port: one (kept-alive) connection
        with self._cond:
            plan = self._plans.get(event_type_of(entry)) or []
            reply = plan.pop(0) if plan else self.default
            entry["replied"] = reply.status
            self.requests.append(entry)
            self._cond.notify_all()
        if self.record_path:
            with open(self.record_path, "a") as fh:
                fh.write(json.dumps({k: v for k, v in entry.items() if k != "raw"}) + "\n")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, body=reply.body.encode(), content_type=None,
                            headers={"Content-Type": reply.content_type})

    def start(self) -> "WebhookReceiver":
        self.port = self._app.start()
        return self

    def stop(self) -> None:
        self._app.stop()


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
