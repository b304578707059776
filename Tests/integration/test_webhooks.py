"""Webhooks and dynamic STS routing through `call_initiated`.

Real receivers: the aiohttp `WebhookReceiver` peer (scripted replies), and `RawReceiver`
(webhook_helpers) for half responses and receivers that never answer. Every wait has a
deadline; "nothing more arrives" is made certain by stopping the server (SIGTERM, exit 0)
before counting.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid as uuidlib

import pytest

from asterisk_sim import KIND_ERROR, message
from helpers import SEED_PAYLOAD, SEED_QUERY, call_request, check_echo_steady, check_timing, free_port, request_once
from audio import sine_frame
from conftest import AvrServer, stop_server
from webhook_helpers import (  # noqa: F401  (fixtures are used by name)
    RawReceiver,
    assert_matches_quality_line,
    check_call_ended,
    check_envelope,
    header,
    of_call,
    pacing,
    quality_line,
    raw_receiver,
    scripted_sts,
    types_of,
)
from webhook_receiver import Reply, fail, garbage, slow, sts_url_reply

pytestmark = pytest.mark.webhooks

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")


def post_call(srv, uuid: str, timeout: float = 10.0):
    """POST /call with the seed payload; returns (response, seconds it took)."""
    t0 = time.monotonic()
    resp = request_once(srv.http_port, call_request(uuid), timeout=timeout)
    return resp, time.monotonic() - t0


def new_uuid() -> str:
    return str(uuidlib.uuid4())


# --------------------------------------------------------------------------- a full call
def test_every_event_of_a_full_call_in_order(avr, webhook_receiver, scripted_sts, calls):
    hooks = webhook_receiver()
    url = f"http://127.0.0.1:{hooks.port}/hooks/avr-events?tenant=7"
    sts = scripted_sts([
        {"type": "transcript", "role": "user", "text": "hello there"},
        {"type": "transcript", "role": "agent", "text": "Hi! How can I help? \u00e9\"\\"},
        {"type": "interruption"},
    ])
    srv = avr(STS_URL=sts.url, WEBHOOK_URL=url, WEBHOOK_SECRET="s3cr3t-Value_42")
    uuid = new_uuid()
    resp, _ = post_call(srv, uuid)
    assert resp.status == 200 and resp.json() == {"sts_url": f"{sts.url}/?{SEED_QUERY}", "override": False}, resp.body

    call = calls(srv, uuid)
    call.start_streaming(sine_frame)
    hooks.wait_for_events("interruption")
    call.send_dtmf("5")
    hooks.wait_for_events("dtmf_digit")
    call.hangup()
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended")
    stop_server(srv)  # nothing can arrive after this

    events = hooks.events()
    assert types_of(events) == ["call_initiated", "call_started", "transcription", "transcription",
                                "interruption", "dtmf_digit", "call_ended"], [e["json"] for e in events]
    expected_payloads = [SEED_PAYLOAD, {}, {"role": "user", "text": "hello there"},
                         {"role": "agent", "text": "Hi! How can I help? \u00e9\"\\"}, {}, {"digit": "5"}, None]
    for entry, payload in zip(events, expected_payloads):
        if payload is None:
            check_call_ended(entry, uuid, "caller_closed")
        else:
            check_envelope(entry, uuid, entry["json"]["type"], payload)
        assert entry["path"] == "/hooks/avr-events?tenant=7", f"path of WEBHOOK_URL not kept: {entry['path']!r}"
        assert header(entry, "X-AVR-WEBHOOK-SECRET") == "s3cr3t-Value_42", entry["headers"]
    stamps = [e["json"]["timestamp"] for e in events]
    assert stamps == sorted(stamps), f"timestamps go backwards: {stamps}"
    assert len(sts.connections) == 1 and sts.connections[0]["path"] == f"/?{SEED_QUERY}"


def test_no_secret_header_without_webhook_secret(avr, webhook_receiver, calls):
    hooks = webhook_receiver()
    srv = avr(WEBHOOK_URL=hooks.url)
    uuid = new_uuid()
    resp, _ = post_call(srv, uuid)
    assert resp.status == 200
    call = calls(srv, uuid)
    call.send_dtmf("7")
    call.hangup()
    hooks.wait_for_events("call_ended")
    stop_server(srv)
    events = hooks.events()
    assert types_of(events) == ["call_initiated", "call_started", "dtmf_digit", "call_ended"]
    check_envelope(events[2], uuid, "dtmf_digit", {"digit": "7"})
    for e in events:
        assert header(e, "X-AVR-WEBHOOK-SECRET") is None, f"secret header sent without WEBHOOK_SECRET: {e['headers']}"
        assert header(e, "X-AVR-Signature") is None, f"signature sent without WEBHOOK_SECRET: {e['headers']}"
        assert e["path"] == "/events"


# --------------------------------------------------------------------------- dynamic routing
def test_call_initiated_answer_overrides_the_sts_url(avr, webhook_receiver, sts_peer, calls):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    uuid = new_uuid()
    chosen = f"ws://127.0.0.1:{sts.port}/x?uuid={uuid}"
    hooks.respond("call_initiated", sts_url_reply(chosen))
    # STS_URL points nowhere useful: only the override can reach the STS.
    srv = avr(STS_URL=f"ws://127.0.0.1:{free_port()}/default", WEBHOOK_URL=hooks.url, LOG_LEVEL="debug")
    resp, _ = post_call(srv, uuid)
    final = f"{chosen}&{SEED_QUERY}"
    assert resp.status == 200 and resp.json() == {"sts_url": final, "override": True}, resp.body
    # The receiver's answer is a debug line of the call; URLs in the log have their query values masked.
    redacted = re.sub(r"=[^&]+", "=***", final)
    srv.wait_for_log(r"^\[DEBUG\]: \[" + uuid + r"\] Webhook response received: "
                     + re.escape(json.dumps({"sts_url": re.sub(r"=[^&]+", "=***", chosen)})))
    assert srv.log_matches(r"^\[INFO\]: \[" + uuid + r"\] Overriding STS URL: " + re.escape(redacted) + "$"), \
        srv.lines[-10:]
    assert not srv.log_matches(re.escape(uuid) + ".*" + re.escape(f"uuid={uuid}")), "a query value reached the log"

    call = calls(srv, uuid)
    call.start_streaming(sine_frame)
    conn = sts.wait_conn(0)
    url = [r for r in sts.records() if r["event"] == "connection"][0]["url"]
    assert url == f"/x?uuid={uuid}&{SEED_QUERY}", f"STS contacted at {url!r}"
    srv.wait_for_log(r"Connecting to STS WebSocket: " + re.escape(redacted))
    sts.wait(lambda recs: any(r.get("type") == "init" and r["conn"] == conn for r in recs), 5.0, "init")
    call.hangup()


FALLBACK_TIMEOUT_MS = 300


def _down(hooks, env):
    env["WEBHOOK_URL"] = f"http://127.0.0.1:{free_port()}/events"


@pytest.mark.parametrize("case, retry, setup, slow_by_design, mentions", [
    ("answer-without-sts_url", 0, lambda h, e: h.respond("call_initiated", Reply(200, '{"ok":true}')), False, None),
    ("garbage-json", 0, lambda h, e: h.respond("call_initiated", garbage()), False, None),
    ("http-500", 1, lambda h, e: setattr(h, "default", Reply(500, '{"error":"x"}')), False, None),
    ("receiver-down", 1, _down, False, None),
    ("slower-than-timeout", 1, lambda h, e: setattr(h, "default", slow(1.0, sts_url_reply("ws://127.0.0.1:1/late"))),
     True, None),
    ("sts_url-ftp", 0, lambda h, e: h.respond("call_initiated", sts_url_reply("ftp://x")), False, "ftp://x"),
    ("sts_url-not-a-url", 0, lambda h, e: h.respond("call_initiated", sts_url_reply("not a url")), False, "not a url"),
    ("sts_url-number", 0, lambda h, e: h.respond("call_initiated", Reply(200, '{"sts_url":42}')), False, None),
])
def test_call_initiated_failure_falls_back_to_sts_url(avr, webhook_receiver, sts_peer, calls,
                                                      case, retry, setup, slow_by_design, mentions):
    sts = sts_peer("node", "echo")
    hooks = webhook_receiver()
    env = {"STS_URL": sts.url, "WEBHOOK_URL": hooks.url, "WEBHOOK_TIMEOUT": str(FALLBACK_TIMEOUT_MS),
           "WEBHOOK_RETRY": str(retry)}
    setup(hooks, env)
    srv = avr(**env)
    uuid = new_uuid()
    resp, took = post_call(srv, uuid)
    attempts = retry + 1
    backoff = sum(0.250 * 2 ** (n - 1) for n in range(1, attempts))
    bound = attempts * FALLBACK_TIMEOUT_MS / 1000 + backoff + 0.5
    assert resp.status == 200, resp.body
    assert resp.json() == {"sts_url": f"{sts.url}/?{SEED_QUERY}", "override": False}, f"{case}: {resp.body!r}"
    assert took <= bound, f"{case}: /call took {took:.2f}s, bound {bound:.2f}s"
    if slow_by_design:
        assert took >= attempts * FALLBACK_TIMEOUT_MS / 1000 + backoff - 0.05, f"/call answered after {took:.2f}s"
    assert not srv.log_matches(r"Overriding STS URL"), srv.lines
    if mentions:
        srv.wait_for_log(r"^\[(WARN|ERROR|INFO)\]: (?!Webhook response received).*sts_url.*" + re.escape(mentions),
                         timeout=2.0)
    if case != "receiver-down":
        assert len(hooks.events("call_initiated")) == attempts, [e["replied"] for e in hooks.events()]
    # The call really goes to STS_URL.
    call = calls(srv, uuid)
    call.send_frame(sine_frame(0))
    sts.wait_conn(0)
    assert [r["url"] for r in sts.records() if r["event"] == "connection"] == [f"/?{SEED_QUERY}"]
    call.hangup()


# --------------------------------------------------------------------------- retries
def test_500_twice_then_200_is_three_attempts_with_growing_spacing(avr, webhook_receiver):
    hooks = webhook_receiver()
    hooks.respond("call_initiated", *fail(2), sts_url_reply("ws://127.0.0.1:7777/chosen"))
    srv = avr(STS_URL="ws://127.0.0.1:6030", WEBHOOK_URL=hooks.url, WEBHOOK_RETRY="3", WEBHOOK_TIMEOUT="1000")
    uuid = new_uuid()
    resp, took = post_call(srv, uuid)
    assert resp.json() == {"sts_url": f"ws://127.0.0.1:7777/chosen?{SEED_QUERY}", "override": True}, resp.body
    stop_server(srv)
    tries = hooks.events("call_initiated")
    assert [t["replied"] for t in tries] == [500, 500, 200], "attempts: " + str([t["replied"] for t in tries])
    assert len({t["body"] for t in tries}) == 1, "a retry must resend the same event"
    gaps = [b["t"] - a["t"] for a, b in zip(tries, tries[1:])]
    # 250 ms then 500 ms of backoff (plus the time of a local 500 answer).
    assert 0.240 <= gaps[0] <= 0.450, f"first spacing {gaps[0] * 1000:.0f} ms"
    assert 0.490 <= gaps[1] <= 0.750, f"second spacing {gaps[1] * 1000:.0f} ms"
    assert gaps[1] > gaps[0] * 1.6, f"spacing does not grow: {gaps}"


def test_final_failure_after_retries_is_logged_once(avr, webhook_receiver):
    hooks = webhook_receiver()
    hooks.default = Reply(500, '{"error":"always"}')
    srv = avr(STS_URL="ws://127.0.0.1:6030", WEBHOOK_URL=hooks.url, WEBHOOK_RETRY="1", WEBHOOK_TIMEOUT="1000")
    uuid = new_uuid()
    resp, _ = post_call(srv, uuid)
    assert resp.json()["override"] is False
    line = srv.wait_for_log(r"^\[ERROR\]: .*call_initiated.*").string
    assert hooks.url in line, f"ERROR line does not name the URL: {line!r}"
    assert "500" in line, f"ERROR line does not name the reason: {line!r}"
    assert uuid in line, f"ERROR line does not name the call: {line!r}"
    stop_server(srv)
    assert [t["replied"] for t in hooks.events("call_initiated")] == [500, 500], "WEBHOOK_RETRY=1 means 2 attempts"
    assert len(srv.log_matches(r"^\[ERROR\]: .*call_initiated")) == 1, srv.log_matches(r"call_initiated")


@pytest.mark.parametrize("how", ["half_head", "half_body"])
def test_connection_closed_mid_response_is_a_failure_and_retried(avr, raw_receiver, how):
    good = json.dumps({"sts_url": "ws://127.0.0.1:7777/after-retry"})
    first = (how,) if how == "half_head" else (how, json.dumps({"sts_url": "ws://127.0.0.1:7777/half"}))
    hooks = raw_receiver(script=[first, ("ok", good)])
    srv = avr(STS_URL="ws://127.0.0.1:6030", WEBHOOK_URL=hooks.url, WEBHOOK_RETRY="1", WEBHOOK_TIMEOUT="1000")
    uuid = new_uuid()
    resp, took = post_call(srv, uuid)
    assert resp.json() == {"sts_url": f"ws://127.0.0.1:7777/after-retry?{SEED_QUERY}", "override": True}, resp.body
    assert took < 1.0 + 0.25 + 0.5, f"/call took {took:.2f}s"
    tries = hooks.events("call_initiated")
    assert [t["action"] for t in tries] == [how, "ok"]
    assert tries[1]["t"] - tries[0]["t"] >= 0.240, "the retry did not wait for its backoff"


def test_connection_closed_mid_response_without_retry_fails(avr, raw_receiver):
    hooks = raw_receiver(script=[("half_body", json.dumps({"sts_url": "ws://127.0.0.1:7777/half"}))])
    srv = avr(STS_URL="ws://127.0.0.1:6030", WEBHOOK_URL=hooks.url, WEBHOOK_TIMEOUT="1000")
    resp, took = post_call(srv, new_uuid())
    assert resp.json() == {"sts_url": f"ws://127.0.0.1:6030/?{SEED_QUERY}", "override": False}, resp.body
    assert took < 1.0, f"a closed connection is a failure at once, not a timeout ({took:.2f}s)"
    srv.wait_for_log(r"^\[ERROR\]: .*call_initiated.*" + hooks.url)


# --------------------------------------------------------------------------- audio unaffected
@pytest.mark.parametrize("receiver", ["down", "never-answers", "always-500"])
def test_call_audio_pacing_unaffected_by_failing_receiver(avr, webhook_receiver, raw_receiver, calls, receiver, harness_lag):
    if receiver == "down":
        url, hooks = f"http://127.0.0.1:{free_port()}/events", None
    elif receiver == "never-answers":
        hooks = raw_receiver(default=("hang",))
        url = hooks.url
    else:
        hooks = webhook_receiver()
        hooks.default = Reply(500, '{"error":"x"}')
        url = hooks.url
    # Every event fails 3 times (200 ms timeouts, 250 + 500 ms backoff) while the call runs.
    srv = avr(WEBHOOK_URL=url, WEBHOOK_RETRY="2", WEBHOOK_TIMEOUT="200")  # no STS_URL: built-in echo
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_frames(10)
    call.send_dtmf("1")  # one more event, failing with retries, during the call
    call.wait_frames(len(call.audio_frames()) + 100, timeout=4.0)  # 2 s of the call
    call.stop_streaming()
    # Every frame echoed, and the delay the server added to each (from when the caller wrote
    # it) never jumps: a loop held by the failing deliveries would add the hold at once.
    summary = check_echo_steady([call], harness_lag, receiver)
    t_hangup = time.monotonic()
    frames = call.audio_frames()
    call.hangup()
    if hooks is not None:
        assert len([e for e in hooks.events() if e["t"] < t_hangup]) >= 3, "the receiver saw no failing attempts during the call"
    # Each event gives up once, after 3 attempts; then nothing is left to deliver.
    for event in ("call_started", "dtmf_digit", "call_ended"):
        srv.wait_for_log(rf"^\[ERROR\]: Webhook {event} for {call.uuid} .*after 3 attempt", timeout=6.0)
    print(summary)
    assert {len(p) for _, p in frames} == {320}


# --------------------------------------------------------------------------- exactly one call_ended
def _end_by_caller_close(call, srv, ctx):
    call.hangup()


def _end_by_caller_reset(call, srv, ctx):
    call.reset()


def _end_by_caller_0x00(call, srv, ctx):
    call.send_hangup()


def _end_by_asterisk_error(call, srv, ctx):
    call.send_message(KIND_ERROR, b"\x02")


def _end_by_protocol_error(call, srv, ctx):
    call.send_raw(message(0x42, b"x"))


def _end_by_second_uuid(call, srv, ctx):
    call.send_raw(message(0x01, uuidlib.uuid4().bytes))


def _end_by_sts(call, srv, ctx):
    pass  # the STS closes by itself after a few messages, or cannot be reached


# An STS that drops its TCP connection (Node `ws.terminate()`) ends with a FIN, or with a
# reset when caller audio is still unread on its side: a clean close or a failure.
@pytest.mark.parametrize("way, sts_mode, trigger, server_ends, reason", [
    ("caller-close", None, _end_by_caller_close, False, "caller_closed"),
    ("caller-reset", None, _end_by_caller_reset, False, "caller_closed"),
    ("caller-0x00", None, _end_by_caller_0x00, False, "caller_hangup"),
    ("asterisk-error-0xff", None, _end_by_asterisk_error, False, "caller_error"),
    ("protocol-error-unknown-kind", None, _end_by_protocol_error, True, "protocol_error"),
    ("protocol-error-second-uuid", None, _end_by_second_uuid, True, "protocol_error"),
    ("sts-closes-abruptly", "close", _end_by_sts, True, {"sts_closed", "sts_failed"}),
    ("sts-closes-with-close-frame", "closeframe", _end_by_sts, True, "sts_closed"),
    ("sts-unreachable", "unreachable", _end_by_sts, True, "sts_failed"),
])
def test_exactly_one_call_ended_whichever_way_the_call_ends(avr, webhook_receiver, sts_peer, calls,
                                                            way, sts_mode, trigger, server_ends, reason):
    hooks = webhook_receiver()
    env = {"WEBHOOK_URL": hooks.url}
    if sts_mode == "unreachable":
        env["STS_URL"] = f"ws://127.0.0.1:{free_port()}"
    elif sts_mode:
        env["STS_URL"] = sts_peer("node", sts_mode, close_after=5).url
    srv = avr(**env)
    call = calls(srv)
    call.start_streaming(sine_frame)
    hooks.wait_for_events("call_started")
    if sts_mode is None:
        call.wait_frames(3)
    trigger(call, srv, None)
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended: ")
    if server_ends:
        call.wait_ended(3.0)
    call.stop_streaming()
    stop_server(srv)  # final: nothing more can be sent
    mine = of_call(hooks.events(), call.uuid)
    types = types_of(mine)
    assert types.count("call_ended") == 1, f"{way}: {types}"
    assert types[0] == "call_started" and types[-1] == "call_ended", f"{way}: {types}"
    # Every call here had its backend made: the built-in echo, or the STS peer's WebSocket.
    payload = check_call_ended(mine[-1], call.uuid, reason, backend="echo" if sts_mode is None else "sts-websocket")
    assert_matches_quality_line(payload, quality_line(srv, call.uuid))
    assert len(srv.log_matches(r"Call ended: ")) == 1, srv.log_matches(r"Call ended")


def test_server_shutdown_delivers_call_ended_before_exit(avr, webhook_receiver, calls):
    hooks = webhook_receiver()
    hooks.default = slow(0.3)  # a receiver that takes its time: the server must wait for it
    srv = avr(WEBHOOK_URL=hooks.url, WEBHOOK_TIMEOUT="3000")
    cs = [calls(srv) for _ in range(3)]
    for c in cs:
        c.start_streaming(sine_frame)
    for c in cs:
        c.wait_frames(5)
    hooks.wait_for_events("call_started", 3)
    t_term = time.monotonic()
    exited = stop_server(srv, timeout=8.0)
    for c in cs:
        mine = of_call(hooks.events(), c.uuid)
        assert types_of(mine) == ["call_started", "call_ended"], types_of(mine)
        payload = check_call_ended(mine[-1], c.uuid, "shutdown")
        assert payload["detail"] == "server shutting down", payload
        assert t_term < mine[-1]["t"] < exited
        assert c.ended(), "the server exited without ending the call towards Asterisk"
    assert exited - t_term >= 0.3, "exited before the receiver could have answered call_ended"


def test_sigterm_with_an_idle_webhook_connection_exits_0(avr, webhook_receiver, calls):
    hooks = webhook_receiver()
    srv = avr(WEBHOOK_URL=hooks.url)
    call = calls(srv)
    hooks.wait_for_events("call_started")  # the keep-alive connection is now idle in the pool
    call.hangup()
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended: ")
    code = srv.stop(timeout=5.0)
    assert code == 0, f"exit status {code}; stderr {[l for l in srv.stderr_lines if l.strip()][:2]}"


# --------------------------------------------------------------------------- load (Done when)
LOAD_CALLS, LOAD_RETRY, LOAD_TIMEOUT_MS, LOAD_SECONDS = 200, 3, 300, 4.0


@pytest.fixture(scope="module")
def load_run(request):
    """200 simultaneous calls (peers/load_callers.py, its own process) against a receiver that
    never answers, WEBHOOK_RETRY=3; waits until every call's call_ended sequence gave up."""
    if "load" not in (request.config.option.markexpr or ""):
        pytest.skip("load check: run with -m load")
    hooks = RawReceiver(default=("hang",)).start()
    srv = AvrServer({"WEBHOOK_URL": hooks.url, "WEBHOOK_RETRY": str(LOAD_RETRY),
                     "WEBHOOK_TIMEOUT": str(LOAD_TIMEOUT_MS)}).start()
    try:
        out = subprocess.run([sys.executable, os.path.join(PEERS, "load_callers.py"), "127.0.0.1",
                              str(srv.audio_port), str(LOAD_CALLS), str(LOAD_SECONDS)],
                             capture_output=True, timeout=60, check=True)
        result = json.loads(out.stdout)
        per_event = (LOAD_TIMEOUT_MS / 1000) * (LOAD_RETRY + 1) + sum(0.25 * 2 ** (k - 1) for k in range(1, LOAD_RETRY + 1))
        for u in result["uuids"]:
            srv.wait_for_log(rf"^\[ERROR\]: Webhook call_ended for {u} ", timeout=per_event * 3 + 30)
        stop_server(srv, timeout=10.0)
        yield srv, hooks, result
    finally:
        if not srv.stopped:
            srv.stop()
        hooks.stop()


@pytest.mark.load
def test_200_calls_keep_cadence_and_end_with_one_call_ended_sequence(load_run):
    srv, hooks, result = load_run
    uuids = result["uuids"]
    stats_all, all_dev, all_iv, worst = [], [], [], None
    for u, arr, sizes in zip(uuids, result["arrivals"], result["sizes"]):
        assert len(arr) >= int(LOAD_SECONDS / 0.020) - 40, f"call {u}: only {len(arr)} frames in {LOAD_SECONDS}s"
        assert set(sizes) == {320}
        ts = arr[5:]
        st = pacing(ts)
        stats_all.append(st)
        iv = [b - a for a, b in zip(ts, ts[1:])]
        all_iv.extend(iv)
        all_dev.extend(abs(x - 0.020) for x in iv)
        if worst is None or st["max_gap"] > worst[1]["max_gap"]:
            worst = (u, st)
    all_dev.sort()
    mean = sum(s["mean"] for s in stats_all) / len(stats_all)
    p99 = all_dev[int(0.99 * len(all_dev))]
    max_gap = max(all_iv)
    ended_errors = srv.log_matches(r"^\[ERROR\]: Webhook call_ended")
    at_receiver = {u: types_of(of_call(hooks.events(), u)) for u in uuids}
    print(f"\n{LOAD_CALLS} calls: mean interval {mean * 1000:.3f} ms (per-call means "
          f"{min(s['mean'] for s in stats_all) * 1000:.3f}..{max(s['mean'] for s in stats_all) * 1000:.3f}), "
          f"p99 jitter {p99 * 1000:.2f} ms, max gap {max_gap * 1000:.1f} ms (call {worst[0]}); "
          f"receiver: {len(hooks.events())} requests on {hooks.connections} connections; "
          f"call_ended attempts reaching it per call: {sorted({t.count('call_ended') for t in at_receiver.values()})}; "
          f"call_ended final-failure lines {len(ended_errors)}")
    check_timing(abs(mean - 0.020) <= 0.001, f"mean {mean * 1000:.3f} ms")
    check_timing(max_gap <= 0.100, f"max gap {max_gap * 1000:.1f} ms")
    assert len(ended_errors) == LOAD_CALLS, f"{len(ended_errors)} final call_ended failures for {LOAD_CALLS} calls"
    for u in uuids:
        mine = [l for l in ended_errors if u in l]
        assert len(mine) == 1 and f"after {LOAD_RETRY + 1} attempt" in mine[0], f"call {u}: {mine}"
    for u, t in at_receiver.items():
        assert t.count("call_ended") <= LOAD_RETRY + 1, f"call {u}: {t.count('call_ended')} call_ended attempts"


@pytest.mark.load
def test_200_calls_every_call_ended_attempt_reaches_the_receiver(load_run):
    srv, hooks, result = load_run
    counts = {u: types_of(of_call(hooks.events(), u)).count("call_ended") for u in result["uuids"]}
    missing = sorted({c for c in counts.values()})
    assert missing == [LOAD_RETRY + 1], f"call_ended attempts at the receiver per call: {missing}"
