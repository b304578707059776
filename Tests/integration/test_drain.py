"""Graceful drain: SIGTERM fails /ready at once, refuses new calls, and lets the
calls in progress finish (or end at DRAIN_TIMEOUT); a second SIGTERM or a SIGINT ends them
all at once. Real sockets, the simulated Asterisk, the built-in echo."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from conftest import judge_exit
from helpers import build_request, call_request, check_timing, echo_ok, request_once, wait_until

pytestmark = pytest.mark.call_path

FRAME = bytes(range(160)) * 2  # 320 bytes, distinctive


def refused(port: int) -> bool:
    """True when a TCP connect to the port is refused (the listener is closed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


def ready_status(srv) -> tuple[int, bytes]:
    resp = request_once(srv.http_port, build_request("GET", "/ready"))
    return resp.status, resp.body


def wait_exit(srv, timeout: float) -> int | None:
    try:
        return srv.proc.wait(timeout=timeout)
    except Exception:
        return None


def finish(srv, code) -> None:
    """The server exited on its own; record it so teardown leaves it alone."""
    srv.stop()
    assert judge_exit(srv, code) is None, judge_exit(srv, code)


@pytest.mark.parametrize("loops", ["1", "2"])
def test_sigterm_drains_until_the_last_call_ends(avr_server, calls, loops):
    srv = avr_server(DRAIN_TIMEOUT="60", LOOPS=loops)
    assert ready_status(srv) == (200, b'{"status":"ready"}')
    live = [calls(srv) for _ in range(6)]
    for call in live:
        assert echo_ok(call)
    srv.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    # Readiness fails at once (every loop: fresh connections land on either with LOOPS=2).
    wait_until(lambda: ready_status(srv)[0] == 503, 2.0, message="/ready 503 after SIGTERM")
    check_timing(time.monotonic() - t0 < 1.0, f"/ready took {time.monotonic() - t0:.3f} s to fail")
    for _ in range(6):
        assert ready_status(srv) == (503, b'{"status":"draining"}')
    health = request_once(srv.http_port, build_request("GET", "/health"))
    assert health.status == 200, "liveness stays 200 while draining"
    resp = request_once(srv.http_port, call_request())
    assert resp.status == 503 and b"draining" in resp.body, resp.body
    # New AudioSocket connections are refused (the listener of every loop is closed).
    wait_until(lambda: all(refused(srv.audio_port) for _ in range(6)), 2.0, message="AudioSocket refused")
    # Calls in progress go on.
    for call in live:
        assert echo_ok(call)
    srv.wait_for_log(r"draining: .*new calls are refused, 6 call\(s\) in progress", 2.0)
    # They end one by one; progress is logged; none is cut by the server.
    for call in live[:3]:
        call.hangup()
    srv.wait_for_log(r"draining: 3 calls left", 5.0)
    assert srv.alive()
    for call in live[3:]:
        assert echo_ok(call)
        assert call.hangup_at is None and call.eof_at is None
    for call in live[3:]:
        call.hangup()
    code = wait_exit(srv, 5.0)
    finish(srv, code)
    srv.wait_for_log(r"Drained: no calls left", 1.0)


def test_drain_timeout_ends_the_rest_cleanly(avr_server, calls):
    srv = avr_server(DRAIN_TIMEOUT="1")
    live = [calls(srv) for _ in range(3)]
    for call in live:
        assert echo_ok(call)
    srv.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    for call in live:
        ended = call.wait_ended(6.0)
        assert call.hangup_at is not None, "the server sends 0x00 at the timeout"
        check_timing(0.8 <= ended - t0 <= 3.0, f"call ended {ended - t0:.2f} s after SIGTERM (DRAIN_TIMEOUT=1)")
    finish(srv, wait_exit(srv, 5.0))
    srv.wait_for_log(r"DRAIN_TIMEOUT \(1 s\) passed: ending 3 call", 1.0)


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_ends_everything_at_once(avr_server, calls, second):
    srv = avr_server(DRAIN_TIMEOUT="600", LOOPS="2")
    live = [calls(srv) for _ in range(4)]
    for call in live:
        assert echo_ok(call)
    srv.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: ready_status(srv)[0] == 503, 2.0, message="/ready 503 after SIGTERM")
    for call in live:
        assert echo_ok(call)
    srv.proc.send_signal(second)
    t0 = time.monotonic()
    for call in live:
        ended = call.wait_ended(3.0)
        assert call.hangup_at is not None
        check_timing(ended - t0 < 1.0, f"call ended {ended - t0:.2f} s after the second signal")
    finish(srv, wait_exit(srv, 5.0))


def test_sigint_first_ends_at_once(avr_server, calls):
    srv = avr_server(DRAIN_TIMEOUT="600")
    call = calls(srv)
    assert echo_ok(call)
    srv.proc.send_signal(signal.SIGINT)
    call.wait_ended(3.0)
    assert call.hangup_at is not None
    finish(srv, wait_exit(srv, 5.0))


def test_idle_server_exits_at_once_on_sigterm(avr_server):
    srv = avr_server(DRAIN_TIMEOUT="600")
    srv.proc.send_signal(signal.SIGTERM)
    finish(srv, wait_exit(srv, 3.0))
