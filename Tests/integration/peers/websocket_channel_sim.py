"""Asterisk's WebSocket channel (chan_websocket, `Dial(WebSocket/<connection>/c(<codec>))`),
simulated from its source: it connects to avr-core's `/media` as a WebSocket client (masked
frames, Python `websockets`), sends `MEDIA_START` in the plain-text or JSON control format,
then media as binary frames (one 20 ms frame each, or split across TCP writes, or several
coalesced into one write) and events (`DTMF_END`, `MEDIA_XOFF`/`MEDIA_XON`, ...). It records
what avr-core sends: binary media frames (with arrival times) and text commands; like the
channel, it answers `HANGUP` by closing (1000) and `GET_STATUS` with `STATUS`.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

FRAME_BYTES = {"ulaw": 160, "alaw": 160, "slin": 320, "slin16": 640}


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One client frame (masked), for writes the library does not make (split, coalesced)."""
    key = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocketChannel:
    def __init__(self, port: int, fmt: str = "ulaw", control: str = "plain-text", uuid: str | None = None,
                 channel_variables: dict[str, str] | None = None, channel_id: str = "1733556000.42",
                 path: str = "/media", connection_id: str = "avr"):
        self.port = port
        self.fmt = fmt
        self.control = control
        self.uuid = uuid
        self.channel_variables = channel_variables or {}
        self.channel_id = channel_id
        self.path = path + (f"?uuid={uuid}" if uuid else "")
        self.connection_id = connection_id
        self.channel = f"WebSocket/{connection_id}/0x7f3a5c001234"
        self.ws = None
        self.media: list[tuple[float, bytes]] = []
        self.texts: list[tuple[float, str]] = []
        self.close_code: int | None = None
        self.ended_at: float | None = None
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> "WebSocketChannel":
        # Entered by hand: the connection outlives this call (closed by hangup/close_quietly).
        self.ws = connect(f"ws://127.0.0.1:{self.port}{self.path}", compression=None, max_size=None,
                          open_timeout=5, ping_interval=None, close_timeout=2).__enter__()
        self.ws.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def start(self) -> "WebSocketChannel":
        """Connects and sends MEDIA_START, as the channel does on `webchan_call`."""
        self.connect()
        self.send_text(self.media_start())
        return self

    def media_start(self) -> str:
        size = FRAME_BYTES.get(self.fmt, 160)
        if self.control == "json":
            return json.dumps({"event": "MEDIA_START", "connection_id": self.connection_id, "channel": self.channel,
                               "channel_id": self.channel_id, "format": self.fmt, "optimal_frame_size": size,
                               "ptime": 20, "channel_variables": self.channel_variables}, separators=(",", ":"))
        return (f"MEDIA_START connection_id:{self.connection_id} channel:{self.channel} channel_id:{self.channel_id} "
                f"format:{self.fmt} optimal_frame_size:{size} ptime:20")

    def event(self, name: str, **fields) -> str:
        """An event with no data (MEDIA_XON, ...) or with fields, in the control format."""
        if self.control == "json":
            return json.dumps({"event": name, "channel_id": self.channel_id, **fields}, separators=(",", ":"))
        if name == "DTMF_END":
            return f"DTMF_END digit:{fields['digit']} channel_id:{self.channel_id}"
        return " ".join([name] + [f"{k}:{v}" for k, v in fields.items()])

    def _read(self) -> None:
        try:
            for msg in self.ws:
                now = time.monotonic()
                with self._cond:
                    if isinstance(msg, bytes):
                        self.media.append((now, msg))
                    else:
                        self.texts.append((now, msg))
                    self._cond.notify_all()
                if isinstance(msg, str):
                    command = json.loads(msg).get("command") if msg.startswith("{") else msg.split(" ")[0]
                    if command == "HANGUP":
                        self.ws.close(1000)
                    elif command == "GET_STATUS":
                        self.send_text(self.event("STATUS", queue_length=0, xon_level=800, xoff_level=900))
        except ConnectionClosed:
            pass
        except OSError:
            pass
        finally:
            with self._cond:
                rcvd = getattr(self.ws.protocol, "close_rcvd", None)
                self.close_code = rcvd.code if rcvd else None
                self.ended_at = time.monotonic()
                self._cond.notify_all()

    # ------------------------------------------------------------------ sending
    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def send_media(self, frame: bytes) -> None:
        self.ws.send(frame)

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the TCP connection (pre-built frames, split or coalesced)."""
        self.ws.socket.sendall(data)

    def dtmf(self, digit: str) -> None:
        self.send_text(self.event("DTMF_END", digit=digit))

    def hangup(self) -> None:
        """The channel hangs up: a close frame with 1000 (`webchan_hangup`)."""
        self.ws.close(1000)

    def reset(self) -> None:
        """The connection drops without a close frame."""
        s = self.ws.socket
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    # ------------------------------------------------------------------ waiting
    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"texts={[t for _, t in self.texts]!r} media={len(self.media)} "
                                         f"close={self.close_code}")
                self._cond.wait(min(left, 0.05))

    def wait_media(self, count: int, timeout: float = 5.0) -> list[tuple[float, bytes]]:
        return self.wait(lambda: len(self.media) >= count and list(self.media), timeout, f"{count} media frames")

    def wait_text(self, word: str, timeout: float = 5.0) -> str:
        def found():
            for _, text in self.texts:
                if text.split(" ")[0] == word or (text.startswith("{") and json.loads(text).get("command") == word):
                    return text
            return None
        return self.wait(found, timeout, f"the command {word}")

    def wait_ended(self, timeout: float = 5.0) -> float:
        return self.wait(lambda: self.ended_at, timeout, "the connection to end")

    def commands(self) -> list[str]:
        out = []
        for _, text in self.texts:
            out.append(json.loads(text).get("command") if text.startswith("{") else text.split(" ")[0])
        return out

    def close_quietly(self) -> None:
        try:
            if self.ws is not None:
                self.ws.close(1000)
        except Exception:
            pass


class QueuedWebSocketChannel(WebSocketChannel):
    """The channel with its queue of our frames, as chan_websocket keeps it: every binary
    frame received joins the queue (ignored, and counted, while it holds 1000); `MEDIA_XOFF`
    is sent when it reaches 900 and `MEDIA_XON` when a timer tick finds it below 800 again;
    a timer plays one frame per 20 ms (absolute deadlines) into `played`; `FLUSH_MEDIA`
    empties it. `stall_timer(seconds)` stops the timer for a while, as a busy channel thread
    would, so that the queue fills."""

    MAX, XOFF, XON = 1000, 900, 800

    def __init__(self, port: int, **kw):
        super().__init__(port, **kw)
        self.queue: list[bytes] = []
        self.played: list[tuple[float, bytes]] = []  # (monotonic time, frame)
        self.ignored = 0
        self.full = False
        self.largest_queue = 0
        self.flushes: list[tuple[float, int]] = []  # (time, frames dropped)
        self.xoffs: list[float] = []  # when MEDIA_XOFF / MEDIA_XON were sent
        self.xons: list[float] = []
        self._stalled_until = 0.0
        self._running = True
        self._timer: threading.Thread | None = None

    def connect(self) -> "QueuedWebSocketChannel":
        super().connect()
        self._timer = threading.Thread(target=self._tick, daemon=True)
        self._timer.start()
        return self

    def _read(self) -> None:
        try:
            for msg in self.ws:
                now = time.monotonic()
                xoff = False
                with self._cond:
                    if isinstance(msg, bytes):
                        self.media.append((now, msg))
                        if len(self.queue) >= self.MAX:
                            self.ignored += 1
                        else:
                            self.queue.append(msg)
                            self.largest_queue = max(self.largest_queue, len(self.queue))
                            if not self.full and len(self.queue) >= self.XOFF:
                                self.full = xoff = True
                                self.xoffs.append(now)
                    else:
                        self.texts.append((now, msg))
                    self._cond.notify_all()
                if xoff:
                    self.send_text(self.event("MEDIA_XOFF"))
                if isinstance(msg, str):
                    command = json.loads(msg).get("command") if msg.startswith("{") else msg.split(" ")[0]
                    if command == "HANGUP":
                        self.ws.close(1000)
                    elif command == "FLUSH_MEDIA":
                        with self._cond:
                            self.flushes.append((now, len(self.queue)))
                            self.queue.clear()
                            self._cond.notify_all()
        except (ConnectionClosed, OSError):
            pass
        finally:
            self._running = False
            with self._cond:
                rcvd = getattr(self.ws.protocol, "close_rcvd", None)
                self.close_code = rcvd.code if rcvd else None
                self.ended_at = time.monotonic()
                self._cond.notify_all()

    def _tick(self) -> None:
        deadline = time.monotonic()
        while self._running:
            deadline += 0.020
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            if now < self._stalled_until:
                continue
            xon = False
            with self._cond:
                if self.full and len(self.queue) < self.XON:
                    self.full = False
                    xon = True
                    self.xons.append(now)
                if self.queue:
                    self.played.append((now, self.queue.pop(0)))
                self._cond.notify_all()
            if xon:
                try:
                    self.send_text(self.event("MEDIA_XON"))
                except (ConnectionClosed, OSError):
                    return

    def stall_timer(self, seconds: float) -> float:
        """Stops the timer for `seconds`; returns when it resumes (monotonic)."""
        with self._cond:
            self._stalled_until = time.monotonic() + seconds
            return self._stalled_until

    def close_quietly(self) -> None:
        self._running = False
        super().close_quietly()
