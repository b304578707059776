"""STS failover: `STS_URL` lists two endpoints (real Python `websockets` echo peers); the
first one dies mid-call (SIGKILL), refuses at call start (nothing listens on its port),
stalls (SIGSTOP: no pong), or closes normally (a close frame). The caller must keep hearing
its echo after a gap under a second, with one `call_failover` and one `call_ended`; a
normal close ends the call as with one endpoint; when no endpoint answers at call start the
call ends with one line naming each endpoint tried.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid as uuidlib

import pytest

from audio import is_silence, marked_frame, parse_marker
from conftest import run_config_error
from helpers import build_request, free_port, request_once, wait_until
from metrics_scrape import value
from webhook_helpers import check_call_ended
from webhook_receiver import sts_url_reply

pytestmark = pytest.mark.call_path

MAX_GAP = 1.0


def register(srv, **payload) -> str:
    uuid = str(uuidlib.uuid4())
    body = json.dumps({"uuid": uuid, "payload": {"from": "2000", **payload}}).encode()
    resp = request_once(srv.http_port, build_request("POST", "/call", body))
    assert resp.status == 200, resp.body
    return uuid


def echoed_seqs(call) -> list[tuple[float, int]]:
    """(arrival, sequence number) of each echoed marked frame the caller heard."""
    out = []
    for t, payload in call.audio_frames():
        if is_silence(payload):
            continue
        mark = parse_marker(payload)
        if mark is not None:
            out.append((t, mark[1]))
    return out


def heard_from(call, seq: int) -> float | None:
    """When the caller first heard the echo of a frame it sent as `seq` or later (audio
    already queued for it before a fault plays out: only frames sent after it count)."""
    later = [t for t, s in echoed_seqs(call) if s >= seq]
    return later[0] if later else None


def connections(sts) -> list[dict]:
    return [r for r in sts.records() if r["event"] == "connection"]


def redacted(sts) -> str:
    return f"ws://127.0.0.1:{sts.port}/?from="


def start_call(srv, calls, call_id: int = 0):
    """A registered call streaming marked frames; `call.next_seq` is the next one to go."""
    uuid = register(srv)
    call = calls(srv, uuid)
    call.next_seq = 0

    def frame(seq):
        call.next_seq = seq + 1
        return marked_frame(call_id, seq)

    call.start_streaming(frame)
    return uuid, call


def test_first_sts_killed_mid_call_the_caller_keeps_hearing_the_echo(avr_server, calls, sts_peer, webhook_receiver):
    a, b = sts_peer("python", "echo"), sts_peer("python", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"{a.url}, {b.url}", WEBHOOK_URL=hooks.url)
    uuid, call = start_call(srv, calls)
    call.wait_for(lambda: len(echoed_seqs(call)) >= 10, 5.0, "the echo from the first STS")
    assert len(connections(a)) == 1 and not connections(b)
    killed, first = time.monotonic(), call.next_seq
    os.kill(a.proc.pid, signal.SIGKILL)  # our own child, by PID
    a.proc.wait(timeout=5)
    resumed = call.wait_for(lambda: heard_from(call, first), 5.0, "the echo after the kill")
    assert resumed - killed < MAX_GAP, f"the caller heard nothing for {resumed - killed:.3f}s"
    b.wait_conn(0)
    assert connections(b)[0]["url"] == connections(a)[0]["url"] == "/?from=2000", "the failover keeps the query"
    # Audio keeps flowing through B, in order.
    seen = len(echoed_seqs(call))
    call.wait_for(lambda: len(echoed_seqs(call)) >= seen + 25, 5.0, "more echo through the second STS")
    seqs = [s for _, s in echoed_seqs(call)]
    assert seqs == sorted(seqs), "echo out of order across the failover"
    assert not call.ended()
    event = hooks.wait_for_events("call_failover", 1, timeout=5)[0]["json"]
    assert event["uuid"] == uuid
    payload = event["payload"]
    assert payload["from"] == redacted(a) and payload["to"] == redacted(b), payload
    assert payload["reason"] in ("closed_without_close_frame", "connection_failed"), payload
    assert isinstance(payload["gap_ms"], int) and 0 <= payload["gap_ms"] < 1000, payload
    lines = srv.log_matches(r"STS failover: ")
    assert len(lines) == 1, lines
    assert re.search(rf"STS failover: ws://127\.0\.0\.1:{a.port}/\?from= lost \(\w+\); "
                     rf"now on ws://127\.0\.0\.1:{b.port}/\?from= after \d+ ms$", lines[0]), lines
    assert not srv.log_matches(r"STS connection failed")
    call.stop_streaming()
    call.hangup()
    hooks.wait_for_events("call_ended", 1, timeout=5)
    time.sleep(0.3)  # nothing more may follow
    assert len(hooks.events("call_failover")) == 1
    assert len(hooks.events("call_ended")) == 1


def test_first_sts_refusing_at_call_start_the_second_answers(avr_server, calls, sts_peer, webhook_receiver):
    closed = free_port()  # nothing listens there: connection refused
    b = sts_peer("python", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{closed} {b.url}", WEBHOOK_URL=hooks.url)
    started = time.monotonic()
    _, call = start_call(srv, calls)
    call.wait_for(lambda: echoed_seqs(call), 5.0, "the echo through the second STS")
    assert echoed_seqs(call)[0][0] - started < MAX_GAP
    assert connections(b)[0]["url"] == "/?from=2000"
    call.stop_streaming()
    call.hangup()
    hooks.wait_for_events("call_ended", 1, timeout=5)
    assert not hooks.events("call_failover"), "a call start that skips a dead endpoint is no failover"
    assert not srv.log_matches(r"STS connection failed|STS failover")


def test_stalled_sts_fails_over_after_the_ping_timeout(avr_server, calls, sts_peer, webhook_receiver):
    a, b = sts_peer("python", "echo"), sts_peer("python", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"{a.url},{b.url}", WEBHOOK_URL=hooks.url,
                     STS_PING_INTERVAL="300", STS_PING_TIMEOUT="400")
    _, call = start_call(srv, calls)
    call.wait_for(lambda: len(echoed_seqs(call)) >= 10, 5.0, "the echo from the first STS")
    stopped, first = time.monotonic(), call.next_seq
    os.kill(a.proc.pid, signal.SIGSTOP)  # our own child: it answers nothing from now on
    try:
        resumed = call.wait_for(lambda: heard_from(call, first), 5.0, "the echo after the stall")
        # No frame within the timeout after a ping (within an interval), then the next endpoint.
        assert 0.1 <= resumed - stopped < 0.3 + 0.4 + MAX_GAP, f"resumed {resumed - stopped:.3f}s after the stall"
        payload = hooks.wait_for_events("call_failover", 1, timeout=5)[0]["json"]["payload"]
        assert payload["reason"] == "ping_timeout" and payload["to"] == redacted(b), payload
        assert not call.ended()
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    call.stop_streaming()
    call.hangup()
    hooks.wait_for_events("call_ended", 1, timeout=5)
    assert len(hooks.events("call_failover")) == 1


def test_sts_closing_normally_ends_the_call_without_failover(avr_server, calls, sts_peer, webhook_receiver):
    a = sts_peer("python", "closeframe", close_after=10)
    b = sts_peer("python", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"{a.url} {b.url}", WEBHOOK_URL=hooks.url)
    _, call = start_call(srv, calls)
    call.wait_ended(timeout=5)
    assert call.hangup_at is not None, "Asterisk gets a hangup"
    hooks.wait_for_events("call_ended", 1, timeout=5)
    srv.wait_for_log(r"Call ended: STS closed the connection$")
    assert not connections(b), "a close frame is no reason to fail over"
    assert not hooks.events("call_failover")
    assert not srv.log_matches(r"STS failover")


def test_every_sts_down_at_call_start_ends_the_call_naming_each(avr_server, calls, webhook_receiver):
    p1, p2 = free_port(), free_port()
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{p1}/a?token=secret, ws://127.0.0.1:{p2}/b", WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.wait_ended(timeout=5)
    line = srv.wait_for_log(r"STS connection failed: no STS endpoint left \(2 tried\): .*").group(0)
    assert f"ws://127.0.0.1:{p1}/a?token= (" in line and f"ws://127.0.0.1:{p2}/b (" in line, line
    assert line.count("connection refused") == 2, line
    (ended,) = hooks.wait_for_events("call_ended", 1, timeout=5)
    assert not hooks.events("call_failover")
    payload = check_call_ended(ended, call.uuid, "sts_failed", backend="sts-websocket")
    assert "no STS endpoint left (2 tried)" in payload["detail"], payload
    assert "secret" not in payload["detail"], f"call_ended names an endpoint with its query value: {payload['detail']!r}"


def test_a_list_mixing_transports_names_the_one_last_tried(avr_server, calls, webhook_receiver):
    """Endpoints may mix WebSocket and streaming HTTP: `call_ended` and the metric name the
    transport of the endpoint in use or, here, the last one tried."""
    p1, p2 = free_port(), free_port()
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{p1}/a http://127.0.0.1:{p2}/b", WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.wait_ended(timeout=5)
    (ended,) = hooks.wait_for_events("call_ended", 1, timeout=5)
    payload = check_call_ended(ended, call.uuid, "sts_failed", backend="sts-http")
    assert "no STS endpoint left (2 tried)" in payload["detail"], payload
    assert value(srv.http_port, "avr_calls_ended_total", reason="sts_failed", backend="sts-http") == 1
    assert value(srv.http_port, "avr_calls_ended_total", reason="sts_failed") == 1

def test_a_webhook_sts_url_list_gets_the_payload_on_each_endpoint(avr_server, calls, sts_peer, webhook_receiver):
    closed = free_port()
    b = sts_peer("python", "echo")
    hooks = webhook_receiver()
    hooks.respond("call_initiated", sts_url_reply(f"ws://127.0.0.1:{closed}/x, {b.url}/y"))
    srv = avr_server(WEBHOOK_URL=hooks.url)  # no STS_URL: the webhook chooses
    uuid = str(uuidlib.uuid4())
    body = json.dumps({"uuid": uuid, "payload": {"from": "2000"}}).encode()
    resp = request_once(srv.http_port, build_request("POST", "/call", body))
    assert resp.json() == {"sts_url": f"ws://127.0.0.1:{closed}/x?from=2000 {b.url}/y?from=2000", "override": True}, resp.body
    call = calls(srv, uuid)
    call.send_frame(marked_frame(0, 0))
    b.wait_conn(0)
    assert connections(b)[0]["url"] == "/y?from=2000"
    call.wait_for(lambda: echoed_seqs(call), 5.0, "the echo through the second endpoint")


def test_many_calls_all_fail_over_when_their_sts_dies(avr_server, calls, sts_peer, webhook_receiver):
    n = 20
    a, b = sts_peer("python", "echo"), sts_peer("python", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=f"{a.url} {b.url}", WEBHOOK_URL=hooks.url)
    live = [start_call(srv, calls, i)[1] for i in range(n)]
    for c in live:
        c.wait_for(lambda c=c: len(echoed_seqs(c)) >= 5, 10.0, "the echo from the first STS")
    killed = time.monotonic()
    firsts = [c.next_seq for c in live]
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(timeout=5)
    gaps = []
    for c, first in zip(live, firsts):
        resumed = c.wait_for(lambda c=c, first=first: heard_from(c, first), 10.0, "the echo after the kill")
        gaps.append(resumed - killed)
    events = hooks.wait_for_events("call_failover", n, timeout=10)
    assert len({e["json"]["uuid"] for e in events}) == n
    assert not any(c.ended() for c in live)
    gaps.sort()
    print(f"failover gap over {n} calls: p50 {gaps[n // 2] * 1000:.0f} ms, max {gaps[-1] * 1000:.0f} ms")
    assert gaps[-1] < MAX_GAP, f"worst gap {gaps[-1]:.3f}s"
    wait_until(lambda: len(connections(b)) == n, 5.0, message="every call on the second STS")


@pytest.mark.parametrize("value, bad, reason", [
    ("ws://127.0.0.1:1 ftp://x", "ftp://x", 'unknown scheme "ftp" (expected ws, wss, http or https)'),
    ("ws://127.0.0.1:1,ws://h:0", "ws://h:0", '"0" is not a port (1-65535)'),
])
def test_a_bad_endpoint_in_the_list_stops_the_start_naming_it(value, bad, reason):
    code, lines = run_config_error({"STS_URL": value})
    assert code == 2, lines
    assert len(lines) == 1 and lines[0] == f'[ERROR]: STS_URL: "{bad}" is not a valid URL: ' + reason, lines
