"""Helpers for the webhook and streaming-HTTP STS tests.

- envelope and pacing checks for recorded webhook requests and received audio.
- `RawReceiver`: a raw-socket webhook receiver for what aiohttp cannot do on purpose:
  answer half a response and close, or never answer at all.
- `ScriptedSts`: a WebSocket STS (Python `websockets`) in a thread that answers `init`
  with a fixed list of messages (transcripts, interruption...) and records connections.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import statistics
import threading

import pytest

from conftest import started_peers
from helpers import check_timing
from loop_thread import LoopThread
from waiting import wait_on
from webhook_receiver import RequestLog, recorded_request

ISO_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


# --------------------------------------------------------------------------- small helpers
def header(entry: dict, name: str) -> str | None:
    """Case-insensitive header of a recorded request (dict of headers)."""
    for k, v in entry["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def of_call(entries: list[dict], uuid: str) -> list[dict]:
    return [e for e in entries if isinstance(e.get("json"), dict) and e["json"].get("uuid") == uuid]


def types_of(entries: list[dict]) -> list[str]:
    return [e["json"]["type"] for e in entries]


def check_envelope(entry: dict, uuid: str, etype: str, payload: dict) -> None:
    """Method, content type, the exact envelope keys, uuid, type, payload, timestamp."""
    assert entry["method"] == "POST", entry
    ct = header(entry, "Content-Type")
    assert ct is not None and ct.split(";")[0].strip().lower() == "application/json", f"Content-Type {ct!r}"
    doc = entry["json"]
    assert isinstance(doc, dict), f"body is not a JSON object: {entry['body']!r}"
    assert set(doc) == {"uuid", "type", "timestamp", "payload"}, f"envelope keys {sorted(doc)}"
    assert doc["uuid"] == uuid and doc["type"] == etype, doc
    assert doc["payload"] == payload, f"{etype} payload {doc['payload']!r}, expected {payload!r}"
    ts = doc["timestamp"]
    assert isinstance(ts, str) and ISO_MS_UTC.match(ts), f"timestamp {ts!r} is not ISO-8601 UTC with milliseconds"
    when = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    skew = abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds())
    assert skew < 30, f"timestamp {ts} is {skew:.1f}s away from now"


CALL_END_REASONS = {"caller_hangup", "caller_closed", "caller_error", "protocol_error", "sts_closed", "sts_failed",
                    "shutdown"}
QUALITY_FIGURES = ["codec", "frames_in", "frames_out", "frames_dropped", "frames_late", "max_queue_ms",
                   "sts_connect_ms", "first_audio_ms", "playout_added_max_ms", "playout_paid_back_ms", "playout_stalls",
                   "playout_prompt_frames", "playout_short_frames", "playout_catch_up_frames"]
MAYBE_ABSENT = {"sts_connect_ms", "asr_connect_ms", "first_audio_ms"}
# The speech backend a call talked to; null when none was made (docs/PROTOCOLS.md).
CALL_END_BACKENDS = {"sts-websocket", "sts-http", "pipeline", "echo", None}
ANY = object()


def check_call_ended(entry: dict, uuid: str, reasons: str | set[str], backend: str | None | object = ANY) -> dict:
    """The `call_ended` envelope and payload (docs/PROTOCOLS.md, "call_ended"): the reason
    (one of `reasons`), the backend (`backend` when given), a detail, the duration and every
    quality figure, in order, with its type. Returns the payload."""
    allowed = {reasons} if isinstance(reasons, str) else set(reasons)
    payload = entry["json"]["payload"]
    check_envelope(entry, uuid, "call_ended", payload)
    assert list(payload) == ["reason", "backend", "detail", "duration_ms", "quality"], \
        f"call_ended payload keys {list(payload)}"
    assert payload["reason"] in CALL_END_REASONS, payload
    assert payload["reason"] in allowed, f"call_ended reason {payload['reason']!r}, expected {sorted(allowed)}: {payload}"
    assert payload["backend"] in CALL_END_BACKENDS, payload
    if backend is not ANY:
        assert payload["backend"] == backend, f"call_ended backend {payload['backend']!r}, expected {backend!r}: {payload}"
    assert isinstance(payload["detail"], str) and payload["detail"], payload
    assert isinstance(payload["duration_ms"], int) and payload["duration_ms"] >= 0, payload
    quality = payload["quality"]
    # The connection figure names its leg: `asr_connect_ms` in pipeline mode (docs/PROTOCOLS.md).
    names = ["sts_connect_ms" if n == "asr_connect_ms" else n for n in quality]
    assert names == QUALITY_FIGURES, f"quality figures {list(quality)}"
    assert not ("sts_connect_ms" in quality and "asr_connect_ms" in quality), quality
    for name, value in quality.items():
        if name == "codec":
            assert isinstance(value, str) and value, quality
        elif name in MAYBE_ABSENT and value is None:
            continue
        else:
            assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, f"{name}={value!r}"
    return payload


def quality_line(srv, uuid: str) -> dict[str, str]:
    """The call's `Call quality` log line (text format) as key -> value."""
    m = srv.wait_for_log(r"^\[INFO\]: \[" + uuid + r"\] Call quality (.*)$")
    return dict(kv.split("=", 1) for kv in m.group(1).split())


def assert_matches_quality_line(payload: dict, line: dict[str, str]) -> None:
    """call_ended and the quality line report the same figures (absent in the line = null)."""
    assert line["end_reason"] == payload["reason"], (line, payload)
    assert line["backend"] == (payload["backend"] or "none"), (line, payload)
    assert int(line["duration_ms"]) == payload["duration_ms"], (line, payload)
    for name, value in payload["quality"].items():
        if value is None:
            assert name not in line, f"{name} is null in call_ended but {line.get(name)} in the quality line"
        else:
            assert line.get(name) == str(value), f"{name}: call_ended {value!r}, quality line {line.get(name)!r}"
    assert set(line) == {"end_reason", "backend", "duration_ms"} | {k for k, v in payload["quality"].items() if v is not None}, line


def pacing(ts: list[float]) -> dict:
    """Mean interval, p99 |interval - 20 ms|, max interval, for arrival times (seconds)."""
    iv = [b - a for a, b in zip(ts, ts[1:])]
    dev = sorted(abs(x - 0.020) for x in iv)
    return {
        "frames": len(ts),
        "mean": (ts[-1] - ts[0]) / (len(ts) - 1),
        "p99_jitter": dev[min(len(dev) - 1, int(0.99 * len(dev)))],
        "max_gap": max(iv),
        "median": statistics.median(iv),
    }


def assert_paced(ts: list[float], label: str = "", lag=None, to_wall: float = 0.0) -> dict:
    """`ts` (receive times) on the 20 ms grid: mean interval within 1 ms, no gap over 100 ms.
    With `lag` (a running `HarnessLag`), the bounds widen by the worst wake-up lateness this
    machine showed over the same window (the mean's by twice that over the window's length):
    only the server's own lateness counts. `to_wall` is
    what turns `ts` into wall-clock times (0 for kernel receive times; time.time() -
    time.monotonic() for monotonic ones)."""
    st = pacing(ts)
    machine = lag.bounds(ts[0] + to_wall - 0.1, ts[-1] + to_wall)[1] if lag is not None else 0.0
    note = f"; machine lag up to {machine * 1000:.1f} ms" if lag is not None else ""
    # The mean runs from the first frame to the last: either may be late by the machine's lag.
    slack = 2 * machine / max(1, len(ts) - 1)
    check_timing(abs(st["mean"] - 0.020) <= 0.001 + slack, f"{label} mean interval {st['mean'] * 1000:.3f} ms ({st}{note})")
    check_timing(st["max_gap"] <= 0.100 + machine, f"{label} a gap of {st['max_gap'] * 1000:.1f} ms in the audio ({st}{note})")
    return st


# --------------------------------------------------------------------------- raw receiver
class RawReceiver(RequestLog):
    """A webhook receiver speaking raw HTTP/1.1 on asyncio streams, in a thread.

    Each request takes the next action of `script`, then `default`:
      ("ok", body)        200 with a JSON body, connection kept alive
      ("half_head",)      the first half of a status line and headers, then close
      ("half_body", body) complete head announcing len(body), half of the body, then close
      ("hang",)           never answer; the connection stays open until the client closes it
    Every request is recorded (time, method, path, headers, body, json) when it has arrived.
    """

    def __init__(self, script: list[tuple] | None = None, default: tuple = ("ok", '{"ok":true}')):
        super().__init__()
        self.script = list(script or [])
        self.default = default
        self.port = 0
        self.connections = 0
        self._server = None
        self._loop_thread = LoopThread("raw receiver")
        self._writers: set = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._cond:
            self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip()] = v.strip()
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                try:
                    body = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                entry = recorded_request(method, path, headers, body)
                with self._cond:
                    action = self.script.pop(0) if self.script else self.default
                    entry["action"] = action[0]
                    self.requests.append(entry)
                    self._cond.notify_all()
                if action[0] == "ok":
                    data = action[1].encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                    await writer.drain()
                elif action[0] == "half_head":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
                    await writer.drain()
                    return
                elif action[0] == "half_body":
                    data = action[1].encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:len(data) // 2])
                    await writer.drain()
                    return
                elif action[0] == "hang":
                    await reader.read()  # until the client gives up and closes
                    return
                else:
                    raise ValueError(action)
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> "RawReceiver":
        async def setup():
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]

        async def cleanup():
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        self._loop_thread.start(setup, cleanup)
        return self

    def stop(self) -> None:
        self._loop_thread.stop()


@pytest.fixture
def raw_receiver():
    """Factory: `hooks = raw_receiver(script=[...], default=...)`; stopped at teardown."""
    yield from started_peers(RawReceiver)


# --------------------------------------------------------------------------- scripted STS
class ScriptedSts:
    """WebSocket STS that answers the first `init` with `on_init` (JSON messages, in order)."""

    def __init__(self, on_init: list[dict]):
        self.on_init = on_init
        self.port = 0
        self.connections: list[dict] = []
        self._cond = threading.Condition()
        self._loop_thread = LoopThread("scripted STS")
        self._server = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        conn = {"path": ws.request.path, "messages": [], "closed": False}
        with self._cond:
            self.connections.append(conn)
            self._cond.notify_all()
        try:
            async for data in ws:
                msg = json.loads(data) if isinstance(data, str) else None
                with self._cond:
                    conn["messages"].append(msg)
                    self._cond.notify_all()
                if isinstance(msg, dict) and msg.get("type") == "init":
                    for out in self.on_init:
                        await ws.send(json.dumps(out))
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                conn["closed"] = True
                self._cond.notify_all()

    def start(self) -> "ScriptedSts":
        from websockets.asyncio.server import serve

        async def setup():
            self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None)
            self.port = self._server.sockets[0].getsockname()[1]

        async def cleanup():  # what leaving `async with serve(...)` does
            self._server.close()
            await self._server.wait_closed()

        self._loop_thread.start(setup, cleanup)
        return self

    def stop(self) -> None:
        self._loop_thread.stop()

    def wait_connection(self, timeout: float = 5.0) -> dict:
        return wait_on(self._cond, lambda: self.connections and self.connections[0], timeout,
                       lambda: "scripted STS: no connection")


@pytest.fixture
def scripted_sts():
    """Factory: `sts = scripted_sts(on_init)`; stopped at teardown."""
    yield from started_peers(ScriptedSts)
