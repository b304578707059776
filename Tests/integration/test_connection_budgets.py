"""AudioSocket connection budgets: a connection must send its UUID within
AUDIOSOCKET_UUID_TIMEOUT; at most AUDIOSOCKET_MAX_UNIDENTIFIED wait for it at once; and when
the process runs out of file descriptors, the oldest of them are closed first so that calls
and /health are still accepted (README "Connection budgets").

Real sockets against the release server; every wait is on an event, with a deadline.
"""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

from asterisk_sim import KIND_UUID, AsteriskCall, message
from audio import is_silence, marked_frame, marked_seq, parse_marker
from helpers import build_request, check_echo_steady, check_timing, echo_delays, request_once, wait_until
from metrics_scrape import value

PRLIMIT = subprocess.run(["sh", "-c", "command -v prlimit"], capture_output=True).returncode == 0
CLOSED_METRIC = "avr_audiosocket_unidentified_closed_total"


def wait_eof(sock: socket.socket, timeout: float) -> float | None:
    """Block until the server closes `sock` (EOF or reset); returns when (monotonic), or None
    if it is still open after `timeout`. Any byte received first is a failure: the server
    must not speak to a connection that has not identified itself."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return time.monotonic()
        if not data:
            return time.monotonic()
        raise AssertionError(f"the server sent {data[:16]!r} to a connection that sent no UUID")


def echoed_marks(call: AsteriskCall, i: int) -> list[int]:
    marks = [parse_marker(p) for _, p in call.audio_frames() if not is_silence(p)]
    foreign = [(k, m) for k, m in enumerate(marks) if m is None or m[0] != i]
    assert not foreign, f"call {i} heard audio that is not its own: {foreign[:5]} of {len(marks)} frames"
    return [m[1] for m in marks]


# ----------------------------------------------------------------- the UUID deadline
def test_connections_that_send_no_uuid_are_closed_after_the_deadline(avr_server, calls):
    srv = avr_server(AUDIOSOCKET_UUID_TIMEOUT="300")
    before = len(srv.lines)
    opened = []
    for _ in range(200):
        opened.append((time.monotonic(), socket.create_connection(("127.0.0.1", srv.audio_port), timeout=3)))
    # Half a UUID message (header and 6 of its 16 bytes) is no UUID either.
    started = time.monotonic()
    partial = socket.create_connection(("127.0.0.1", srv.audio_port), timeout=3)
    partial.sendall(message(KIND_UUID, uuidlib.uuid4().bytes)[:9])
    opened.append((started, partial))
    for connected, sock in opened:
        closed = wait_eof(sock, timeout=3.0)
        assert closed is not None, "a connection that sent no UUID was still open 3 s after connecting"
        took = closed - connected
        assert took >= 0.29, f"closed {took:.3f} s after connecting, before AUDIOSOCKET_UUID_TIMEOUT=300"
        check_timing(took < 1.0, f"closed {took:.3f} s after connecting (deadline 300 ms, sweep 50 ms)")
        sock.close()
    wait_until(lambda: value(srv.http_port, CLOSED_METRIC, reason="uuid_timeout") == 201, timeout=3.0,
               message="201 uuid_timeout closures counted")
    line = srv.wait_for_log(r"^\[INFO\]: Closed (\d+) AudioSocket connection\(s\) that sent no UUID: "
                            r"\d+ past AUDIOSOCKET_UUID_TIMEOUT \(300 ms\); last from 127\.0\.0\.1:\d+", start=before)
    # Summed up (at most one line a second, the rest reported a second after the first), and
    # no call was started or ended for them.
    def logged():
        return sum(int(re.search(r"Closed (\d+)", line).group(1)) for line in srv.log_matches(r"sent no UUID"))
    wait_until(lambda: logged() == 201, timeout=3.0, message="every closure in the summary lines")
    lines = srv.log_matches(r"sent no UUID")
    assert len(lines) <= 3, lines
    assert not srv.log_matches(r"Call (started|ended)"), srv.lines[before:]
    assert value(srv.http_port, "avr_calls_started_total") == 0
    # The server goes on serving calls.
    call = calls(srv)
    call.send_frame(marked_frame(0, 0))
    call.wait_for(lambda: echoed_marks(call, 0) == [0], 3.0, "the echo of a call after the closures")
    assert line.group(1)


def test_a_uuid_sent_late_but_within_the_deadline_is_served(avr_server, calls):
    srv = avr_server(AUDIOSOCKET_UUID_TIMEOUT="1000")
    call = calls(srv, start=False)                  # connected, nothing sent
    # The UUID comes 600 ms late (of 1000): deliberate, this is the case under test.
    time.sleep(0.6)
    assert not call.ended(), "closed before its deadline"
    call.send_raw(message(KIND_UUID, uuidlib.UUID(call.uuid).bytes))
    srv.wait_for_log(r"Call started", timeout=3.0)
    # Past the original deadline the call goes on: its frames are echoed, in order.
    t0 = time.monotonic()
    for seq in range(40):                           # 800 ms of audio, paced on an absolute grid
        delay = t0 + seq * 0.020 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        call.send_frame(marked_frame(1, seq))
    call.wait_for(lambda: echoed_marks(call, 1) == list(range(40)), 3.0, "40 echoed frames")
    assert not call.ended()
    assert value(srv.http_port, CLOSED_METRIC) == 0


def test_beyond_the_waiting_limit_the_oldest_connection_is_closed(avr_server, calls):
    srv = avr_server(AUDIOSOCKET_UUID_TIMEOUT="60000", AUDIOSOCKET_MAX_UNIDENTIFIED="4")
    idle = []
    for _ in range(4):
        idle.append(socket.create_connection(("127.0.0.1", srv.audio_port), timeout=3))
    # A call (identified at once) does not count against the limit.
    call = calls(srv)
    call.send_frame(marked_frame(2, 0))
    call.wait_for(lambda: echoed_marks(call, 2) == [0], 3.0, "the echo")
    fifth = socket.create_connection(("127.0.0.1", srv.audio_port), timeout=3)
    assert wait_eof(idle[0], timeout=3.0) is not None, "the oldest waiting connection was not closed"
    for sock in idle[1:] + [fifth]:
        assert wait_eof(sock, timeout=0.3) is None, "a younger waiting connection was closed"
    assert value(srv.http_port, CLOSED_METRIC, reason="waiting_limit") == 1
    srv.wait_for_log(r"Closed 1 AudioSocket connection\(s\) that sent no UUID: "
                     r"1 beyond AUDIOSOCKET_MAX_UNIDENTIFIED \(4 waiting\)")
    call.send_frame(marked_frame(2, 1))
    call.wait_for(lambda: echoed_marks(call, 2) == [0, 1], 3.0, "the echo after the closure")
    for sock in idle + [fifth]:
        sock.close()


# ----------------------------------------------------------------- out of file descriptors
@pytest.mark.skipif(not PRLIMIT, reason="prlimit (util-linux) not installed")
def test_idle_connections_beyond_the_fd_limit_starve_neither_calls_nor_health(avr_server, calls, harness_lag):
    """1,100 connections that never send a UUID, against a server limited to 1,024 fds (the
    deadline set far away, so only the fd-pressure path can free them): a new call is served,
    /health answers, and 5 calls in progress keep every frame on time."""
    idle_count, healthy = 1100, 5
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < idle_count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, idle_count + 500), hard))
    srv = avr_server(AUDIOSOCKET_UUID_TIMEOUT="600000")
    before = len(srv.lines)
    subprocess.run(["prlimit", "--pid", str(srv.pid), f"--nofile=1024:{hard}"], check=True)

    live = [calls(srv) for _ in range(healthy)]
    stop = threading.Event()
    sent = [0] * healthy

    def ticker():
        t0 = time.monotonic()
        seq = 0
        while not stop.is_set():
            d = t0 + seq * 0.020 - time.monotonic()
            if d > 0 and stop.wait(d):
                return
            for i, c in enumerate(live):
                c.stream_frame(seq, marked_frame(i, seq))
                sent[i] = seq + 1
            seq += 1

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    try:
        for i, c in enumerate(live):
            c.wait_for(lambda c=c, i=i: len(echoed_marks(c, i)) >= 5, 3.0, f"call {i}: the echo")
        idle = []
        phases = {"idle-open": time.time()}
        for _ in range(idle_count):
            idle.append(socket.create_connection(("127.0.0.1", srv.audio_port), timeout=5))
        # Out of fds: the server sheds the oldest idle connections (not yet identified).
        srv.wait_for_log(r"to free file descriptors \(accept failed: EMFILE", timeout=10.0, start=before)

        phases["idle-held"] = time.time()
        t0 = time.monotonic()
        health = request_once(srv.http_port, build_request("GET", "/health"), timeout=3.0)
        took = time.monotonic() - t0
        assert health.status == 200
        check_timing(took < 1.0, f"/health took {took:.3f} s while the idle connections were held")

        fresh = calls(srv)
        fresh.send_frame(marked_frame(healthy, 0))
        fresh.wait_for(lambda: echoed_marks(fresh, healthy) == [0], 3.0, "the new call's echo")

        # The calls in progress carry on for another second with every frame.
        mark = list(sent)
        for i, c in enumerate(live):
            c.wait_for(lambda c=c, i=i: len(echoed_marks(c, i)) >= mark[i] + 50, 5.0, f"call {i}: a further second")
    finally:
        stop.set()
        th.join(timeout=2)
    for i, c in enumerate(live):
        c.wait_for(lambda c=c, i=i: len(echoed_marks(c, i)) >= sent[i], 3.0, f"call {i}: the echo of all it sent")
        assert echoed_marks(c, i) == list(range(sent[i])), f"call {i} lost or reordered frames"
        assert not c.ended()
        # Where the echo delay moved most from one frame to the next, against the phases.
        delays = echo_delays(c, seq_of=marked_seq)
        step, k = max((abs(b - a), k) for k, (a, b) in enumerate(zip(delays, delays[1:])))
        at = c.streamed_at[k + 1][1]
        when = ", ".join(f"{at - t:+.2f} s from {name}" for name, t in phases.items())
        print(f"call {i}: echo delay moved at most {step * 1000:.1f} ms from one frame to the next ({when})")
    # Each echo judged from when its frame was written (the sender thread shares this
    # process's GIL with the readers): a loop held up by the shedding or the accept errors
    # would add the hold-up to the frames at once.
    print(check_echo_steady(live, harness_lag, "calls beside 1,100 idle connections", seq_of=marked_seq))
    shed = value(srv.http_port, CLOSED_METRIC, reason="fd_pressure")
    # At least the idle connections beyond the limit were shed (the server holds a few fds of
    # its own as well), and at most what the new call, /health and the backlog needed.
    assert idle_count - 1024 <= shed <= idle_count, f"{shed:.0f} idle connections shed"
    assert len(srv.log_matches(r"sent no UUID")) <= 10, "closures were not summed up"
    for sock in idle:
        sock.close()
    assert srv.alive()
