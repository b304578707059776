"""Real redis-server and haproxy processes on free loopback ports, for the cluster tests.
HAProxy runs deploy/haproxy.cfg itself (the addresses come from its environment), so the
deployment example is what is tested. Every process is ours, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from helpers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM a peer we started, SIGKILL it if it is still there 5 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RedisServer:
    def __init__(self, port: int | None = None, password: str | None = None):
        self.port = port or free_port()
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        assert exe, "redis-server not installed (make deps installs it)"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "no", *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is not None or _port_open(self.port), 5.0,
                   message=f"redis-server on {self.port}")
        assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
        return self

    def command(self, *args: str) -> str:
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        out = subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args], capture_output=True, timeout=5)
        return out.stdout.decode().strip()

    def pause(self) -> None:
        """SIGSTOP: the socket still accepts connections, nothing is answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            _terminate(self.proc)


class HAProxy:
    """deploy/haproxy.cfg in front of two avr-core servers (AvrServer objects)."""

    def __init__(self, avr1, avr2):
        self.avr1, self.avr2 = avr1, avr2
        self.audio_port = free_port()
        self.http_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="haproxy-")
        self.stats = os.path.join(self.dir, "stats.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "HAProxy":
        exe = shutil.which("haproxy")
        assert exe, "haproxy not installed (make deps installs it)"
        env = dict(os.environ,
                   LB_BIND="127.0.0.1", LB_AUDIOSOCKET_PORT=str(self.audio_port), LB_HTTP_PORT=str(self.http_port),
                   AVR1_HOST="127.0.0.1", AVR1_AUDIOSOCKET_PORT=str(self.avr1.audio_port),
                   AVR1_HTTP_PORT=str(self.avr1.http_port),
                   AVR2_HOST="127.0.0.1", AVR2_AUDIOSOCKET_PORT=str(self.avr2.audio_port),
                   AVR2_HTTP_PORT=str(self.avr2.http_port),
                   HAPROXY_STATS_SOCKET=self.stats)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([exe, "-db", "-f", str(HAPROXY_CFG)], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is not None or (_port_open(self.audio_port) and _port_open(self.http_port)),
                   5.0, message="haproxy listening")
        assert self.proc.poll() is None, \
            f"haproxy exited with {self.proc.returncode}: {open(self.log_path, errors='replace').read()[-800:]}"
        # Both servers healthy (rise 2 checks) before any call goes through.
        wait_until(lambda: self.states() == {"avr1": "UP", "avr2": "UP"}, 10.0, 0.05, "both servers UP in haproxy")
        return self

    def states(self, backend: str = "avr_audiosocket") -> dict[str, str]:
        """Server name -> UP / DOWN / ... from the admin socket (`show stat`)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.stats)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        out = {}
        for line in data.decode().splitlines():
            cols = line.split(",")
            if len(cols) > 17 and cols[0] == backend and cols[1] not in ("BACKEND", "FRONTEND"):
                out[cols[1]] = cols[17].split(" ")[0]
        return out

    def log_tail(self, size: int = 1500) -> str:
        """The end of haproxy's own log (server state changes, redispatches)."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            _terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
