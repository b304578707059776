"""Runs the binary inside the debootstrap root (chroot, unprivileged user) and checks it:
starts, GET /ready is 200, one AudioSocket call hears its echo, SIGTERM drains (/ready 503,
the call goes on), the call ends, the server exits 0. Called by deploy/image-check.sh."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"image-check: FAIL: {what} within {timeout} s")


def main():
    root, user = sys.argv[1], sys.argv[2]
    audio, http = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "PORT": str(audio), "HTTP_PORT": str(http), "DRAIN_TIMEOUT": "30"}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    proc = subprocess.Popen([chroot, f"--userspec={user}:{user}", root, "/usr/local/bin/avr-core"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    try:
        os.set_blocking(proc.stdout.fileno(), False)

        def pump():
            chunk = proc.stdout.read()
            if chunk:
                lines.extend(chunk.decode(errors="replace").splitlines())
            return lines

        wait(lambda: pump() and any("AudioSocket Server listening" in l for l in lines) or proc.poll() is not None,
             10, "the server to start")
        if proc.poll() is not None:
            raise SystemExit(f"image-check: FAIL: exited with {proc.returncode}: {pump()}")
        uid = int(subprocess.run(["ps", "-o", "uid=", "-p", str(proc.pid)], capture_output=True).stdout or b"-1")
        status, body = get(http, "/ready")
        assert (status, json.loads(body)) == (200, {"status": "ready"}), (status, body)
        print(f"image-check: started in the chroot, GET /ready {status} {body.decode()}")
        call = socket.create_connection(("127.0.0.1", audio), timeout=3)
        call.sendall(struct.pack(">BH", 1, 16) + uuid.uuid4().bytes)
        frame = bytes([0x11, 0x22]) * 160
        received = b""
        deadline = time.monotonic() + 5
        sent = 0
        while frame not in received:
            if time.monotonic() > deadline:
                raise SystemExit("image-check: FAIL: no echo of the caller's frame")
            if sent < 25:
                call.sendall(struct.pack(">BH", 0x10, len(frame)) + frame)
                sent += 1
            call.settimeout(0.02)
            try:
                received += call.recv(65536)
            except socket.timeout:
                pass
        print("image-check: echo call: the caller hears its own frame")
        proc.send_signal(signal.SIGTERM)
        wait(lambda: get(http, "/ready")[0] == 503, 3, "/ready 503 after SIGTERM")
        assert proc.poll() is None, "exited while a call was in progress"
        print("image-check: SIGTERM: /ready 503 (draining), the call goes on")
        call.close()
        proc.wait(timeout=5)
        pump()
        assert proc.returncode == 0, f"exit status {proc.returncode}"
        print(f"image-check: the call ended, the server exited 0; it ran as uid {uid}")
        assert uid not in (0, -1), "ran as root"
        assert any("Drained" in l for l in lines), lines[-5:]
        print("image-check: PASS")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.returncode not in (0, None):
            print("\n".join(lines[-20:]))


main()
