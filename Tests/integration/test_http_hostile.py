"""One hostile HTTP client must not hurt anyone: strict heads (request smuggling probes), HEAD
without a body, response backpressure for a client that pipelines and never reads (beside
live calls), silent connections and file-descriptor pressure, the /call byte budget."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

from audio import sine_frame
from conftest import stop_server
from helpers import (
    ConnectionClosed,
    RawHttp,
    assert_health,
    assert_json_error,
    build_request,
    call_request,
    check_echo_steady,
    check_timing,
    free_port,
    request_once,
    rss_growth_bound_mib,
)

SMUGGLED = str(uuidlib.UUID(int=0x5A5A))


def smuggled_call() -> bytes:
    return call_request(SMUGGLED)


# Each probe: bytes llhttp 8.1 alone accepts, a proxy may frame otherwise. Several hide a
# complete `POST /call` that must never register.
PROBES = {
    "bare-cr-ends-head": b"GET /health HTTP/1.1\r\nHost: x\r\n\rX" + smuggled_call(),
    "chunk-data-without-crlf": (b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n" + smuggled_call()),
    "obs-fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n" + smuggled_call(),
    "obs-fold-in-content-length": (b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n 1\r\n\r\n"
                                   + smuggled_call()),
    "space-in-header-name": b"GET /health HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n" + smuggled_call(),
    "space-before-colon": b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n" + smuggled_call(),
    "missing-host": b"GET /health HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "repeated-host": b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


def read_until_eof(c: RawHttp, timeout: float) -> bytes:
    """What arrives until the server closes (EOF or reset), within `timeout`."""
    deadline = time.monotonic() + timeout
    data = c.buf
    c.buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"connection still open after {timeout} s; got {data[:300]!r}")
        c.sock.settimeout(left)
        try:
            chunk = c.sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


# --------------------------------------------------------------------------- strict heads
@pytest.mark.parametrize("name", sorted(PROBES))
def test_strict_head_probe_gets_400_and_close_and_smuggles_nothing(avr_server, name):
    # Room for exactly one pending call: a smuggled registration would take it.
    srv = avr_server(MAX_PENDING_CALLS="1")
    with srv.http() as c:
        c.send(PROBES[name])
        resp = c.read_response()
        assert_json_error(resp, 400)
        assert resp.header("Connection") == "close", resp.headers
        rest = read_until_eof(c, timeout=8.0)
    assert rest == b"", f"{name}: more than one answer: {rest[:300]!r}"
    srv.wait_for_log(r"^\[INFO\]: HTTP 400 to .* and close: strictHead")
    # Nothing was registered: the one slot is free for a real call.
    resp = request_once(srv.http_port, call_request(str(uuidlib.uuid4())))
    assert resp.status == 200, (name, resp.status, resp.body)
    assert_health(srv.http_port)


def test_absolute_form_target_is_routed_by_its_path(avr_server):
    srv = avr_server(STS_URL="ws://localhost:6030")
    body = json.dumps({"uuid": str(uuidlib.uuid4()), "payload": {"a": "1"}}).encode()
    data = (f"POST http://127.0.0.1:{srv.http_port}/call HTTP/1.1\r\nHost: elsewhere\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    resp = request_once(srv.http_port, data)
    assert resp.status == 200, resp.body
    assert resp.json()["sts_url"] == "ws://localhost:6030/?a=1"


# --------------------------------------------------------------------------- HEAD
@pytest.mark.parametrize("path", ["/ready", "/health", "/metrics"])
def test_head_has_no_body_and_the_next_response_stays_framed(avr_server, path):
    srv = avr_server()
    with srv.http() as c:
        c.send(build_request("GET", path))
        get = c.read_response()
        c.send(build_request("HEAD", path) + build_request("GET", "/health"))
        head = c.read_response(head_only=True)
        assert head.status == get.status
        if path != "/metrics":  # the exposition changes between two scrapes
            assert int(head.header("Content-Length")) == len(get.body)
        assert head.header("Content-Type") == get.header("Content-Type")
        # What follows the HEAD answer is the next response, not a body.
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.json() == {"status": "ok"}, (nxt.status, nxt.body)
        assert c.buf == b""


# --------------------------------------------------------------------------- backpressure
def flood_without_reading(port: int, request: bytes, total: int, seconds: float) -> tuple[int, socket.socket]:
    """Pipelines `request` up to `total` bytes for at most `seconds`, never reading; returns
    the bytes the kernel took. The socket stays open (returned for the caller to close)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    burst = request * max(1, 65536 // len(request))
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < total and time.monotonic() < deadline:
        _, writable, _ = select.select([], [sock], [], 0.05)
        if not writable:
            continue
        try:
            sent += sock.send(burst)
        except BlockingIOError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            break  # the server gave up on this client
    return sent, sock


@pytest.mark.parametrize("port_kind", ["http", "metrics"])
def test_client_pipelining_without_reading_is_held_back_and_calls_stay_paced(avr_server, calls, port_kind, harness_lag):
    """50 MB of `GET /metrics` pipelined by a client that never reads, beside 5 echo calls:
    the server stops reading it once a response is unsent, so RSS stays flat, the calls keep
    their 20 ms pacing, /health answers, and SIGTERM still ends the server promptly."""
    metrics_port = free_port()
    srv = avr_server(METRICS_PORT=str(metrics_port))  # no STS_URL: the built-in echo
    port = srv.http_port if port_kind == "http" else metrics_port
    live = [calls(srv) for _ in range(5)]
    for call in live:
        call.start_streaming(sine_frame)
    for call in live:
        call.wait_frames(10)
    rss_before = srv.rss_kib()
    wall0 = time.time()
    sent, hostile = flood_without_reading(port, build_request("GET", "/metrics"), 50 * 1024 * 1024, seconds=6.0)
    try:
        # The calls keep running a little longer while the hostile connection is held.
        for call in live:
            call.wait_frames(len(call.audio_frames()) + 50, timeout=4.0)
        rss_after = srv.rss_kib()
        assert_health(srv.http_port)
        growth_mib = (rss_after - rss_before) / 1024
        print(f"{port_kind}: hostile client got {sent / 1e6:.1f} MB in, RSS {rss_before} -> {rss_after} KiB "
              f"(+{growth_mib:.1f} MiB)")
        assert growth_mib < rss_growth_bound_mib(64), f"RSS grew {growth_mib:.1f} MiB for one client that does not read"
        assert sent < 50 * 1024 * 1024, "the server read all 50 MB: no backpressure"
        # Every frame echoed, and the delay the server added to each (from when the caller wrote
        # it) never jumps: a loop held by the flood would add the hold at once.
        for call in live:
            call.stop_streaming()
        print(check_echo_steady(live, harness_lag, f"echo calls beside the {port_kind} flood", since=wall0))
        # SIGTERM with the unread connection still open: the server exits promptly.
        t_stop = time.monotonic()
        stop_server(srv, timeout=5.0)
        print(f"stopped {time.monotonic() - t_stop:.2f} s after SIGTERM")
    finally:
        hostile.close()


def test_client_that_never_reads_is_disconnected_after_the_request_timeout(avr_server):
    srv = avr_server(HTTP_HEADER_TIMEOUT="1000")
    sent, hostile = flood_without_reading(srv.http_port, build_request("GET", "/metrics"), 8 * 1024 * 1024, seconds=2.0)
    try:
        srv.wait_for_log(r"^\[INFO\]: HTTP client .* left \d+ response bytes unread for 1000 ms: closed", timeout=5.0)
        assert_health(srv.http_port)
    finally:
        hostile.close()


# --------------------------------------------------------------------------- idle connections
def test_silent_connection_is_closed_after_the_first_request_timeout(avr_server):
    srv = avr_server(HTTP_HEADER_TIMEOUT="1000")
    with srv.http() as silent, srv.http() as served:
        served.send(build_request("GET", "/health"))
        assert served.read_response().status == 200
        t0 = time.monotonic()
        assert read_until_eof(silent, timeout=4.0) == b""
        took = time.monotonic() - t0
        assert 0.7 <= took <= 2.5, f"silent connection closed after {took:.2f} s (first-request timeout 1 s)"
        # The connection that was served is idle under HTTP_IDLE_TIMEOUT (300 s): still open.
        served.send(build_request("GET", "/health"))
        assert served.read_response().status == 200


def test_out_of_fds_the_oldest_idle_connections_make_room(avr_server):
    """The server limited to 128 descriptors, 200 connections that never send anything: new
    requests still get through (silent connections are closed first, oldest first), long
    before the first-request timeout (10 s) would free them."""
    srv = avr_server()
    subprocess.run(["prlimit", f"--pid={srv.pid}", "--nofile=128:128"], check=True)
    # A keep-alive client that was served first (the oldest idle connection of all).
    served = srv.http()
    served.send(build_request("GET", "/health"))
    assert served.read_response().status == 200
    idle = [served.sock]
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", srv.http_port), timeout=5.0))
        t0 = time.monotonic()
        resp = request_once(srv.http_port, build_request("GET", "/health"), timeout=4.0)
        took = time.monotonic() - t0
        assert resp.status == 200
        assert took < 4.0
        srv.wait_for_log(r"HTTP accept failed \(EMFILE[^)]*\): closing \d+ idle connection\(s\)")
        # The silent connections went first: the served keep-alive connection still works.
        served.send(build_request("GET", "/health"))
        assert served.read_response().status == 200
        print(f"/health answered {took * 1000:.0f} ms after 200 idle connections on 128 fds")
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------- /call byte budget
def test_pending_call_byte_budget_refuses_with_503(avr_server):
    srv = avr_server(MAX_PENDING_CALL_BYTES="65536")  # no STS_URL: a route is its body
    big = {"note": "n" * 20_000}
    for _ in range(3):
        assert request_once(srv.http_port, call_request(str(uuidlib.uuid4()), big)).status == 200
    resp = request_once(srv.http_port, call_request(str(uuidlib.uuid4()), big))
    assert_json_error(resp, 503)
    assert "too many bytes" in resp.json()["error"], resp.body
    srv.wait_for_log(r"POST /call refused for .*MAX_PENDING_CALL_BYTES")
    # A small one still fits.
    assert request_once(srv.http_port, call_request(str(uuidlib.uuid4()))).status == 200
    assert_health(srv.http_port)
