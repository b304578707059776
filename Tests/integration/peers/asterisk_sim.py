"""A simulated Asterisk AudioSocket client (README "Asterisk dialplan", docs/ARCHITECTURE.md "A call").

    call = AsteriskCall(host, port, uuid)
    call.start()                      # connect, send 0x01 + 16 raw UUID bytes
    call.send_audio(pcm)              # 0x10 frames of 320 bytes, paced every 20 ms (monotonic)
    call.send_dtmf("5")               # 0x03
    call.received_audio()            # concatenated payloads of audio messages received
    call.intervals()                  # arrival gaps between received audio messages (seconds)
    call.hangup()                     # close the socket, as Asterisk does

It reads what the server sends the way Asterisk's `res/res_audiosocket.c` does: every `0x10`
payload is 8 kHz signed linear whatever the call's own codec (`heard_slin()` is what the caller
hears), `0x11`-`0x18` are slin at their rates, `0x00` hangs up, and anything else, or an empty
audio payload, is an error after which Asterisk hangs up: the simulator records it
(`protocol_error`) and closes the connection, as the channel would.

Every received message is kept with its arrival time (time.monotonic(), comparable with the
STS peers' records) and its kernel receive timestamp (SO_TIMESTAMPNS, for pacing statistics
that do not depend on Python's scheduling: `wire_times()`, `intervals()`).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid as uuidlib

from waiting import wait_on

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_SLIN = 0x10
KIND_ERROR = 0xFF
AUDIO_KINDS = set(range(0x10, 0x19))
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def message(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message: kind, big-endian 16-bit length, payload."""
    return struct.pack(">BH", kind, len(payload)) + payload


class AsteriskCall:
    def __init__(self, host: str, port: int, uuid: str | None = None, frame_bytes: int = 320,
                 kind: int = KIND_SLIN, timeout: float = 5.0):
        self.host, self.port = host, port
        self.uuid = uuid or str(uuidlib.uuid4())
        self.frame_bytes = frame_bytes
        self.kind = kind
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.received: list[tuple[float, int, bytes]] = []
        self.kernel_times: list[float] = []
        self.cond = threading.Condition()
        self.eof_at: float | None = None       # server closed / reset
        self.hangup_at: float | None = None    # server sent 0x00
        self.protocol_error: str | None = None
        self.bytes_in = 0
        self._reader: threading.Thread | None = None
        self._streamer: threading.Thread | None = None
        self._stop_stream = threading.Event()
        self._send_lock = threading.Lock()
        self.closed_by_us = False
        self.connected_at: float | None = None
        # (seq, wall-clock time just after it was written) of each frame start_streaming sent.
        self.streamed_at: list[tuple[int, float]] = []

    # ------------------------------------------------------------------ connection
    def connect(self) -> "AsteriskCall":
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.connected_at = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        return self

    def start(self) -> "AsteriskCall":
        """Connect and send the UUID message (16 raw bytes)."""
        self.connect()
        self.send_raw(message(KIND_UUID, uuidlib.UUID(self.uuid).bytes))
        return self

    def send_raw(self, data: bytes) -> bool:
        """Send bytes; False if the server already closed (that is a result, not a test crash)."""
        try:
            with self._send_lock:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def send_message(self, kind: int, payload: bytes = b"") -> bool:
        return self.send_raw(message(kind, payload))

    def send_frame(self, payload: bytes) -> bool:
        return self.send_message(self.kind, payload)

    def stream_frame(self, seq: int, payload: bytes) -> bool:
        """Sends caller frame `seq` and notes when it was written (`streamed_at`, wall clock,
        against which `helpers.echo_delays` measures each echo)."""
        if not self.send_frame(payload):
            return False
        self.streamed_at.append((seq, time.time()))
        return True

    def send_audio(self, data: bytes, pace: bool = True, frame_bytes: int | None = None) -> int:
        """Cut into frames and send, one every 20 ms against an absolute monotonic schedule.
        Returns how many frames were sent before any failure."""
        size = frame_bytes or self.frame_bytes
        frames = [data[i:i + size] for i in range(0, len(data), size)]
        t0 = time.monotonic()
        for k, f in enumerate(frames):
            if pace:
                delay = t0 + k * 0.020 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if not self.send_frame(f):
                return k
        return len(frames)

    def start_streaming(self, frame_fn, count: int | None = None) -> None:
        """Background: send frame_fn(seq) every 20 ms until stop_streaming() or `count` frames.
        A frame_fn that returns None sends nothing in that slot (Asterisk sends no audio for
        ~100 ms around a DTMF key)."""
        self._stop_stream.clear()

        def run():
            t0 = time.monotonic()
            seq = 0
            while not self._stop_stream.is_set() and (count is None or seq < count):
                delay = t0 + seq * 0.020 - time.monotonic()
                if delay > 0 and self._stop_stream.wait(delay):
                    break
                frame = frame_fn(seq)
                if frame is not None and not self.stream_frame(seq, frame):
                    break
                seq += 1

        self._streamer = threading.Thread(target=run, daemon=True)
        self._streamer.start()

    def stop_streaming(self) -> None:
        self._stop_stream.set()
        if self._streamer:
            self._streamer.join(timeout=2)

    def send_dtmf(self, digit: str) -> bool:
        return self.send_message(KIND_DTMF, digit.encode("ascii"))

    def send_hangup(self) -> bool:
        return self.send_message(KIND_HANGUP)

    def hangup(self) -> None:
        """What Asterisk does on caller hangup: close the socket, no 0x00."""
        self.stop_streaming()
        self.closed_by_us = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as Asterisk sometimes does."""
        self.stop_streaming()
        self.closed_by_us = True
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    close = hangup

    # ------------------------------------------------------------------ reading
    def _read_loop(self) -> None:
        """Read one message at a time (header, then exactly its payload) with recvmsg, so the
        kernel receive timestamp (SO_TIMESTAMPNS) belongs to the segment that carried it:
        arrival times then reflect the wire, not Python's thread scheduling."""
        sock = self.sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            pass
        header: tuple[int, int] | None = None
        buf = bytearray()
        need = 3
        ktime: float | None = None
        while True:
            try:
                data, anc, _flags, _addr = sock.recvmsg(max(1, need - len(buf)), 256)
            except OSError:
                data, anc = b"", []
            now = time.monotonic()
            if not data:
                with self.cond:
                    if self.eof_at is None:
                        self.eof_at = now
                    self.cond.notify_all()
                return
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack_from("qq", cdata)
                    # A message read in pieces keeps the time of the segment that began it.
                    if ktime is None:
                        ktime = sec + nsec / 1e9
            if ktime is None:
                # No kernel stamp on this read: the wall clock (the stamps' own clock, never
                # time.monotonic, whose origin differs by decades).
                ktime = time.time()
            buf += data
            self.bytes_in += len(data)
            if len(buf) < need:
                continue
            if header is None:
                kind, length = struct.unpack_from(">BH", buf, 0)
                buf = bytearray()
                if length:
                    header, need = (kind, length), length
                    continue
                payload = b""
            else:
                kind, _ = header
                payload = bytes(buf)
                header, buf, need = None, bytearray(), 3
            self._deliver(now, ktime, kind, payload)
            ktime = None

    def _deliver(self, now: float, ktime: float, kind: int, payload: bytes) -> None:
        rejected = None
        if kind not in AUDIO_KINDS and kind != KIND_HANGUP:
            rejected = f"message kind 0x{kind:02x} (Asterisk accepts only hangup or audio)"
        elif kind in AUDIO_KINDS and not payload:
            rejected = f"empty audio message of kind 0x{kind:02x}"
        elif kind in AUDIO_KINDS and len(payload) % 2:
            rejected = f"{len(payload)}-byte audio payload: not 16-bit slin"
        with self.cond:
            self.received.append((now, kind, payload))
            self.kernel_times.append(ktime)
            if kind == KIND_HANGUP and self.hangup_at is None:
                self.hangup_at = now
            elif rejected and self.protocol_error is None:
                self.protocol_error = rejected
            self.cond.notify_all()
        if rejected:
            # res_audiosocket returns no frame; the channel hangs up and the socket closes.
            self.hangup()

    def wire_times(self) -> list[float]:
        """Kernel receive times (CLOCK_REALTIME seconds) of the audio messages, in order."""
        with self.cond:
            return [kt for kt, (_, k, _) in zip(self.kernel_times, self.received) if k in AUDIO_KINDS]

    def wait_for(self, predicate, timeout: float = 5.0, message: str = "condition"):
        return wait_on(self.cond, predicate, timeout,
                       lambda: f"call {self.uuid}: timed out after {timeout}s waiting for {message}")

    def audio_frames(self) -> list[tuple[float, bytes]]:
        with self.cond:
            return [(t, p) for t, k, p in self.received if k in AUDIO_KINDS]

    def audio_kinds(self) -> set[int]:
        with self.cond:
            return {k for _, k, _ in self.received if k in AUDIO_KINDS}

    def received_audio(self) -> bytes:
        return b"".join(p for _, p in self.audio_frames())

    def heard_slin(self) -> bytes:
        """What the caller hears, as Asterisk reads it: every `0x10` payload as 8 kHz s16le.
        (Were the server to send G.711 bytes, this would be their noise, not their decoding.)"""
        with self.cond:
            return b"".join(p for _, k, p in self.received if k == KIND_SLIN)

    def intervals(self, skip: int = 0) -> list[float]:
        """Gaps between received audio messages, from kernel receive timestamps."""
        ts = self.wire_times()[skip:]
        return [b - a for a, b in zip(ts, ts[1:])]

    def wait_frames(self, n: int, timeout: float = 5.0) -> list[tuple[float, bytes]]:
        self.wait_for(lambda: len(self.audio_frames()) >= n, timeout, f"{n} audio frames")
        return self.audio_frames()

    def ended(self) -> bool:
        return self.eof_at is not None or self.hangup_at is not None

    def ended_at(self) -> float | None:
        ts = [t for t in (self.eof_at, self.hangup_at) if t is not None]
        return min(ts) if ts else None

    def wait_ended(self, timeout: float = 5.0) -> float:
        """Wait for the server to end the call (0x00 or close); returns when (monotonic)."""
        self.wait_for(self.ended, timeout, "the server to end the call (0x00 or close)")
        return self.ended_at()
