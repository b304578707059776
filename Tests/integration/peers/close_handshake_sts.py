"""A WebSocket server on a raw socket, to watch the closing handshake as the wire shows it.

    sts = CloseHandshakeSts(reply_after=0.3).start()   # answer a close frame 300 ms later
    sts = CloseHandshakeSts(reply_after=None).start()  # never answer it
    rec = sts.wait_closed()   # {"close_frame_at", "eof_before_reply", "replied_at", "eof_at"}

A library server answers a close frame at once, so it cannot show whether the client waits
for that answer before closing TCP (RFC 6455 section 7.1.1); this one holds its answer back
and records whether the client's end of connection came first.
"""

from __future__ import annotations

import base64
import hashlib
import select
import socket
import struct
import threading
import time

from waiting import wait_on

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class CloseHandshakeSts:
    def __init__(self, reply_after: float | None):
        self.reply_after = reply_after
        self.cond = threading.Condition()
        self.records: list[dict] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "CloseHandshakeSts":
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop = True
        self.listener.close()

    def wait_open(self, timeout: float = 8.0) -> dict:
        """The first connection on which the client has sent a frame (so it knows it is open)."""
        return wait_on(self.cond, lambda: next((r for r in self.records if "first_frame_at" in r), None), timeout,
                       lambda: f"no frame on an open WebSocket: {self.records}")

    def wait_closed(self, timeout: float = 8.0) -> dict:
        return wait_on(self.cond, lambda: next((r for r in self.records if "eof_at" in r), None), timeout,
                       lambda: f"no finished closing handshake: {self.records}")

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        record: dict = {}
        with self.cond:
            self.records.append(record)
        try:
            self._handshake(conn)
            self._note(record, open_at=time.monotonic())
            while True:
                opcode = self._read_frame(conn)
                if opcode is None:
                    self._note(record, eof_at=time.monotonic(), close_frame_at=None)
                    return
                if "first_frame_at" not in record:
                    self._note(record, first_frame_at=time.monotonic())
                if opcode == 0x8:
                    break
            self._note(record, close_frame_at=time.monotonic())
            if self.reply_after is not None:
                readable, _, _ = select.select([conn], [], [], self.reply_after)
                early = bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
                self._note(record, eof_before_reply=early)
                try:
                    conn.sendall(b"\x88\x02\x03\xe8")  # close, 1000, unmasked (server)
                except OSError:
                    pass
                self._note(record, replied_at=time.monotonic())
            conn.settimeout(5.0)
            while True:  # discard until the client's end of connection
                if not conn.recv(65536):
                    break
            self._note(record, eof_at=time.monotonic())
        except OSError as error:
            self._note(record, error=str(error), eof_at=time.monotonic())
        finally:
            conn.close()

    def _note(self, record: dict, **values) -> None:
        with self.cond:
            record.update(values)
            self.cond.notify_all()

    @staticmethod
    def _read_exact(conn: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _handshake(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                raise OSError("closed during the handshake")
            request += chunk
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    def _read_frame(self, conn: socket.socket) -> int | None:
        head = self._read_exact(conn, 2)
        if head is None:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read_exact(conn, 2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read_exact(conn, 8))[0]
        if head[1] & 0x80:
            self._read_exact(conn, 4)
        if length and self._read_exact(conn, length) is None:
            return None
        return opcode
