"""Faults from the operating system: out of file descriptors, peers that reset.

The soak (`make soak`) runs these under load; here each is pinned down alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from asterisk_sim import AsteriskCall
from conftest import run_config_error
from helpers import RawHttp, free_port, wait_until

PRLIMIT = subprocess.run(["sh", "-c", "command -v prlimit"], capture_output=True).returncode == 0


def soft_nofile(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no fd limit in /proc/PID/limits")


def set_soft_nofile(pid: int, soft: int, hard: int) -> None:
    subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"], check=True)


@pytest.mark.skipif(not PRLIMIT, reason="prlimit (util-linux) not installed")
def test_out_of_fds_accepting_pauses_logs_and_serves_the_waiting_connections(avr_server):
    srv = avr_server()
    soft, hard = soft_nofile(srv.pid)
    before = len(srv.lines)
    # 3: stdin, stdout and stderr hold 0-2, so no new fd can be had at all.
    set_soft_nofile(srv.pid, 3, hard)
    try:
        http = RawHttp("127.0.0.1", srv.http_port, timeout=5.0)
        http.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        call = AsteriskCall("127.0.0.1", srv.audio_port)
        call.start()
        call.send_frame(bytes(320))
        srv.wait_for_log(r"^\[WARN\]: HTTP accept failed: EMFILE", start=before)
        srv.wait_for_log(r"^\[WARN\]: AudioSocket accept failed: EMFILE", start=before)
        # Neither connection was accepted-and-closed: both wait in the backlog.
        assert http.still_open_after(0.3), "the HTTP connection was closed while the server was out of fds"
        assert not call.ended(), "the AudioSocket connection was closed while the server was out of fds"
        assert srv.alive()
    finally:
        set_soft_nofile(srv.pid, soft, hard)
    response = http.read_response(timeout=5.0)
    assert response.status == 200
    http.close()
    srv.wait_for_log(r"^\[INFO\]: HTTP accepting again after \d+ ms", start=before)
    srv.wait_for_log(r"^\[INFO\]: AudioSocket accepting again after \d+ ms", start=before)
    # The call that waited is served: its UUID is read and the built-in echo answers.
    srv.wait_for_log(r"Call started", start=before)
    for _ in range(10):
        call.send_frame(bytes(range(256)) + bytes(64))
    call.wait_for(lambda: any(p[:256] == bytes(range(256)) for _, p in call.audio_frames()), timeout=5.0,
                  message="the waiting call's echo")
    call.hangup()
    # Logged once per pause, not once per attempt.
    assert len(srv.log_matches(r"HTTP accept failed: EMFILE")) == 1


def test_sigpipe_is_ignored(avr_server):
    """A write to a connection the peer has reset must be an error, not SIGPIPE: the soak lost
    the whole process to one caller that hung up while playback was in flight."""
    srv = avr_server()
    with open(f"/proc/{srv.pid}/status") as f:
        ignored = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    assert ignored & (1 << (13 - 1)), "SIGPIPE (13) is not ignored"


def test_callers_resetting_mid_playback_do_not_take_the_server_down(avr_server):
    """Callers that reset (RST) while the server plays to them, many at once."""
    srv = avr_server()
    calls = [AsteriskCall("127.0.0.1", srv.audio_port).start() for _ in range(40)]
    for call in calls:
        call.send_frame(bytes(320))
    wait_until(lambda: all(call.audio_frames() for call in calls), timeout=5.0, message="playback to every call")
    for call in calls:
        call.reset()
    wait_until(lambda: len(srv.log_matches(r"Call ended")) >= 40, timeout=5.0, message="every call ended")
    assert srv.alive()
    fresh = AsteriskCall("127.0.0.1", srv.audio_port).start()
    fresh.send_frame(bytes(320))
    fresh.wait_frames(1, timeout=5.0)
    fresh.hangup()


@pytest.mark.parametrize("which", ["PORT", "HTTP_PORT"])
def test_port_in_use_is_a_start_up_error(which):
    """A port another process listens on (plain socket, no SO_REUSEPORT) stops start-up with
    one line naming the error, instead of a silent listen on some random port (libuv defers
    EADDRINUSE from bind to listen, and the AudioSocket listener calls listen itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        env = {"PORT": str(free_port()), "HTTP_PORT": str(free_port())}
        env[which] = str(taken)
        code, lines = run_config_error(env)
    assert code != 0, lines
    assert any(f"Cannot listen on {which}={taken}" in l and "address already in use" in l for l in lines), lines
