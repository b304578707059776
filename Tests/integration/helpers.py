"""Small, dependency-free helpers: a raw-socket HTTP/1.1 client, deadlines, assertions."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field

# The suite also runs against an AddressSanitizer debug build (`make asan-integration`). That
# build is a memory checker, not a timing instrument: on a loaded 2-core machine its frames
# can be several ms late. There, pacing-quality bounds (jitter, mean interval, gaps) are
# reported but not asserted; correctness (bytes, order, counts, every deadline that is a
# protocol behaviour) is asserted in both passes. Pacing quality is measured by `make bench`.
SANITIZED = os.environ.get("AVR_SANITIZED") == "1"


def check_timing(ok: bool, message: str) -> None:
    """Assert a pacing-quality bound, except under a sanitizer (where it is only printed)."""
    if SANITIZED:
        if not ok:
            print(f"[timing, not asserted under the sanitizer] {message}")
        return
    assert ok, message

# AddressSanitizer keeps freed memory in quarantine, up to 256 MiB by default, so the RSS of a
# sanitized server grows with how much it allocated and freed, not with what it holds.
ASAN_QUARANTINE_MIB = 256


def rss_growth_bound_mib(bound: float) -> float:
    """An RSS-growth bound for the server under test: as given for the release build; under the
    sanitizer, that plus the quarantine (a server that kept what it read would still pass
    the bound only for inputs smaller than the quarantine, so such tests must also assert
    backpressure directly)."""
    return bound + ASAN_QUARANTINE_MIB if SANITIZED else bound


SEED_UUID = "935652e3-7c59-4edc-b17f-9646a9c2a265"
SEED_PAYLOAD = {"from": "2000", "to": "5001", "uniqueid": "1770758888.32", "channel": "PJSIP/2000-00000013"}
SEED_BODY = json.dumps({"uuid": SEED_UUID, "payload": SEED_PAYLOAD}, separators=(",", ":"))
SEED_QUERY = "from=2000&to=5001&uniqueid=1770758888.32&channel=PJSIP%2F2000-00000013"


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, close). Callers retry on a race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.005, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ConnectionClosed(Exception):
    """The peer closed (or reset) before a complete response arrived."""

    def __init__(self, partial: bytes):
        super().__init__(f"connection closed; partial data {partial[:200]!r}")
        self.partial = partial


@dataclass
class Response:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes
    declared_length: int | None = None
    chunked: bool = False
    arrived: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def build_request(method: str, path: str, body: bytes | str | None = None,
                  headers: list[tuple[str, str]] | None = None, host: str = "127.0.0.1",
                  content_type: str | None = "application/json", chunks: list[bytes] | None = None) -> bytes:
    """Build a request. `chunks` → Transfer-Encoding: chunked with those chunk payloads."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if content_type and (body is not None or chunks is not None):
        lines.append(f"Content-Type: {content_type}")
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    payload = b""
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
        for c in chunks:
            payload += f"{len(c):x}\r\n".encode() + c + b"\r\n"
        payload += b"0\r\n\r\n"
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def call_request(uuid: str = SEED_UUID, payload=None, **kw) -> bytes:
    body = json.dumps({"uuid": uuid, "payload": SEED_PAYLOAD if payload is None else payload},
                      separators=(",", ":"))
    return build_request("POST", "/call", body, **kw)


class RawHttp:
    """One TCP connection; send exact bytes, read responses with a deadline."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_tolerant(self, data: bytes) -> bool:
        """Send; a peer that already answered and closed is not a test error. Returns success."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_bytewise(self, data: bytes, gap: float = 0.0005) -> None:
        """Each byte in its own TCP segment (TCP_NODELAY + a short gap between sends)."""
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if gap:
                time.sleep(gap)

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response before the deadline; have {self.buf[:300]!r}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no complete response before the deadline; have {self.buf[:300]!r}")
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise ConnectionClosed(self.buf)
        self.buf += data

    def read_response(self, timeout: float | None = None, head_only: bool = False) -> Response:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), f"bad status line {lines[0]!r}"
        status = int(status)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = Response(status, reason[0] if reason else "", version, headers, b"", head)
        if head_only or 100 <= status < 200 or status in (204, 304):
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            resp.chunked = True
            resp.body = self._read_chunked(deadline)
        elif cl is not None:
            n = int(cl)
            resp.declared_length = n
            while len(self.buf) < n:
                self._fill(deadline)
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:  # delimited by close
            try:
                while True:
                    self._fill(deadline)
            except ConnectionClosed:
                pass
            resp.body, self.buf = self.buf, b""
        resp.arrived = time.monotonic()
        return resp

    def _read_chunked(self, deadline: float) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while not self.buf.startswith(b"\r\n") and b"\r\n\r\n" not in self.buf:
                    self._fill(deadline)
                if self.buf.startswith(b"\r\n"):
                    self.buf = self.buf[2:]
                else:
                    self.buf = self.buf.partition(b"\r\n\r\n")[2]
                return out
            while len(self.buf) < size + 2:
                self._fill(deadline)
            out += self.buf[:size]
            self.buf = self.buf[size + 2:]

    def closed_within(self, timeout: float) -> bool:
        """True if the peer closes (EOF or reset) within `timeout`; extra bytes are kept in buf."""
        if self.eof:
            return True
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                return True
            except TimeoutError:
                return False

    def still_open_after(self, seconds: float) -> bool:
        """Wait `seconds` (this is the point of the check) and report whether the peer kept it open."""
        return not self.closed_within(seconds)


def request_once(port: int, data: bytes, timeout: float = 5.0) -> Response:
    with RawHttp("127.0.0.1", port, timeout=timeout) as c:
        c.send(data)
        return c.read_response()


def assert_health(port: int) -> None:
    """The server still answers GET /health on a fresh connection."""
    resp = request_once(port, build_request("GET", "/health"))
    assert resp.status == 200, resp
    assert resp.json() == {"status": "ok"}, resp.body


def assert_json_content(resp: Response) -> None:
    ct = resp.header("Content-Type")
    assert ct is not None and ct.split(";")[0].strip().lower() == "application/json", \
        f"Content-Type {ct!r}"
    if not resp.chunked:
        assert resp.declared_length is not None, "no Content-Length"
        assert resp.declared_length == len(resp.body)


def assert_json_error(resp: Response, status: int, mentions: str | None = None) -> dict:
    """Status, JSON content type, correct length, body `{"error": "<string>"}` (naming `mentions`)."""
    assert resp.status == status, f"expected {status}, got {resp.status} {resp.body!r}"
    assert_json_content(resp)
    try:
        doc = resp.json()
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON: {resp.body!r}") from exc
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], doc
    if mentions is not None:
        assert mentions.lower() in doc["error"].lower(), f"error {doc['error']!r} does not name {mentions!r}"
    return doc


# --------------------------------------------------------------------------- machine lag
# On a busy machine every process waits for a core now and then: the simulated caller, the STS
# peer, this test, and the server. A pacing bound must fail only for lateness that is the
# server's own, so the suite measures the machine's lateness beside it (HarnessLag) and
# subtracts it, and where the agent's audio comes from a test peer, judges each frame against
# when that peer made it available (test_codecs.py, `echo_lateness`).
_LAG_PROBE = r"""
import os, struct, sys, time
period = float(sys.argv[1])
start = time.time()
k = 0
while True:
    k += 1
    due = start + k * period
    wait = due - time.time()
    if wait > 0:
        time.sleep(wait)
    os.write(1, struct.pack("dd", due, time.time() - due))
"""


class HarnessLag:
    """How late this machine wakes a sleeping process, over a test: a small process (no GIL
    shared with the test) sleeps to absolute deadlines every `period` and records how late each
    wake-up was, on the wall clock (CLOCK_REALTIME, the clock of kernel receive timestamps).
    An idle machine wakes it within a fraction of a millisecond; a loaded one, tens."""

    def __init__(self, period: float = 0.002):
        self.period = period
        self._data = bytearray()
        self._proc = None
        self._reader = None

    def start(self) -> "HarnessLag":
        import subprocess
        import sys
        import threading
        self._proc = subprocess.Popen([sys.executable, "-c", _LAG_PROBE, str(self.period)],
                                      stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for chunk in iter(lambda: self._proc.stdout.read1(65536), b""):
            self._data += chunk

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # our own child, by its PID
            self._proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def samples(self) -> list[tuple[float, float]]:
        """(deadline, lateness) of every wake-up so far, in seconds."""
        import struct
        n = len(self._data) // 16
        return list(struct.iter_unpack("dd", bytes(self._data[:n * 16])))

    def worst(self, t0: float, t1: float) -> float:
        """The latest wake-up among those due in [t0, t1] (wall clock), seconds."""
        return max((late for due, late in self.samples() if t0 <= due <= t1), default=0.0)

    def bounds(self, t0: float, t1: float, quantile: float = 0.98) -> tuple[float, float]:
        """(the `quantile`, the worst) lateness of the wake-ups due in [t0, t1] (wall clock),
        seconds; (0, 0) without samples. What a pacing bound over that window widens by."""
        lates = sorted(late for due, late in self.samples() if t0 <= due <= t1)
        if not lates:
            return 0.0, 0.0
        return lates[min(len(lates) - 1, int(quantile * len(lates)))], lates[-1]

    def summary(self, samples: list[tuple[float, float]] | None = None) -> str:
        lates = sorted(late for _, late in (self.samples() if samples is None else samples))
        if not lates:
            return "harness lag: no samples"
        pick = lambda q: lates[min(len(lates) - 1, int(q * len(lates)))] * 1000  # noqa: E731
        return (f"harness lag over {len(lates)} wake-ups: p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, "
                f"max {lates[-1] * 1000:.2f} ms")


# --------------------------------------------------------------------------- echo delay
def echo_delays(call, since: float | None = None, until: float | None = None, seq_of=None) -> list[float]:
    """For each frame the simulated caller streamed (`start_streaming`) and wrote within
    [since, until] (wall clock), the kernel receive time of its echo minus the time it was
    written, seconds, in order. Without `seq_of`, echoes are the non-silent frames received,
    paired in order; with it (payload -> the frame's `seq`, None for other audio), each echo
    is paired with the frame it carries, and frames never echoed are left out."""
    if seq_of is None:
        heard = [kt for kt, (_, p) in zip(call.wire_times(), call.audio_frames()) if any(p)]
        pairs = [(at, kt) for (_, at), kt in zip(call.streamed_at, heard)]
    else:
        heard = {}
        for kt, (_, p) in zip(call.wire_times(), call.audio_frames()):
            seq = seq_of(p)
            if seq is not None:
                heard.setdefault(seq, kt)
        pairs = [(at, heard[seq]) for seq, at in call.streamed_at if seq in heard]
    return [kt - at for at, kt in pairs if (since is None or at >= since) and (until is None or at <= until)]


def check_echo_steady(calls: list, lag: HarnessLag, what: str, since: float | None = None,
                      until: float | None = None, bar: float = 0.030, seq_of=None) -> str:
    """Every frame the callers streamed was echoed (waited for, 2 s; with `seq_of`, every frame
    from the first one echoed on, since a call echoes nothing it heard while its route was
    claimed), and the delay the server added to the echo moved by less than `bar` from one
    frame to the next (it plays out on 20 ms ticks, so it moves by up to a tick; a loop that
    stalled adds the stall to the frames at once). Judged from when each frame was written, so
    the simulated caller's own lateness (its threads share this process's GIL) does not count;
    the bar widens by the worst wake-up lateness of the machine (`lag`) over the window.
    Returns a summary line."""
    def unechoed(call) -> int:
        if seq_of is None:
            return len(call.streamed_at) - sum(1 for _, p in call.audio_frames() if any(p))
        heard = {seq_of(p) for _, p in call.audio_frames()} - {None}
        sent = [seq for seq, _ in call.streamed_at]
        first = next((k for k, seq in enumerate(sent) if seq in heard), len(sent))
        return sum(1 for seq in sent[first:] if seq not in heard) + (1 if first == len(sent) else 0)

    steps, delays, written = [], [], []
    for call in calls:
        call.wait_for(lambda: unechoed(call) <= 0, 2.0, "the echo of every frame streamed")
        d = echo_delays(call, since, until, seq_of)
        steps += [abs(b - a) for a, b in zip(d, d[1:])]
        delays += d
        written += [at for _, at in call.streamed_at if (since is None or at >= since) and (until is None or at <= until)]
    assert steps, f"{what}: no echoed frames in the window"
    machine = lag.bounds(min(written) - 0.1, max(written))[1]
    steps.sort()
    summary = (f"{what}: echo delay over {len(delays)} frames {min(delays) * 1000:.1f}-{max(delays) * 1000:.1f} ms, "
               f"frame-to-frame change p99 {steps[int(0.99 * len(steps))] * 1000:.2f} ms, max {steps[-1] * 1000:.2f} ms; "
               f"{lag.summary()}")
    check_timing(steps[-1] < bar + machine, f"the echo delay jumped by {steps[-1] * 1000:.2f} ms from one frame to the "
                 f"next (bar: {bar * 1000:.0f} ms + the machine's lag, {machine * 1000:.2f} ms). {summary}")
    return summary


def echo_ok(call, timeout: float = 3.0) -> bool:
    """The call is alive and echoes (the built-in echo): a marker frame, sent every 20 ms until
    it comes back, within `timeout` (what a caller says while its route is still being claimed
    is not echoed, so one frame alone may never be)."""
    before = len(call.received_audio())
    marker = bytes([9, 9]) * 160
    deadline = time.monotonic() + timeout
    while marker not in call.received_audio()[before:]:
        assert time.monotonic() < deadline, f"call {call.uuid}: no echo of the marker frame within {timeout} s"
        call.send_frame(marker)
        time.sleep(0.02)  # the caller's pace, not a wait for the echo
    return True
