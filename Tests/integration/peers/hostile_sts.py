"""An STS on raw sockets (one thread per connection) that is well-behaved or hostile by
request path, so one `STS_URL` serves healthy calls and a hostile one side by side: a call
registered with `POST /call` and payload `{"mode": "..."}` reaches `/?mode=...`.

    sts = HostileSts().start()           # ws:// and http:// on the same port
    ... STS_URL=sts.ws_url (or sts.http_url) ...
    sts.wait_mode("flood")               # the hostile connection arrived

WebSocket (a real RFC 6455 handshake first):
- echo (no mode): answers pings, echoes every `audio` message back as it came;
- flood: sends ping frames as fast as the socket takes them and never reads;
- pings: sends `rate` pings a second (default 40) and never reads;
- stall: sends nothing at all and never reads;
- lateread: never reads until `go` is set, then sends `count` pings (default 40) at 40 a
  second, then reads everything and counts the pongs (`pongs`, `last_pong`) until quiet.
Streaming HTTP (`POST`, chunked request body):
- echo (no mode): streams the request body back as the chunked response body;
- stall: answers 200 and a first chunk, then never reads;
- nohead: reads the whole request body as it comes (counted in `body_bytes`) and never
  answers, not even a status line.
Hostile connections are recorded with what they did (`pings_sent`, `ended`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from urllib.parse import parse_qs, urlsplit

from waiting import wait_on

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked frame (server to client)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class _Reader:
    def __init__(self, sock: socket.socket, initial: bytes = b""):
        self.sock, self.buf = sock, bytearray(initial)

    def exactly(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return head


class HostileSts:
    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.connections: list[dict] = []
        self._cond = threading.Condition()
        self._socks: list[socket.socket] = []
        self._stopping = threading.Event()
        self.go = threading.Event()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HostileSts":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for s in [self.listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass

    def wait_mode(self, mode: str, timeout: float = 5.0) -> dict:
        return wait_on(self._cond, lambda: next((c for c in self.connections if c["mode"] == mode), None),
                       timeout, lambda: f"hostile STS: no {mode} connection; got {self.connections}")

    def _update(self, conn: dict, **kw) -> None:
        with self._cond:
            conn.update(kw)
            self._cond.notify_all()

    # ------------------------------------------------------------------ serving
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
            query = parse_qs(urlsplit(target).query)
            mode = query.get("mode", ["echo"])[0]
            conn = {"mode": mode, "path": target, "t": time.monotonic(), "pings_sent": 0, "ended": None}
            with self._cond:
                self.connections.append(conn)
                self._cond.notify_all()
            if headers.get("upgrade", "").lower() == "websocket":
                accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + WS_GUID).digest())
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                getattr(self, f"_ws_{mode}")(sock, _Reader(sock, rest), conn, query)
            else:
                getattr(self, f"_http_{mode}")(sock, _Reader(sock, rest), conn)
        except OSError as exc:
            self._update(conn if "conn" in locals() else {}, ended=f"error: {exc!r}")

    # WebSocket modes
    def _ws_echo(self, sock, reader: _Reader, conn, _query) -> None:
        while True:
            head = reader.exactly(2)
            if head is None:
                break
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", reader.exactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", reader.exactly(8))[0]
            mask = reader.exactly(4) if head[1] & 0x80 else b"\0\0\0\0"
            raw = reader.exactly(n)
            if raw is None:
                break
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(raw))
            if opcode == 0x9:
                sock.sendall(server_frame(0xA, payload))
            elif opcode == 0x8:
                sock.sendall(server_frame(0x8, payload[:2]))
                break
            elif opcode == 0x1:
                msg = json.loads(payload)
                if msg.get("type") == "audio":
                    sock.sendall(server_frame(0x1, payload))
        self._update(conn, ended="eof")

    def _ws_flood(self, sock, _reader, conn, _query) -> None:
        ping = server_frame(0x9, b"flood!")
        batch = ping * 1000
        sent = 0
        try:
            while not self._stopping.is_set():
                sock.sendall(batch)
                sent += 1000
                self._update(conn, pings_sent=sent)
        except OSError as exc:
            self._update(conn, ended=f"error: {exc!r}")

    def _ws_pings(self, sock, _reader, conn, query) -> None:
        rate = float(query.get("rate", ["40"])[0])
        t0, k = time.monotonic(), 0
        try:
            while not self._stopping.is_set():
                delay = t0 + k / rate - time.monotonic()
                if delay > 0 and self._stopping.wait(delay):
                    break
                sock.sendall(server_frame(0x9, struct.pack("!I", k)))
                k += 1
                self._update(conn, pings_sent=k)
        except OSError as exc:
            self._update(conn, ended=f"error: {exc!r}")

    def _ws_stall(self, _sock, _reader, conn, _query) -> None:
        self._stopping.wait()

    def _ws_lateread(self, sock, reader: _Reader, conn, query) -> None:
        self.go.wait()
        count = int(query.get("count", ["40"])[0])
        for k in range(count):
            sock.sendall(server_frame(0x9, struct.pack("!I", k)))
            self._update(conn, pings_sent=k + 1, last_ping=k)
            time.sleep(0.025)
        time.sleep(0.3)
        sock.settimeout(1.0)
        pongs, last = 0, None
        try:
            while True:
                head = reader.exactly(2)
                if head is None:
                    break
                opcode, n = head[0] & 0x0F, head[1] & 0x7F
                if n == 126:
                    n = struct.unpack("!H", reader.exactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", reader.exactly(8))[0]
                mask = reader.exactly(4) if head[1] & 0x80 else b"\0\0\0\0"
                raw = reader.exactly(n)
                if opcode == 0xA:
                    pongs += 1
                    last = struct.unpack("!I", bytes(b ^ mask[i % 4] for i, b in enumerate(raw)))[0]
                    self._update(conn, pongs=pongs, last_pong=last)
        except (socket.timeout, OSError):
            pass
        self._update(conn, ended="read all", pongs=pongs, last_pong=last)

    # streaming-HTTP modes
    def _http_echo(self, sock, reader: _Reader, conn) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/l16\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            size_line = reader.line()
            if size_line is None:
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                reader.line()
                sock.sendall(b"0\r\n\r\n")
                break
            data = reader.exactly(size + 2)
            if data is None:
                break
            sock.sendall(b"%x\r\n" % size + data)
        self._update(conn, ended="eof")

    def _http_nohead(self, sock, reader: _Reader, conn) -> None:
        total = len(reader.buf)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            total += len(data)
            self._update(conn, body_bytes=total)
        self._update(conn, ended="eof")

    def _http_stall(self, sock, _reader, conn) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/l16\r\nTransfer-Encoding: chunked\r\n\r\n")
        self._stopping.wait()
