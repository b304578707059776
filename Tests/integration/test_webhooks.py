"""Webhooks (SPEC section 6) and the /call routing override (SPEC section 3, steps 3-5)."""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from urllib.parse import parse_qsl, urlsplit

import pytest

from asterisk_sim import AsteriskCall
from audio import is_silence, marked_frame
from helpers import SEED_BODY, SEED_PAYLOAD, SEED_UUID, build_request, free_port, request_once
from webhook_receiver import Reply, fail, garbage, slow, sts_url_reply

pytestmark = [pytest.mark.webhooks, pytest.mark.call_path]

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post_seed(srv, timeout: float = 10.0):
    t0 = time.monotonic()
    resp = request_once(srv.http_port, build_request("POST", "/call", SEED_BODY), timeout=timeout)
    return resp, time.monotonic() - t0


def check_envelope(req: dict, etype: str, uuid: str, payload) -> None:
    assert req["method"] == "POST"
    assert req["headers"].get("Content-Type", "").split(";")[0] == "application/json", req["headers"]
    doc = req["json"]
    assert isinstance(doc, dict), req["body"]
    assert set(doc) == {"uuid", "type", "timestamp", "payload"}, doc
    assert doc["uuid"] == uuid and doc["type"] == etype, doc
    assert TIMESTAMP.match(doc["timestamp"]), doc["timestamp"]
    assert doc["payload"] == payload, doc


def test_call_initiated_override(avr_server, sts_peer, webhook_receiver):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    hooks.respond("call_initiated", sts_url_reply(f"{sts.url}?uuid={SEED_UUID}"))
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{free_port()}", WEBHOOK_URL=hooks.url, WEBHOOK_SECRET="s3cr3t")
    resp, _ = post_seed(srv)
    assert resp.status == 200, resp.body
    doc = resp.json()
    assert doc["override"] is True, doc
    url = urlsplit(doc["sts_url"])
    assert (url.scheme, url.netloc, url.path) in {("ws", f"127.0.0.1:{sts.port}", ""), ("ws", f"127.0.0.1:{sts.port}", "/")}
    assert parse_qsl(url.query) == [("uuid", SEED_UUID)] + list(SEED_PAYLOAD.items()), doc["sts_url"]
    [req] = hooks.events("call_initiated")
    check_envelope(req, "call_initiated", SEED_UUID, SEED_PAYLOAD)
    assert req["headers"].get("X-AVR-WEBHOOK-SECRET") == "s3cr3t"
    srv.wait_for_log(r"\[INFO\]: .*Webhook response received: \{")
    srv.wait_for_log(r"\[INFO\]: .*Overriding STS URL: ws://127\.0\.0\.1:" + str(sts.port))
    call = AsteriskCall("127.0.0.1", srv.audio_port, SEED_UUID).start()
    try:
        conn = sts.wait_conn()
        got = urlsplit(sts.of(conn, "connection")[0]["url"])
        assert parse_qsl(got.query) == [("uuid", SEED_UUID)] + list(SEED_PAYLOAD.items())
    finally:
        call.hangup()


def test_lifecycle_events_in_order_exactly_once(avr_server, sts_peer, webhook_receiver):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    srv = avr_server(STS_URL=sts.url, WEBHOOK_URL=hooks.url)
    u = str(uuidlib.uuid4())
    call = AsteriskCall("127.0.0.1", srv.audio_port, u).start()
    call.send_audio(b"".join(marked_frame(1, k) for k in range(5)))
    call.send_dtmf("7")
    hooks.wait_for_events("dtmf_digit")
    call.hangup()
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended")
    time.sleep(0.3)  # an observation window: a duplicate call_ended would show up here
    events = [r["json"]["type"] for r in hooks.events() if r["json"]["uuid"] == u]
    assert events == ["call_started", "dtmf_digit", "call_ended"], events
    check_envelope(hooks.events("call_started")[0], "call_started", u, {})
    check_envelope(hooks.events("dtmf_digit")[0], "dtmf_digit", u, {"digit": "7"})
    check_envelope(hooks.events("call_ended")[0], "call_ended", u, {})
    assert all("X-AVR-WEBHOOK-SECRET" not in r["headers"] for r in hooks.events())


def test_transcription_and_interruption_events(avr_server, sts_peer, webhook_receiver):
    hooks = webhook_receiver()
    sts = sts_peer("node", "transcript")
    srv = avr_server(STS_URL=sts.url, WEBHOOK_URL=hooks.url)
    u = str(uuidlib.uuid4())
    call = AsteriskCall("127.0.0.1", srv.audio_port, u).start()
    try:
        got = hooks.wait_for_events("transcription", 2)
        assert [r["json"]["payload"] for r in got] == [
            {"role": "user", "text": "hello there"}, {"role": "agent", "text": "Hi! How can I help?"}]
        check_envelope(got[0], "transcription", u, {"role": "user", "text": "hello there"})
    finally:
        call.hangup()
    sts2 = sts_peer("node", "interrupt", audio_ms=1000, interrupt_after_ms=100, second_after_ms=-1)
    srv2 = avr_server(STS_URL=sts2.url, WEBHOOK_URL=hooks.url)
    u2 = str(uuidlib.uuid4())
    call2 = AsteriskCall("127.0.0.1", srv2.audio_port, u2).start()
    try:
        call2.send_audio(b"".join(marked_frame(1, k) for k in range(3)))
        ev = hooks.wait_for_events("interruption")[0]
        check_envelope(ev, "interruption", u2, {})
    finally:
        call2.hangup()


def test_retries_then_success(avr_server, sts_peer, webhook_receiver):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    hooks.respond("call_initiated", *fail(2), sts_url_reply(sts.url))
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{free_port()}", WEBHOOK_URL=hooks.url, WEBHOOK_RETRY="2",
                     WEBHOOK_TIMEOUT="1000")
    resp, took = post_seed(srv)
    assert resp.status == 200
    assert resp.json()["override"] is True, resp.json()
    assert len(hooks.events("call_initiated")) == 3
    times = [r["t"] for r in hooks.events("call_initiated")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"retry gaps {[round(g * 1000) for g in gaps]} ms; /call took {took * 1000:.0f} ms")
    assert gaps[1] >= gaps[0] * 1.5, f"backoff is not exponential: {gaps}"


def test_final_failure_logged_and_call_not_blocked(avr_server, webhook_receiver):
    hooks = webhook_receiver()
    hooks.respond("call_initiated", *fail(5))
    srv = avr_server(STS_URL="ws://localhost:6030", WEBHOOK_URL=hooks.url, WEBHOOK_RETRY="1")
    resp, _ = post_seed(srv)
    assert resp.status == 200
    assert resp.json() == {"sts_url": "ws://localhost:6030/?from=2000&to=5001&uniqueid=1770758888.32"
                                      "&channel=PJSIP%2F2000-00000013", "override": False}
    assert len(hooks.events("call_initiated")) == 2
    line = srv.wait_for_log(r"call_initiated").string
    assert hooks.url.split("/events")[0] in line and "500" in line, line


@pytest.mark.parametrize("reply", [garbage(), Reply(200, '{"sts_url":42}'), Reply(204, "")])
def test_unusable_answers_keep_the_default(avr_server, webhook_receiver, reply):
    hooks = webhook_receiver()
    hooks.respond("call_initiated", reply)
    srv = avr_server(STS_URL="ws://localhost:6030", WEBHOOK_URL=hooks.url)
    resp, _ = post_seed(srv)
    assert resp.status == 200 and resp.json()["override"] is False


def test_slow_webhook_bounded_by_timeout(avr_server, webhook_receiver):
    hooks = webhook_receiver()
    hooks.respond("call_initiated", slow(3.0, sts_url_reply("ws://127.0.0.1:1")))
    srv = avr_server(STS_URL="ws://localhost:6030", WEBHOOK_URL=hooks.url, WEBHOOK_TIMEOUT="300")
    resp, took = post_seed(srv)
    assert resp.status == 200 and resp.json()["override"] is False
    assert 0.25 <= took < 1.5, f"/call took {took:.2f}s with WEBHOOK_TIMEOUT=300"


def test_slow_or_dead_webhook_never_delays_audio(avr_server, sts_peer, webhook_receiver):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    hooks.respond("call_started", slow(3.0))
    srv = avr_server(STS_URL=sts.url, WEBHOOK_URL=hooks.url, WEBHOOK_TIMEOUT="5000")
    call = AsteriskCall("127.0.0.1", srv.audio_port).start()
    try:
        t0 = time.monotonic()
        call.send_audio(b"".join(marked_frame(1, k) for k in range(10)))
        call.wait_for(lambda: sum(1 for _, p in call.audio_frames() if not is_silence(p)) >= 10, 2.0, "the echo")
        assert time.monotonic() - t0 < 1.5
    finally:
        call.hangup()
