"""Start an STS peer process (sts_node.js or sts_python.py) and read what it recorded."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PEERS = Path(__file__).resolve().parent
NODE_PATH = os.environ.get("NODE_PATH", "/usr/share/nodejs")


class StsPeer:
    def __init__(self, impl: str, mode: str, tls: tuple[str, str] | None = None, tls_max: str | None = None,
                 port: int = 0, **opts):
        """`tls`: (certificate, key) PEM paths: the peer serves wss:// (`tls_max` "1.2": no TLS 1.3)."""
        self.impl, self.mode, self.opts = impl, mode, opts
        self.tls, self.tls_max = tls, tls_max
        fd, self.record_path = tempfile.mkstemp(prefix=f"sts-{impl}-{mode}-", suffix=".jsonl")
        os.close(fd)
        self.proc: subprocess.Popen | None = None
        self.listen_port = port   # 0: any free port
        self.port: int | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 10.0) -> "StsPeer":
        args = [f"{k}={v}" for k, v in self.opts.items()]
        if self.impl == "node":
            cmd = ["node", str(PEERS / "sts_node.js"), str(self.listen_port), self.mode, self.record_path, *args]
        elif self.impl == "python":
            cmd = [sys.executable, str(PEERS / "sts_python.py"), str(self.listen_port), self.mode, self.record_path, *args]
        else:
            raise ValueError(self.impl)
        env = dict(os.environ, NODE_PATH=NODE_PATH)
        if self.tls:
            env.update(STS_TLS_CERT=self.tls[0], STS_TLS_KEY=self.tls[1])
            if self.tls_max:
                env["STS_TLS_MAX"] = self.tls_max
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        ready = threading.Event()

        def pump():
            for raw in iter(self.proc.stdout.readline, b""):
                line = raw.decode(errors="replace").rstrip()
                self.output.append(line)
                if line.startswith("LISTENING "):
                    self.port = int(line.split()[1])
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.port is None:
            self.stop()
            raise AssertionError(f"STS peer {self.impl}/{self.mode} did not start: {self.output}")
        return self

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # by PID (Popen), our own child
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    # ------------------------------------------------------------------ records
    def records(self) -> list[dict]:
        out = []
        with open(self.record_path) as fh:
            for line in fh:
                # A line without its newline is still being written: stop there. Reading on
                # would return the rest of that same line (the file grew meanwhile) as if it
                # were a line of its own.
                if not line.endswith("\n"):
                    break
                out.append(json.loads(line))
        return out

    def conns(self) -> list[int]:
        return [r["conn"] for r in self.records() if r["event"] == "connection"]

    def of(self, conn: int, event: str | None = None) -> list[dict]:
        return [r for r in self.records() if r["conn"] == conn and (event is None or r["event"] == event)]

    def messages(self, conn: int) -> list[dict]:
        return self.of(conn, "message")

    def audio_in(self, conn: int) -> bytes:
        return b"".join(base64.b64decode(m["audio"]) for m in self.messages(conn) if "audio" in m)

    def wait(self, predicate, timeout: float = 5.0, message: str = "STS record"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.records())
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"STS peer: timed out after {timeout}s waiting for {message}; "
                                     f"last records: {[_short(r) for r in self.records()[-8:]]}")
            time.sleep(0.01)

    def wait_conn(self, index: int = 0, timeout: float = 5.0) -> int:
        conns = self.wait(lambda recs: [r["conn"] for r in recs if r["event"] == "connection"][index:],
                          timeout, f"connection #{index + 1}")
        return conns[0]


def _short(r: dict) -> dict:
    r = dict(r)
    if "audio" in r:
        r["audio"] = f"<{r.get('audio_len')} bytes>"
    return r
