"""`call_ended` says why and how (docs/PROTOCOLS.md, "call_ended"): the end reason, the
duration from the call's start, and the call's quality figures, which must equal those of its
`Call quality` log line. Real peers: the simulated Asterisk, Node `ws` STS peers, an aiohttp
receiver. (Every reason a peer can cause is also checked, one call each, in
test_webhooks.py's exactly-one-call_ended test.)
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid as uuidlib

import pytest

from audio import sine_frame
from conftest import stop_server
from helpers import build_request, check_timing, free_port, request_once
from hostile_sts import HostileSts
from webhook_helpers import ANY, assert_matches_quality_line, check_call_ended, of_call, quality_line, types_of

pytestmark = pytest.mark.webhooks


def ended_payload(hooks, srv, call, reason, backend=ANY) -> dict:
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended: ")
    stop_server(srv)  # nothing more can arrive
    mine = of_call(hooks.events(), call.uuid)
    assert types_of(mine)[-1] == "call_ended" and types_of(mine).count("call_ended") == 1, types_of(mine)
    payload = check_call_ended(mine[-1], call.uuid, reason, backend)
    assert_matches_quality_line(payload, quality_line(srv, call.uuid))
    return payload


def test_caller_hangup_reports_duration_and_exact_frame_counts(avr, webhook_receiver, calls):
    hooks = webhook_receiver()
    srv = avr(WEBHOOK_URL=hooks.url)  # the built-in echo
    call = calls(srv, start=False)
    t_start = time.monotonic()
    call.start()
    frames = 25
    assert call.send_audio(b"".join(sine_frame(k) for k in range(frames))) == frames  # paced, 0.5 s
    call.wait_frames(frames)
    t_hangup = time.monotonic()
    assert call.send_hangup()
    call.wait_ended(3.0)
    heard = len(call.audio_frames())

    payload = ended_payload(hooks, srv, call, "caller_hangup", backend="echo")
    quality = payload["quality"]
    assert payload["detail"] == "caller hung up", payload
    assert quality["frames_in"] == frames, f"{frames} frames sent, call_ended says {quality['frames_in']}"
    assert quality["codec"] == "SLIN", quality
    assert quality["frames_out"] >= heard, f"the caller heard {heard} frames, call_ended says {quality['frames_out']}"
    assert quality["sts_connect_ms"] is None, "no STS connection for the built-in echo"
    assert quality["first_audio_ms"] is not None and quality["first_audio_ms"] <= payload["duration_ms"], payload
    measured = (t_hangup - t_start) * 1000
    # Milliseconds from the UUID to the hangup, whatever the machine's load (a unit or origin
    # mistake is off by far more than a second); within 100 ms where timing is asserted.
    assert measured - 1000 <= payload["duration_ms"] <= measured + 2000, \
        f"duration {payload['duration_ms']} ms, the caller measured {measured:.0f} ms"
    check_timing(abs(payload["duration_ms"] - measured) <= 100,
                 f"duration {payload['duration_ms']} ms, the caller measured {measured:.0f} ms")
    check_timing(quality["frames_out"] <= payload["duration_ms"] / 20 + 5,
                 f"{quality['frames_out']} frames out in {payload['duration_ms']} ms")


def test_a_stalled_server_loop_counts_the_frames_it_could_not_play(avr, webhook_receiver, calls):
    """SIGSTOP freezes the whole server for 400 ms (20 deadlines): the next tick plays at most
    3 of them and gives up the rest, which `frames_late` reports for the call."""
    hooks = webhook_receiver()
    srv = avr(WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_frames(10)
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        time.sleep(0.4)
    finally:
        os.kill(srv.pid, signal.SIGCONT)
    srv.wait_for_log(r"Playback ran \d+ ms late: \d+ frame\(s\) skipped")
    call.wait_frames(len(call.audio_frames()) + 10)
    call.hangup()
    payload = ended_payload(hooks, srv, call, "caller_closed")
    assert payload["quality"]["frames_late"] >= 10, payload["quality"]


def test_sts_close_reports_sts_closed_with_its_connect_time(avr, webhook_receiver, sts_peer, calls):
    sts = sts_peer("node", "closeframe", close_after=5)
    hooks = webhook_receiver()
    srv = avr(STS_URL=sts.url, WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_ended(5.0)
    call.stop_streaming()

    payload = ended_payload(hooks, srv, call, "sts_closed", backend="sts-websocket")
    quality = payload["quality"]
    assert payload["detail"] == "STS closed the connection", payload
    assert isinstance(quality["sts_connect_ms"], int), "the STS connected: its connect time is reported"
    assert quality["sts_connect_ms"] <= payload["duration_ms"], payload
    # It closes after five messages: `init` and four caller frames.
    assert quality["frames_in"] >= 4, f"the STS closed after four caller frames, call_ended says {quality['frames_in']}"


def test_unreachable_sts_reports_sts_failed_with_the_failure(avr, webhook_receiver, calls):
    hooks = webhook_receiver()
    srv = avr(STS_URL=f"ws://127.0.0.1:{free_port()}/", WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_ended(5.0)
    call.stop_streaming()

    payload = ended_payload(hooks, srv, call, "sts_failed", backend="sts-websocket")
    assert payload["detail"].startswith("STS failed: "), payload
    assert "refused" in payload["detail"].lower(), f"the detail does not say what failed: {payload['detail']!r}"
    assert payload["quality"]["sts_connect_ms"] is None, "the STS never connected"
    assert payload["quality"]["first_audio_ms"] is None, "no agent audio came"


def test_unreachable_http_sts_names_the_http_backend(avr, webhook_receiver, calls):
    """The same failure over streaming HTTP: same reason, the other backend."""
    hooks = webhook_receiver()
    srv = avr(STS_URL=f"http://127.0.0.1:{free_port()}/", WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_ended(5.0)
    call.stop_streaming()

    payload = ended_payload(hooks, srv, call, "sts_failed", backend="sts-http")
    assert payload["detail"].startswith("STS failed: STS HTTP "), payload
    assert payload["quality"]["sts_connect_ms"] is None, "the STS never connected"


def test_sts_that_stops_answering_pings_reports_sts_failed(avr, webhook_receiver, calls):
    """The hostile peer's `stall` mode accepts the WebSocket and then answers nothing."""
    sts = HostileSts().start()
    try:
        hooks = webhook_receiver()
        srv = avr(STS_URL=sts.ws_url, WEBHOOK_URL=hooks.url, STS_PING_INTERVAL="300", STS_PING_TIMEOUT="300")
        uuid = str(uuidlib.uuid4())
        body = json.dumps({"uuid": uuid, "payload": {"mode": "stall"}}).encode()
        assert request_once(srv.http_port, build_request("POST", "/call", body)).status == 200
        call = calls(srv, uuid)
        call.start_streaming(sine_frame)
        call.wait_ended(5.0)
        call.stop_streaming()
        payload = ended_payload(hooks, srv, call, "sts_failed", backend="sts-websocket")
        assert payload["detail"] == "STS failed: no answer to ping within 300 ms", payload
        assert isinstance(payload["quality"]["sts_connect_ms"], int), "the STS had connected"
    finally:
        sts.stop()
