"""Peers that flood, and peers that send control characters: a call's log lines and webhooks
stay within its budget, the other calls keep their pacing, the lifecycle webhooks of the
flooding call are still delivered, and peer text never ends a text log line.

Real peers: a raw-socket WebSocket STS that floods (`flooding_sts`), the Python STS that
answers `init` with a script, the aiohttp webhook receiver, simulated Asterisk callers.
Every wait has a deadline; a marker message after each flood tells when the server has read
all of it.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid as uuidlib

import pytest

from asterisk_sim import KIND_DTMF, message
from audio import sine_frame
from conftest import AVR_CORE_BIN, REPO, base_env, started_peers, stop_server
from helpers import SANITIZED, build_request, check_echo_steady, check_timing, call_request, free_port, request_once, wait_until
from webhook_helpers import of_call, scripted_sts, types_of  # noqa: F401  (fixtures by name)
from webhook_receiver import Reply, sts_url_reply

# The per-call budgets (README, "Logging" and "Webhooks"): per kind of line a burst of 20,
# then 2 a second; per-message webhooks a burst of 20, then 10 a second.
LOG_BURST, LOG_RATE = 20, 2
HOOK_BURST, HOOK_RATE = 20, 10

SUMMARY = re.compile(r"suppressed (\d+) similar lines? \((\w+)\)")


@pytest.fixture
def flooding_sts():
    """Factory: `sts = flooding_sts(message, count, last=marker)`; stopped at teardown."""
    from flooding_sts import FloodingSts

    yield from started_peers(FloodingSts)


def lines_of(srv, uuid: str) -> list[str]:
    return [l for l in srv.lines if f"[{uuid}]" in l]


def suppressed(lines: list[str], kind: str) -> int:
    return sum(int(m.group(1)) for l in lines if (m := SUMMARY.search(l)) and m.group(2) == kind)


@pytest.mark.parametrize("rate", [50_000, None], ids=["paced", "unpaced"])
def test_an_sts_flooding_transcripts_is_bounded_and_spares_the_other_calls(rate, avr, webhook_receiver, flooding_sts, calls, harness_lag):
    """200,000 transcripts, in 4 s (50,000 a second) or as fast as the socket takes them,
    beside 5 echo calls: the call's transcript lines and webhooks keep to its budget (the rest
    counted in summary lines), the echo calls lose no audio and their echo delay never jumps (a stall), RSS
    grows less than 64 MB, and the flooding call's call_started and call_ended reach the
    receiver. Unpaced, megabytes wait in the socket at once: the loop reads them one buffer
    per turn, so the other calls' pacing runs in between."""
    count = 200_000
    sts = flooding_sts({"type": "transcript", "role": "agent", "text": "flood"}, count,
                       last={"type": "flood_done"}, rate=rate)
    hooks = webhook_receiver()
    hooks.respond("call_initiated", sts_url_reply(sts.url))
    srv = avr(WEBHOOK_URL=hooks.url)  # no STS_URL: calls without a route get the echo
    healthy = [calls(srv) for _ in range(5)]
    for c in healthy:
        c.start_streaming(sine_frame)
    for c in healthy:
        c.wait_frames(10)
    rss_before = srv.rss_kib()

    uuid = str(uuidlib.uuid4())
    resp = request_once(srv.http_port, call_request(uuid))
    assert resp.status == 200 and resp.json()["override"] is True, resp.body
    t0, wall0 = time.monotonic(), time.time()
    hostile = calls(srv, uuid)
    hostile.start_streaming(sine_frame)
    assert sts.finished.wait(60), f"the STS wrote only {sts.written} of {count} messages in 60 s"
    # Unknown types have a budget of their own: this line says every transcript was read.
    srv.wait_for_log(re.escape(f"[{uuid}] ") + r'Ignoring STS message of unknown type "flood_done"', timeout=30)
    t1 = time.monotonic()
    grown = srv.rss_kib() - rss_before
    hostile.hangup()
    srv.wait_for_log(re.escape(f"[{uuid}] Call ended"))
    wait_until(lambda: "call_ended" in types_of(of_call(hooks.events(), uuid)), timeout=10,
               message="call_ended of the flooding call at the receiver")
    t_end, wall_end = time.monotonic(), time.time()
    for c in healthy:
        c.stop_streaming()

    elapsed = t1 - t0
    mine = lines_of(srv, uuid)
    written = [l for l in mine if "Transcript (agent): flood" in l]
    allowed = LOG_BURST + LOG_RATE * (elapsed + 2)
    assert len(written) <= allowed, f"{len(written)} transcript lines in {elapsed:.1f} s (budget {allowed:.0f})"
    assert len(written) + suppressed(mine, "transcript") == count, \
        f"{len(written)} written + {suppressed(mine, 'transcript')} suppressed != {count}"
    assert len(mine) <= 2 * allowed + 30, f"{len(mine)} lines for the flooding call in {elapsed:.1f} s"

    kinds = types_of(of_call(hooks.events(), uuid))
    assert kinds[:2] == ["call_initiated", "call_started"] and kinds[-1] == "call_ended", kinds[:5] + kinds[-3:]
    transcriptions = kinds.count("transcription")
    assert 0 < transcriptions <= HOOK_BURST + HOOK_RATE * (t_end - t0 + 1), \
        f"{transcriptions} transcription webhooks in {t_end - t0:.1f} s"
    assert srv.log_matches(re.escape(f"[{uuid}] Webhooks: ") + r"\d+ dtmf_digit/transcription/interruption event"), \
        "the unsent webhooks are not counted in the log"

    print(f"flood: {count} transcripts read in {elapsed:.2f} s; {len(mine)} lines for the call "
          f"({len(written)} transcript lines); {transcriptions} transcription webhooks; RSS +{grown} KiB")
    # AddressSanitizer keeps freed memory in quarantine on purpose (hundreds of MB over 200,000
    # parsed messages), so RSS says nothing about the server's own bound there.
    if not SANITIZED:
        assert grown < 64 * 1024, f"RSS grew by {grown} KiB during the flood"
    # No lost audio and no stall: every frame the echo calls wrote came back, and the delay the
    # server added to it (from when it was written) moved by less than a tick frame to frame.
    late = srv.log_matches(r"Playback ran \d+ ms late")
    print(check_echo_steady(healthy, harness_lag, f"echo calls beside the flood ({late})", since=wall0, until=wall_end))
    stop_server(srv)


def test_a_caller_flooding_invalid_dtmf_gets_a_bounded_log_and_an_exact_count(avr, calls):
    """100,000 DTMF messages whose byte is no key, in one write: a burst of lines, then the
    rest counted; the summary at the end of the call makes the count exact."""
    count = 100_000
    srv = avr()
    call = calls(srv)
    t0 = time.monotonic()
    assert call.send_raw(message(KIND_DTMF, b"Z") * count)
    # A valid digit has its own budget: once logged, every invalid one before it was read.
    assert call.send_dtmf("5")
    srv.wait_for_log(re.escape(f"[{call.uuid}] DTMF digit: 5"), timeout=30)
    elapsed = time.monotonic() - t0
    call.hangup()
    srv.wait_for_log(re.escape(f"[{call.uuid}] Call ended"))
    stop_server(srv)
    mine = lines_of(srv, call.uuid)
    written = [l for l in mine if "Ignoring a DTMF message with byte 0x5A" in l]
    assert len(written) <= LOG_BURST + LOG_RATE * (elapsed + 1), f"{len(written)} lines in {elapsed:.1f} s"
    assert len(written) + suppressed(mine, "invalid_dtmf") == count, mine[-5:]
    print(f"invalid DTMF flood: {count} messages read in {elapsed:.2f} s; {len(mine)} lines for the call "
          f"({len(written)} of them about invalid DTMF)")
    # The summary has the level of the lines it counts.
    assert any(l.startswith("[WARN]: ") and SUMMARY.search(l) for l in mine), mine[-5:]


def test_a_caller_flooding_dtmf_digits_gets_bounded_webhooks_and_its_call_ended(avr, webhook_receiver, calls):
    """20,000 DTMF digits in one write, then the caller hangs up: the dtmf_digit webhooks keep
    to the call's budget, the rest are counted in the log (exactly), and call_started and
    call_ended reach the receiver, call_ended last."""
    count = 20_000
    hooks = webhook_receiver()
    srv = avr(WEBHOOK_URL=hooks.url)
    call = calls(srv)
    t0 = time.monotonic()
    # An invalid DTMF byte after the digits has a log budget of its own: once its line is
    # there, every digit before it was read. Only then the hangup: a caller that closes with
    # our playback frames unread in its socket resets the connection, and whatever the server
    # had not read yet (it reads one 64 KiB buffer per loop turn) would be lost with it.
    assert call.send_raw(message(KIND_DTMF, b"1") * count + message(KIND_DTMF, b"Z"))
    srv.wait_for_log(re.escape(f"[{call.uuid}] ") + r"Ignoring a DTMF message with byte 0x5A", timeout=30)
    call.hangup()
    srv.wait_for_log(re.escape(f"[{call.uuid}] Call ended"), timeout=30)
    wait_until(lambda: "call_ended" in types_of(of_call(hooks.events(), call.uuid)), timeout=10,
               message="call_ended of the flooding call at the receiver")
    elapsed = time.monotonic() - t0
    stop_server(srv)
    kinds = types_of(of_call(hooks.events(), call.uuid))
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended" and kinds.count("call_ended") == 1, kinds
    sent = kinds.count("dtmf_digit")
    assert 0 < sent <= HOOK_BURST + HOOK_RATE * (elapsed + 1), f"{sent} dtmf_digit webhooks in {elapsed:.1f} s"
    unsent = srv.log_matches(re.escape(f"[{call.uuid}] Webhooks: ") + r"(\d+) dtmf_digit")
    assert unsent and sent + int(re.search(r"Webhooks: (\d+)", unsent[0]).group(1)) == count, unsent
    mine = lines_of(srv, call.uuid)
    written = [l for l in mine if "DTMF digit: 1" in l]
    assert len(written) <= LOG_BURST + LOG_RATE * (elapsed + 1), f"{len(written)} lines in {elapsed:.1f} s"
    assert len(written) + suppressed(mine, "dtmf") == count, mine[-5:]


def test_peer_text_with_control_characters_stays_on_its_own_line(avr, webhook_receiver, scripted_sts, calls):
    """A transcript, a role and an STS error carrying CR, LF, ESC, NUL and DEL, and a webhook
    receiver answering with them: the text log has no raw control character and no forged
    line; the text is there, escaped."""
    uuid = str(uuidlib.uuid4())
    forged = f"hi\r\n[ERROR]: [{uuid}] forged by the STS\x1b[2K\x00\x7fend"
    sts = scripted_sts([
        {"type": "transcript", "role": "agent\n[ERROR]: forged role", "text": forged},
        {"type": "error", "message": f"bad\r\n[ERROR]: [{uuid}] forged error\x1b]0;title\x07"},
    ])
    hooks = webhook_receiver()
    hooks.respond("call_initiated", Reply(200, f"no json\n[ERROR]: [{uuid}] forged by the receiver\x1b[0m\r"))
    # The receiver's answer is logged at debug.
    srv = avr(STS_URL=sts.url, WEBHOOK_URL=hooks.url, LOG_LEVEL="debug")
    resp = request_once(srv.http_port, call_request(uuid))
    assert resp.status == 200, resp.body
    call = calls(srv, uuid)
    call.start_streaming(sine_frame)
    srv.wait_for_log(r"forged error")
    call.hangup()
    srv.wait_for_log(re.escape(f"[{uuid}] Call ended"))
    stop_server(srv)

    raw = [l for l in srv.lines if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in l)]
    assert not raw, f"raw control characters in the log: {raw!r}"
    assert not [l for l in srv.lines if re.match(r"\[ERROR\]: (\[[^\]]*\] )?forged", l)], srv.lines
    transcript = r"\r\n[ERROR]: [" + uuid + r"] forged by the STS\u{1b}[2K\u{0}\u{7f}end"
    assert [l for l in srv.lines if l.endswith(f"[{uuid}] Transcript (agent\\n[ERROR]: forged role): hi{transcript}")], \
        [l for l in srv.lines if "Transcript" in l]
    assert srv.log_matches(re.escape(r"bad\r\n[ERROR]: [" + uuid + r"] forged error\u{1b}]0;title\u{7}"))
    assert srv.log_matches(re.escape(r"Webhook response received: no json\n[ERROR]: [" + uuid
                                     + r"] forged by the receiver\u{1b}[0m\r"))


def test_peer_text_with_control_characters_in_json_logs_round_trips(webhook_receiver, scripted_sts, calls):
    """The same kind of hostile transcript with LOG_FORMAT=json: every line is one JSON
    object, and the transcript comes back exactly as the STS sent it."""
    uuid = str(uuidlib.uuid4())
    text = f"hi\r\n{{\"level\":\"error\",\"uuid\":\"{uuid}\"}}\x1b[2K\x00\x7f\u2028\u0085end"
    sts = scripted_sts([{"type": "transcript", "role": "agent", "text": text}])
    hooks = webhook_receiver()
    port, http_port = free_port(), free_port()
    env = base_env()
    env.update(STS_URL=sts.url, WEBHOOK_URL=hooks.url, LOG_FORMAT="json", PORT=str(port), HTTP_PORT=str(http_port))
    proc = subprocess.Popen([str(AVR_CORE_BIN)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=str(REPO))
    try:
        first = json.loads(proc.stdout.readline())  # the first line: the server is up
        wait_until(lambda: request_once(http_port, build_request("GET", "/health")).status == 200,
                   timeout=5, interval=0.05, message="server up")

        class Srv:  # what the `calls` factory needs
            audio_port = port
        call = calls(Srv, uuid=uuid)
        call.start_streaming(sine_frame)
        # The transcript is logged before its webhook is sent.
        hooks.wait_for_events("transcription")
        call.hangup()
        hooks.wait_for_events("call_ended")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    # Split on LF only: U+2028 and U+0085 inside a string are no line ends.
    docs = [first] + [json.loads(l) for l in out.decode().split("\n") if l.strip()]
    assert all(isinstance(d, dict) and "message" in d for d in docs)
    assert [d for d in docs if d["message"] == f"Transcript (agent): {text}" and d.get("uuid") == uuid], \
        [d for d in docs if "Transcript" in d["message"]]
    assert not [d for d in docs if d.get("level") == "error"], "a forged error line"
