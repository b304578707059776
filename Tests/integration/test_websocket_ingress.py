"""Asterisk's WebSocket channel (`Dial(WebSocket/...)`) as a second media ingress: the
simulated channel (peers/websocket_channel_sim.py, written from chan_websocket's source)
connects to `/media` on the HTTP port and gets the same downstream as an AudioSocket call:
echo, DTMF, `POST /call` routing, one `call_ended` however the call ends."""

from __future__ import annotations

import json
import socket
import time
import uuid as uuidlib

import numpy as np
import pytest

from audio import alaw2lin, lin2alaw, lin2ulaw, marked_frame, speech_like_pcm, tone_pcm, ulaw2lin
from helpers import SEED_BODY, SEED_QUERY, SEED_UUID, assert_health, build_request, request_once
from webhook_helpers import of_call, scripted_sts, types_of  # noqa: F401  (fixture used by name)
from websocket_channel_sim import FRAME_BYTES, WebSocketChannel, masked_frame

pytestmark = pytest.mark.call_path

FORMATS = ["ulaw", "alaw", "slin", "slin16"]
RATE = {"ulaw": 8000, "alaw": 8000, "slin": 8000, "slin16": 16000}


@pytest.fixture
def channels():
    made: list[WebSocketChannel] = []

    def factory(srv, start: bool = True, **kw) -> WebSocketChannel:
        ch = WebSocketChannel(srv.http_port, **kw)
        made.append(ch)
        return ch.start() if start else ch.connect()

    yield factory
    for ch in made:
        ch.close_quietly()


def encode(fmt: str, pcm: bytes) -> bytes:
    return {"ulaw": lin2ulaw, "alaw": lin2alaw}.get(fmt, lambda b: b)(pcm)


def decode(fmt: str, data: bytes) -> np.ndarray:
    pcm = {"ulaw": ulaw2lin, "alaw": alaw2lin}.get(fmt, lambda b: b)(data)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def correlation(sent: np.ndarray, heard: np.ndarray, max_lag: int) -> float:
    """The best normalised correlation of `sent` within `heard` over lags 0..max_lag."""
    best = 0.0
    n = len(sent)
    for lag in range(0, min(max_lag, len(heard) - n) + 1):
        seg = heard[lag:lag + n]
        denom = np.linalg.norm(seg) * np.linalg.norm(sent)
        if denom > 0:
            best = max(best, float(np.dot(seg, sent) / denom))
    return best


def stream(ch: WebSocketChannel, frames: list[bytes]) -> None:
    """Sends frames on a 20 ms grid, as the channel's timer does."""
    t0 = time.monotonic()
    for k, frame in enumerate(frames):
        delay = t0 + 0.020 * k - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ch.send_media(frame)


# --------------------------------------------------------------------------- echo
@pytest.mark.parametrize("control", ["plain-text", "json"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_hears_itself(avr_server, channels, fmt, control):
    srv = avr_server()  # no STS_URL: the built-in echo
    ch = channels(srv, fmt=fmt, control=control)
    rate = RATE[fmt]
    size = FRAME_BYTES[fmt]
    pcm = speech_like_pcm(rate * 2, rate=rate)  # 2 s
    wire = encode(fmt, pcm)
    frames = [wire[i:i + size] for i in range(0, len(wire), size)]
    stream(ch, frames)
    ch.wait(lambda: sum(1 for _, m in ch.media if any(m)) >= len(frames), 5.0, "the echo")
    sizes = {len(m) for _, m in ch.media}
    assert sizes == {size}, f"{fmt}: avr-core sent frames of {sizes} bytes, the channel takes {size}"
    heard = decode(fmt, b"".join(m for _, m in ch.media))
    sent = decode(fmt, wire)[rate // 10:rate]  # a stretch well inside the call
    score = correlation(sent, heard, max_lag=len(heard) - len(sent))
    print(f"{fmt}/{control}: correlation {score:.4f}")
    assert score >= 0.95, f"{fmt}/{control}: the caller's echo correlates only {score:.3f} with what it said"
    srv.wait_for_log(r"Audio codec: " + {"ulaw": "ULAW", "alaw": "ALAW", "slin": "SLIN", "slin16": "SLIN16"}[fmt])
    ch.hangup()
    srv.wait_for_log(r"Call ended: caller hung up")


# --------------------------------------------------------------------------- routing, DTMF
@pytest.mark.parametrize("control", ["plain-text", "json"])
def test_post_call_route_uuid_from_uri_and_dtmf(avr_server, sts_peer, channels, control):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    resp = request_once(srv.http_port, build_request("POST", "/call", SEED_BODY))
    assert resp.status == 200, resp.body
    ch = channels(srv, fmt="slin", control=control, uuid=SEED_UUID)
    conn = sts.wait_conn()
    assert sts.of(conn, "connection")[0]["url"] == f"/?{SEED_QUERY}", "the POST /call route was not used"
    first = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r["event"] == "message"], 5.0, "init")[0]
    assert first.get("json") == {"type": "init", "uuid": SEED_UUID}, first
    for d in "5#*0":
        ch.dtmf(d)
    msgs = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r.get("type") == "dtmf_digit"]
                    if len([r for r in recs if r["conn"] == conn and r.get("type") == "dtmf_digit"]) >= 4 else None,
                    3.0, "4 DTMF messages")
    assert [m["json"] for m in msgs] == [{"type": "dtmf_digit", "digit": d} for d in "5#*0"]
    sent = b"".join(marked_frame(1, k) for k in range(25))
    stream(ch, [sent[i:i + 320] for i in range(0, len(sent), 320)])
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(sent), 5.0, "the caller's audio at the STS")
    assert sts.audio_in(conn) == sent, "slin caller audio did not reach the STS byte for byte"


def test_uuid_from_json_channel_variable(avr_server, sts_peer, channels):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    u = str(uuidlib.uuid4())
    channels(srv, fmt="ulaw", control="json", channel_variables={"__AVR_UUID": u, "OTHER": "x"})
    conn = sts.wait_conn()
    first = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r["event"] == "message"], 5.0, "init")[0]
    assert first.get("json") == {"type": "init", "uuid": u}, first


def test_no_uuid_anywhere_gets_a_fresh_one(avr_server, channels):
    srv = avr_server()
    channels(srv, fmt="ulaw")
    line = srv.wait_for_log(r".*without uuid= in its URI or AVR_UUID.*using ([0-9a-f-]{36})")
    assert uuidlib.UUID(line.group(1)).version == 4


# --------------------------------------------------------------------------- framing
def test_media_split_and_coalesced(avr_server, channels):
    srv = avr_server()
    ch = channels(srv, fmt="slin")
    frames = [marked_frame(2, k) for k in range(30)]
    # Five frames in one write, then one frame in three writes, then the rest one per write.
    ch.send_raw(b"".join(masked_frame(0x2, f) for f in frames[:5]))
    whole = masked_frame(0x2, frames[5])
    for part in (whole[:3], whole[3:100], whole[100:]):
        ch.send_raw(part)
        time.sleep(0.01)
    stream(ch, frames[6:])
    sent = b"".join(frames)
    heard = lambda: b"".join(m for _, m in ch.media if any(m))  # noqa: E731
    ch.wait(lambda: len(heard()) >= len(sent), 5.0, "the echo of 30 frames")
    assert heard()[:len(sent)] == sent, "the echo of split and coalesced frames is not byte-exact"


def test_xoff_pauses_our_media_xon_resumes(avr_server, channels):
    srv = avr_server()
    ch = channels(srv, fmt="ulaw")
    ch.wait_media(5)
    ch.send_text(ch.event("MEDIA_XOFF"))
    time.sleep(0.1)  # frames already on the wire may still arrive
    paused_at = len(ch.media)
    time.sleep(0.3)
    assert len(ch.media) == paused_at, f"{len(ch.media) - paused_at} frames sent after MEDIA_XOFF"
    ch.send_text(ch.event("MEDIA_XON"))
    ch.wait_media(paused_at + 5, timeout=2.0)


def test_interruption_sends_flush_media(avr_server, scripted_sts, channels):
    sts = scripted_sts([{"type": "interruption"}])
    srv = avr_server(STS_URL=sts.url)
    ch = channels(srv, fmt="alaw", control="json")
    text = ch.wait_text("FLUSH_MEDIA")
    assert json.loads(text) == {"command": "FLUSH_MEDIA"}


def test_garbage_control_text_is_logged_and_the_call_goes_on(avr_server, channels):
    srv = avr_server()
    ch = channels(srv, fmt="slin")
    for junk in ["{not json", "lowercase event", "MEDIA_START", '{"event":42}', "DTMF_END digit:55",
                 '{"event":"DTMF_END","digit":"Z"}', "\u00e9\u00e9\u00e9", "   "]:
        ch.send_text(junk)
    srv.wait_for_log(r"Ignoring a control message from Asterisk's WebSocket channel: control message is not valid JSON")
    srv.wait_for_log(r"Ignoring a DTMF_END with byte 0x5A")
    frames = [marked_frame(3, k) for k in range(10)]
    stream(ch, frames)
    sent = b"".join(frames)
    ch.wait(lambda: len(b"".join(m for _, m in ch.media if any(m))) >= len(sent), 5.0, "the echo after garbage")
    assert srv.alive()


def test_protocol_errors_end_only_that_call(avr_server, channels):
    srv = avr_server()
    good = channels(srv, fmt="ulaw")
    good.wait_media(3)
    # A codec we do not take.
    bad = channels(srv, fmt="g722")
    bad.wait_ended()
    srv.wait_for_log(r"WebSocket media protocol error .*g722")
    # Media before MEDIA_START.
    early = channels(srv, start=False)
    early.send_media(b"\x00" * 160)
    early.wait_ended()
    # An unmasked frame: a client must mask (close 1002).
    raw = channels(srv, start=False)
    raw.send_raw(b"\x81\x05HELLO")
    raw.wait_ended()
    assert raw.close_code == 1002, raw.close_code
    n = len(good.media)
    good.wait_media(n + 10)
    assert_health(srv.http_port)


def test_handshake_refusals_are_json_errors(avr_server):
    srv = avr_server()
    resp = request_once(srv.http_port, build_request("GET", "/media"))
    assert resp.status == 426, resp.body
    assert "WebSocket" in resp.json()["error"]
    req = (b"GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n")
    resp = request_once(srv.http_port, req)
    assert resp.status == 400 and "Sec-WebSocket-Key" in resp.json()["error"], resp.body
    assert_health(srv.http_port)


# --------------------------------------------------------------------------- ending
def _caller_close(ch, srv):
    ch.hangup()


def _caller_reset(ch, srv):
    ch.reset()


def _agent_ends(ch, srv):
    # The STS closes (with a close frame) after a few audio messages: the agent hung up.
    from websockets.exceptions import ConnectionClosed
    try:
        stream(ch, [lin2ulaw(tone_pcm(160, start_sample=160 * k)) for k in range(15)])
    except ConnectionClosed:
        pass  # the HANGUP came while the caller was still talking
    ch.wait_text("HANGUP")


@pytest.mark.parametrize("way,trigger,sts_mode", [
    ("caller-close-frame", _caller_close, None),
    ("caller-reset", _caller_reset, None),
    ("agent-hangs-up", _agent_ends, "closeframe"),
])
@pytest.mark.parametrize("control", ["plain-text", "json"])
def test_one_call_ended_whichever_way_the_call_ends(avr, webhook_receiver, sts_peer, channels,
                                                    way, trigger, sts_mode, control):
    hooks = webhook_receiver()
    env = {"WEBHOOK_URL": hooks.url}
    if sts_mode:
        env["STS_URL"] = sts_peer("node", sts_mode, close_after=5).url
    srv = avr(**env)
    u = str(uuidlib.uuid4())
    ch = channels(srv, fmt="ulaw", control=control, uuid=u)
    hooks.wait_for_events("call_started")
    ch.wait_media(3)
    trigger(ch, srv)
    hooks.wait_for_events("call_ended")
    srv.wait_for_log(r"Call ended: ")
    if sts_mode:
        ch.wait_ended()
        assert ch.close_code == 1000, ch.close_code
    from conftest import stop_server
    stop_server(srv)
    types = types_of(of_call(hooks.events(), u))
    assert types.count("call_ended") == 1, f"{way}: {types}"
    assert types[0] == "call_started" and types[-1] == "call_ended", f"{way}: {types}"
    assert len(srv.log_matches(r"Call ended: ")) == 1, srv.log_matches(r"Call ended")


# --------------------------------------------------------------------------- the bench's channel
@pytest.mark.parametrize("control", ["plain-text", "json"])
def test_bench_load_generator_speaks_the_channel(avr_server, control):
    """`avr-loadgen --ingress websocket` (what `make bench --ingress websocket` measures with)
    against the real server: every codec (call id modulo 4), DTMF, POST /call first. Each
    stamped frame must come back whole in the channel's own format, so the bench counts
    what the server does, not a protocol mismatch."""
    from conftest import AVR_CORE_BIN
    import subprocess

    loadgen = AVR_CORE_BIN.parent / "avr-loadgen"
    if not loadgen.exists():
        pytest.fail(f"{loadgen} not found: build every product (`swift build -c release`)")
    srv = avr_server()  # the built-in echo
    argv = [str(loadgen), "--port", str(srv.audio_port), "--http-port", str(srv.http_port), "--ingress", "websocket",
            "--media-port", str(srv.http_port), "--calls", "8", "--duration", "3", "--ramp", "40", "--codec", "mix",
            "--dtmf-every", "1", "--grace", "1.5"]
    if control == "json":
        argv.append("--json-control")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print({k: result[k] for k in ("completed", "echoed", "frames_sent", "lost", "odd_size", "dtmf_sent")})
    assert result["completed"] == 8 and result["failed"] == 0 and result["http_ok"] == 8, result
    # Six of the eight callers are stamped (slin, μ-law, A-law); two are slin16 (resampled).
    assert result["echoed"] > 0 and result["lost"] == 0, result
    assert result["corrupted"] == 0 and result["wrong_call"] == 0 and result["duplicates"] == 0, result
    # (Frames without a stamp are the silence played while a caller's queue is empty.)
    assert result["odd_size"] == 0, result
    assert result["slin16_frames_heard"] > 0, result
    assert result["server_hangups"] == 0 and result["closed_early"] == 0, result
    for name in ("SLIN", "ULAW", "ALAW", "SLIN16"):
        srv.wait_for_log(r"Audio codec: %s \(from MEDIA_START\)" % name)
    srv.wait_for_log(r"DTMF digit: 5")
    srv.wait_for_log(r"Call ended: caller hung up")
