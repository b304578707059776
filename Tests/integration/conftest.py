"""Shared fixtures for the avr-core integration suite.

The server under test is the real executable (`AVR_CORE_BIN`, default
`<repo>/.build/debug/avr-core`), configured only through environment variables.
Every wait in this suite is "wait for the event, with a deadline": nothing sleeps
and hopes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PEERS = HERE / "peers"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(PEERS))

from helpers import (  # noqa: E402  (path set just above)
    RawHttp,
    free_port,
    wait_until,
)

AVR_CORE_BIN = Path(os.environ.get("AVR_CORE_BIN", REPO / ".build" / "debug" / "avr-core"))

HTTP_LISTEN_RE = re.compile(r"^\[INFO\]: AVR HTTP Server listening on port (\d+)\s*$")
AUDIO_LISTEN_RE = re.compile(r"^\[INFO\]: AVR AudioSocket Server listening on port (\d+)\s*$")

# Variables of the parent environment that must never leak into the server.
_CONFIG_VARS = {
    "PORT", "HTTP_PORT", "STS_URL", "WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_TIMEOUT",
    "WEBHOOK_RETRY", "AMBIENT_NOISE_FILE", "AMBIENT_NOISE_LEVEL", "LOG_LEVEL",
    "HTTP_MAX_BODY", "HTTP_HEADER_TIMEOUT", "HTTP_IDLE_TIMEOUT", "CALL_METADATA_TTL",
    "MAX_PENDING_CALLS", "MAX_PENDING_CALL_BYTES", "STS_CONNECT_TIMEOUT", "DRAIN_TIMEOUT", "REDIS_URL", "REDIS_KEY_PREFIX",
    "REDIS_TIMEOUT", "REDIS_CLAIM_RETRY_MS", "LOOPS", "PLAYBACK_QUEUE_LIMIT",
    "LOG_FORMAT", "METRICS_PORT",
    "TLS_CA_FILE",
    "STS_PING_INTERVAL", "STS_PING_TIMEOUT",
    "STS_FAILOVER_ATTEMPTS", "STS_FAILOVER_BUDGET_MS",
    "ASR_URL", "LLM_URL", "TTS_URL", "SYSTEM_MESSAGE", "INTERRUPT_LISTENING",
    "PIPELINE_REQUEST_TIMEOUT", "ASR_DEBOUNCE_MS",
    "AUDIOSOCKET_UUID_TIMEOUT", "AUDIOSOCKET_MAX_UNIDENTIFIED",
    "BIND_ADDRESS", "METRICS_BIND_ADDRESS",
}


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS and not k.startswith("VAD_")}


class StartFailed(Exception):
    pass


class AvrServer:
    """One running avr-core process.

    `env` values of None mean "leave unset" (e.g. `HTTP_PORT=None` runs without the
    HTTP service). PORT and HTTP_PORT default to free ephemeral ports.
    """

    def __init__(self, env: dict[str, str | None], start_timeout: float = 10.0):
        self.requested_env = dict(env)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.http_port: int | None = None
        self.audio_port: int | None = None
        self.exit_code: int | None = None
        self.stopped = False

    # ----------------------------------------------------------------- start/stop
    def start(self, attempts: int = 4) -> "AvrServer":
        if not AVR_CORE_BIN.exists():
            pytest.fail(f"server binary not found: {AVR_CORE_BIN} (build it or set AVR_CORE_BIN)")
        last = None
        for _ in range(attempts):
            try:
                self._start_once()
                return self
            except StartFailed as exc:  # most likely a port race: pick new ports
                last = exc
                self._kill_quietly()
        pytest.fail(f"avr-core did not start: {last}")

    def _start_once(self) -> None:
        env = base_env()
        want_http = True
        req = dict(self.requested_env)
        if "HTTP_PORT" in req and req["HTTP_PORT"] is None:
            want_http = False
            req.pop("HTTP_PORT")
        if want_http and "HTTP_PORT" not in req:
            req["HTTP_PORT"] = str(free_port())
        if "PORT" not in req:
            req["PORT"] = str(free_port())
        # The suite's SIGTERMs (teardown, stop_server) mean "stop now", as before drain
        # existed; the drain tests (test_drain.py, test_cluster.py) set DRAIN_TIMEOUT themselves.
        req.setdefault("DRAIN_TIMEOUT", "0")
        for k, v in req.items():
            if v is not None:
                env[k] = str(v)
        self.env = env
        self.lines = []
        self.stderr_lines = []
        self.proc = subprocess.Popen(
            [str(AVR_CORE_BIN)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(REPO),
        )
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for t in self._threads:
            t.start()

        def listening():
            return (not want_http or self._find(HTTP_LISTEN_RE)) and self._find(AUDIO_LISTEN_RE)

        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while not listening():
                if self.proc.poll() is not None:
                    # Let the pumps drain what is left.
                    for t in self._threads:
                        t.join(timeout=1)
                    raise StartFailed(
                        f"exited with {self.proc.returncode} before listening; stdout={self.lines!r} "
                        f"stderr={self.stderr_lines!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StartFailed(f"no listening lines within {self.start_timeout}s: {self.lines!r}")
                self._cond.wait(timeout=min(left, 0.1))
        if want_http:
            self.http_port = int(self._find(HTTP_LISTEN_RE).group(1))
            assert self.http_port == int(req["HTTP_PORT"]), self.lines
        self.audio_port = int(self._find(AUDIO_LISTEN_RE).group(1))
        assert self.audio_port == int(req["PORT"]), self.lines

    def _find(self, rx: re.Pattern):
        for line in self.lines:
            m = rx.match(line)
            if m:
                return m
        return None

    def _pump(self, stream, sink: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then wait up to `timeout`. Returns the exit code (None if it had to be killed)."""
        if self.stopped or self.proc is None:
            return self.exit_code
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_quietly()
                self.exit_code = None
        else:
            self.exit_code = self.proc.returncode
        for t in self._threads:
            t.join(timeout=2)
        return self.exit_code

    def _kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # by PID, only our own child
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # ----------------------------------------------------------------- inspection
    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def wait_for_log(self, pattern: str, timeout: float = 5.0, start: int = 0) -> re.Match:
        """Wait until a stdout line (index >= start) matches `pattern` (re.search)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(self.lines[-30:])
                    raise AssertionError(f"no log line matching {pattern!r} within {timeout}s; last lines:\n{tail}")
                self._cond.wait(timeout=min(left, 0.1))

    def log_matches(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        with self._cond:
            return [l for l in self.lines if rx.search(l)]

    def http(self, timeout: float = 5.0) -> RawHttp:
        return RawHttp("127.0.0.1", self.http_port, timeout=timeout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"


def judge_exit(srv: AvrServer, code: int | None, timeout: float = 5.0) -> str | None:
    """None if the exit after SIGTERM (`AvrServer.stop`) is acceptable, else what was wrong."""
    if code == 0:
        return None
    if code is None:
        return f"server pid {srv.pid} did not exit within {timeout:g} s of SIGTERM (killed)"
    stderr = [l for l in srv.stderr_lines if l.strip()][:3]
    return f"server pid {srv.pid} exited with {code} after SIGTERM; stderr {stderr!r}; last lines {srv.lines[-6:]!r}"


def stop_server(srv: AvrServer, timeout: float = 5.0) -> float:
    """SIGTERM; the server must exit 0 within `timeout`. Returns when it had exited (monotonic)."""
    code = srv.stop(timeout=timeout)
    exited = time.monotonic()
    problem = judge_exit(srv, code, timeout)
    assert problem is None, problem
    return exited


@pytest.fixture
def avr_server():
    """Factory: `srv = avr_server(STS_URL="ws://...", MAX_PENDING_CALLS="3")`.

    Teardown: SIGTERM each server, which must exit 0 within 5 s. A test may stop a server
    itself (`stop_server(srv)`, or `srv.stop()` and judge the exit itself) to make what its
    peers saw final; teardown leaves such a server alone.
    """
    servers: list[AvrServer] = []

    def factory(**env) -> AvrServer:
        srv = AvrServer(env)
        servers.append(srv)
        return srv.start()

    yield factory

    problems = []
    for srv in servers:
        if srv.stopped:
            continue  # stopped (and judged) by the test
        was_alive = srv.alive()
        code = srv.stop(timeout=5.0)
        if not was_alive:
            problems.append(f"server pid {srv.pid} had already exited with {srv.proc.returncode}; "
                            f"last lines: {srv.lines[-10:]!r} stderr: {srv.stderr_lines[-10:]!r}")
        elif judge_exit(srv, code):
            problems.append(judge_exit(srv, code))
    assert not problems, "; ".join(problems)


@pytest.fixture
def avr(avr_server):
    """The same factory as `avr_server`, under the name the webhook and HTTP STS tests use."""
    return avr_server


@pytest.fixture
def calls():
    """Factory for simulated Asterisk calls (`calls(srv, uuid=None, start=True, **kw)`);
    all hung up at teardown."""
    from asterisk_sim import AsteriskCall

    made: list[AsteriskCall] = []

    def factory(srv, uuid: str | None = None, start: bool = True, **kw) -> AsteriskCall:
        call = AsteriskCall("127.0.0.1", srv.audio_port, uuid, **kw)
        made.append(call)
        return call.start() if start else call.connect()

    yield factory
    for c in made:
        if not c.closed_by_us:
            try:
                c.hangup()
            except OSError:
                pass


def run_config_error(env: dict[str, str], timeout: float = 5.0) -> tuple[int, list[str]]:
    """Start the server with a bad configuration; return (exit code, all output lines)."""
    if not AVR_CORE_BIN.exists():
        pytest.fail(f"server binary not found: {AVR_CORE_BIN}")
    full = base_env()
    full.update(env)
    proc = subprocess.Popen([str(AVR_CORE_BIN)], env=full, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"server with bad config {env} was still running after {timeout}s")
    lines = [l for l in (out + err).decode("utf-8", "replace").splitlines() if l.strip()]
    return proc.returncode, lines


@pytest.fixture
def sts_peer():
    """Factory: `sts = sts_peer("node", "echo", accept_delay_ms=300)`; stopped at teardown."""
    from sts_proc import StsPeer

    peers = []

    def factory(impl: str, mode: str, **opts):
        peer = StsPeer(impl, mode, **opts)
        peers.append(peer)
        return peer.start()

    yield factory
    for p in peers:
        p.stop()
        try:
            os.unlink(p.record_path)
        except OSError:
            pass


def started_peers(peer_class):
    """The body of a factory fixture for a peer with `start()` and `stop()`:
    `yield from started_peers(Peer)` gives the test `factory(*args, **kw)`, which builds and
    starts one; each one started is stopped at teardown."""
    started = []

    def factory(*args, **kw):
        peer = peer_class(*args, **kw).start()
        started.append(peer)
        return peer

    yield factory
    for peer in started:
        peer.stop()


@pytest.fixture
def webhook_receiver():
    """Factory: `hooks = webhook_receiver()`; stopped at teardown."""
    from webhook_receiver import WebhookReceiver

    yield from started_peers(WebhookReceiver)


@pytest.fixture
def harness_lag():
    """`HarnessLag` running for the whole test: how late the machine wakes a sleeping process
    (helpers.py); pacing checks widen their bounds by it, so a busy machine does not count as server lateness."""
    from helpers import HarnessLag

    lag = HarnessLag().start()
    yield lag
    lag.stop()
