"""Call path: simulated Asterisk <-> avr-core <-> real STS peers."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
import uuid as uuidlib

import pytest

from asterisk_sim import KIND_SLIN, AsteriskCall, message
from audio import (
    is_silence,
    marked_frame,
    nonzero_samples,
    parse_marker,
    pattern_pcm,
    samples,
    sine_frame,
)
from helpers import (SEED_BODY, SEED_QUERY, SEED_UUID, assert_health, build_request, check_timing, free_port,
                     request_once)

pytestmark = pytest.mark.call_path


def agent_frames(call: AsteriskCall) -> list[tuple[float, bytes]]:
    return [(t, p) for t, p in call.audio_frames() if not is_silence(p)]


def agent_audio(call: AsteriskCall) -> bytes:
    return b"".join(p for _, p in agent_frames(call))


def first_message(sts, conn: int) -> dict:
    msgs = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r["event"] == "message"],
                    5.0, "a message from avr-core")
    return msgs[0]


# --------------------------------------------------------------------------- echo
@pytest.mark.parametrize("impl", ["node", "python"])
def test_echo_is_byte_exact_both_ways(avr_server, sts_peer, calls, impl):
    sts = sts_peer(impl, "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    sent = b"".join(marked_frame(1, k) for k in range(50))
    call.send_audio(sent)
    call.wait_for(lambda: len(agent_audio(call)) >= len(sent), 5.0, "the echo of 50 frames")
    assert agent_audio(call) == sent, "caller did not hear its own audio back byte for byte"
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(sent), 5.0, "all caller audio at the STS")
    assert sts.audio_in(conn) == sent, "STS did not receive the caller audio byte for byte"
    assert call.audio_kinds() == {KIND_SLIN}
    assert {len(p) for _, p in call.audio_frames()} == {320}
    assert call.protocol_error is None, call.protocol_error


def test_first_message_is_init_with_lowercase_uuid(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    u = str(uuidlib.uuid4())
    calls(srv, u.upper())  # the wire carries raw bytes; rendering must be lowercase
    first = first_message(sts, sts.wait_conn())
    assert first.get("json") == {"type": "init", "uuid": u}, first


def test_call_metadata_reaches_sts_as_query(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    resp = request_once(srv.http_port, build_request("POST", "/call", SEED_BODY))
    assert resp.status == 200
    assert resp.json()["sts_url"] == f"{sts.url}/?{SEED_QUERY}"
    calls(srv, SEED_UUID)
    conn = sts.wait_conn()
    assert sts.of(conn, "connection")[0]["url"] == f"/?{SEED_QUERY}"
    # The documented line, optionally tagged with the call's uuid; the query's values are
    # masked in the log (they may hold credentials), its names kept.
    srv.wait_for_log(r"^\[INFO\]: (\[" + SEED_UUID + r"\] )?" +
                     re.escape(f"Connecting to STS WebSocket: {sts.url}/?from=***&to=***&uniqueid=***&channel=***") + "$")
    assert not srv.log_matches("1770758888"), "a query value of the STS URL reached the log"


def test_call_without_prior_post_uses_sts_url_as_is(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url + "/agent?lang=en")
    calls(srv)
    conn = sts.wait_conn()
    assert sts.of(conn, "connection")[0]["url"] == "/agent?lang=en"


def test_dtmf_forwarded(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    conn = sts.wait_conn()
    for d in "5#*0":
        call.send_dtmf(d)
    def dtmf(recs):
        got = [r for r in recs if r["conn"] == conn and r.get("type") == "dtmf_digit"]
        return got if len(got) >= 4 else None

    msgs = sts.wait(dtmf, 3.0, "4 DTMF messages")
    assert [m["json"] for m in msgs] == [{"type": "dtmf_digit", "digit": d} for d in "5#*0"]


def test_audio_before_websocket_open_is_kept(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo", accept_delay_ms=600)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    sent = b"".join(marked_frame(2, k) for k in range(10))
    t0 = time.monotonic()
    call.send_audio(sent)  # 200 ms, all before the STS accepts
    conn = sts.wait_conn(timeout=5.0)
    assert sts.of(conn, "connection")[0]["t"] > t0 + 0.15, "the STS accepted too early for this test"
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(sent), 5.0, "the early audio at the STS")
    assert first_message(sts, conn).get("json", {}).get("type") == "init"
    assert sts.audio_in(conn) == sent, "caller audio sent before the WebSocket opened was lost or reordered"
    call.wait_for(lambda: len(agent_audio(call)) >= len(sent), 5.0, "the echo")
    assert agent_audio(call) == sent


# --------------------------------------------------------------------------- playback pacing
def test_silence_flows_before_any_sts_audio(avr_server, sts_peer, calls):
    """The outbound stream starts with the UUID -- playback is slin for every caller, so it
    needs no codec -- and never stops, even when the caller goes quiet (DTMF, Asterisk under
    load) and the STS says nothing."""
    sts = sts_peer("node", "mute")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    t0 = call.connected_at
    frames = call.wait_frames(5, timeout=2.0)
    assert frames[0][0] - t0 < 0.3, f"first frame {frames[0][0] - t0:.3f}s after the UUID"
    call.send_audio(b"".join(sine_frame(k) for k in range(3)))  # 60 ms, then nothing at all
    frames = call.wait_frames(30, timeout=2.0)
    assert all(len(p) == 320 and is_silence(p) for _, p in frames)
    assert call.audio_kinds() == {KIND_SLIN}
    ts = call.wire_times()
    mean = (ts[-1] - ts[0]) / (len(ts) - 1)
    check_timing(abs(mean - 0.020) < 0.002, f"silence paced at {mean * 1000:.2f} ms")


def test_silence_flows_while_caller_speaks(avr_server, sts_peer, calls):
    sts = sts_peer("node", "mute")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    frames = call.wait_frames(40, timeout=3.0)
    call.stop_streaming()
    assert all(len(p) == 320 and is_silence(p) for _, p in frames)


def _pacing_stats(ts: list[float]) -> tuple[float, float, float, float]:
    """(mean interval, p99 deviation from the ideal 20 ms grid, worst grid deviation,
    p99 interval deviation). The grid is anchored at the median offset, so drift shows up as
    growing deviation and one late frame counts once (intervals count it twice)."""
    mean = (ts[-1] - ts[0]) / (len(ts) - 1)
    offset = statistics.median(t - 0.020 * k for k, t in enumerate(ts))
    grid = sorted(abs(t - (offset + 0.020 * k)) for k, t in enumerate(ts))
    iv = sorted(abs((b - a) - 0.020) for a, b in zip(ts, ts[1:]))

    def p99(xs):
        return xs[min(len(xs) - 1, int(0.99 * len(xs)))]

    return mean, p99(grid), grid[-1], p99(iv)


@pytest.mark.parametrize("impl", ["node", "python"])
def test_playback_is_paced_every_20ms_and_exact(avr_server, sts_peer, calls, impl, harness_lag):
    sts = sts_peer(impl, "long", long_ms=3000, chunk=640)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    want = pattern_pcm(3000 * 16)
    call.wait_for(lambda: len(agent_audio(call)) >= len(want), 6.0, "3 s of agent audio")
    call.wait_frames(len(call.audio_frames()) + 10, timeout=2.0)  # and silence continues after it
    call.stop_streaming()
    assert agent_audio(call) == want, "agent audio not delivered byte-exact"
    frames = call.audio_frames()
    assert {len(p) for _, p in frames} == {320}
    ts = call.wire_times()[5:]  # kernel receive times: the wire, not Python's scheduler
    mean, p99, worst, p99_iv = _pacing_stats(ts)
    print(f"{impl}: {len(ts)} frames, mean {mean * 1000:.3f} ms, p99 jitter {p99 * 1000:.2f} ms, "
          f"worst {worst * 1000:.2f} ms (p99 interval deviation {p99_iv * 1000:.2f} ms)")
    # The machine's own wake-up lateness over the window (HarnessLag) widens the jitter bound.
    machine, _ = harness_lag.bounds(ts[0] - 0.1, ts[-1], quantile=0.99)
    check_timing(abs(mean - 0.020) <= 0.001, f"mean interval {mean * 1000:.3f} ms")
    check_timing(p99 <= 0.010 + machine, f"p99 jitter {p99 * 1000:.2f} ms (machine lag p99 {machine * 1000:.2f} ms)")


def test_small_odd_sized_sts_messages_play_in_order(avr_server, sts_peer, calls, harness_lag):
    sts = sts_peer("node", "long", long_ms=1000, extra=100, chunk=250)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    want = nonzero_samples(pattern_pcm(1000 * 16 + 100))
    call.wait_for(lambda: len(nonzero_samples(call.received_audio())) >= len(want), 5.0, "all agent samples")
    call.stop_streaming()
    assert nonzero_samples(call.received_audio()) == want
    sizes = {len(p) for _, p in call.audio_frames()}
    # Frames are whole 20 ms frames while the STS keeps ahead of playback (it sends faster than
    # real time here); a tick that finds less than a frame while the STS still streams sends
    # the short frame as it is rather than padding it (which would delay everything after it),
    # so on a server slowed down (a sanitizer) a 250-byte message can go out alone, and so it
    # can when the machine holds the peer back mid-burst (its 64 messages are separate writes):
    # a short frame counts against the server only when the machine woke a sleeping probe
    # within 5 ms all through the call (HarnessLag).
    assert all(size <= 320 and size % 2 == 0 for size in sizes), sizes
    wire = call.wire_times()
    machine = harness_lag.bounds(wire[0] - 0.1, wire[-1])[1]
    check_timing(sizes == {320} or machine >= 0.005,
                 f"frame sizes {sorted(sizes)} (whole frames while the STS keeps ahead; machine lag up to {machine * 1000:.2f} ms)")


def test_interruption_empties_the_queue(avr_server, sts_peer, calls):
    sts = sts_peer("node", "interrupt", audio_ms=5000, interrupt_after_ms=300, second_after_ms=300, second_ms=200)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    conn = sts.wait_conn()
    sts.wait(lambda recs: any(r["conn"] == conn and r.get("label") == "second" for r in recs), 5.0,
             "the second answer to be sent")
    t_int = next(r["t"] for r in sts.of(conn, "sent") if r["type"] == "interruption")
    t_second = next(r["t"] for r in sts.of(conn, "sent") if r.get("label") == "second")

    def second_frames():
        return [(t, p) for t, p in call.audio_frames() if any(s < 0 for s in samples(p)[:4]) and not is_silence(p)]

    call.wait_for(lambda: len(second_frames()) >= 10, 3.0, "the second answer after the interruption")
    call.stop_streaming()
    first = [(t, p) for t, p in agent_frames(call) if samples(p)[0] > 0]
    assert first, "no agent audio before the interruption"
    late = [t - t_int for t, _ in first if t > t_int + 0.060]
    print(f"{len(first)} first-answer frames; last at {1000 * (first[-1][0] - t_int):+.1f} ms from interruption")
    assert not late, f"agent audio still played {max(late) * 1000:.0f} ms after the interruption"
    assert len(first) < 40, f"{len(first)} frames of the interrupted answer were played"
    assert all(t >= t_second for t, _ in second_frames())
    assert b"".join(p for _, p in second_frames()) == pattern_pcm(200 * 16, second=True)


# --------------------------------------------------------------------------- endings
@pytest.mark.parametrize("mode", ["close", "closeframe"])
def test_sts_close_ends_the_call(avr_server, sts_peer, calls, mode):
    sts = sts_peer("node", mode, close_after=5)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    conn = sts.wait_conn()
    recs = sts.wait(lambda rs: [r for r in rs if r["conn"] == conn and r["event"] in ("terminate", "close_sent")],
                    5.0, "the STS to close")
    ended = call.wait_ended(timeout=3.0)
    call.stop_streaming()
    print(f"call ended {1000 * (ended - recs[0]['t']):.1f} ms after the STS closed ({mode})")
    assert ended - recs[0]["t"] < 1.0
    assert_health(srv.http_port)


@pytest.mark.parametrize("how", ["close", "reset", "hangup_message"])
def test_caller_hangup_sends_close_frame_to_sts(avr_server, sts_peer, calls, how):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame, count=10)
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= 320 * 5, 3.0, "some caller audio")
    t0 = time.monotonic()
    if how == "close":
        call.hangup()
    elif how == "reset":
        call.reset()
    else:
        call.stop_streaming()
        call.send_hangup()
    close = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r["event"] == "close"], 3.0,
                     "the STS connection to close")[0]
    assert close["code"] != 1006, f"STS connection dropped without a close frame ({how})"
    assert close["t"] - t0 < 1.0
    if how == "hangup_message":
        call.wait_ended(timeout=2.0)
        call.hangup()


@pytest.fixture
def close_handshake_sts():
    from close_handshake_sts import CloseHandshakeSts

    made = []

    def factory(reply_after):
        sts = CloseHandshakeSts(reply_after).start()
        made.append(sts)
        return sts

    yield factory
    for sts in made:
        sts.stop()


def _hang_up_once_sts_is_open(avr_server, calls, sts):
    """A call to `sts` that hangs up once its WebSocket is open (before that there is no
    WebSocket to close, only a TCP connection); returns the server and the STS's record."""
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame, count=10)
    sts.wait_open()
    call.hangup()
    return srv, sts.wait_closed()


def test_caller_hangup_waits_for_the_sts_close_frame(avr_server, calls, close_handshake_sts):
    """RFC 6455 section 7.1.1: after its close frame the client waits for the server's before
    closing TCP. The STS answers 300 ms late; avr-core's end of connection must come after."""
    sts = close_handshake_sts(0.3)
    srv, rec = _hang_up_once_sts_is_open(avr_server, calls, sts)
    assert rec["close_frame_at"] is not None, f"no close frame: {rec}"
    assert rec["eof_before_reply"] is False, "avr-core closed TCP before the STS answered its close frame"
    assert rec["eof_at"] >= rec["replied_at"]
    assert rec["eof_at"] - rec["replied_at"] < 1.0, f"closed {rec['eof_at'] - rec['replied_at']:.2f}s after the answer"
    srv.wait_for_log(r"Call ended: caller closed the connection")


def test_caller_hangup_close_wait_is_bounded(avr_server, calls, close_handshake_sts):
    """An STS that never answers the close frame: the connection still closes, about 1 s later."""
    sts = close_handshake_sts(None)
    srv, rec = _hang_up_once_sts_is_open(avr_server, calls, sts)
    waited = rec["eof_at"] - rec["close_frame_at"]
    assert 0.8 <= waited <= 3.0, f"TCP closed {waited:.2f}s after the close frame"
    assert srv.alive()


def test_invalid_dtmf_byte_is_logged_and_ignored(avr_server, sts_peer, calls):
    """A `0x03` message whose byte is no key ('E', NUL, 0xFF) is one bad key press, not a broken
    stream: logged, ignored, and the call goes on (next digit forwarded, audio flowing)."""
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    conn = sts.wait_conn()
    for bad in (b"E", b"\x00", b"\xff"):
        call.send_message(0x03, bad)
    call.send_dtmf("7")
    msgs = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r.get("type") == "dtmf_digit"],
                    3.0, "the valid DTMF digit")
    assert [m["json"] for m in msgs] == [{"type": "dtmf_digit", "digit": "7"}]
    assert len(srv.log_matches(r"Ignoring a DTMF message with byte 0x(45|0|FF)")) == 3
    call.send_audio(b"".join(sine_frame(k) for k in range(5)))
    sts.wait(lambda _: len(sts.audio_in(conn)) >= 5 * 320, 3.0, "caller audio after the bad DTMF")
    assert not call.ended()


def test_sts_refused_ends_call_promptly(avr_server, calls):
    srv = avr_server(STS_URL=f"ws://127.0.0.1:{free_port()}")
    call = calls(srv)
    ended = call.wait_ended(timeout=3.0)
    assert ended - call.connected_at < 1.5
    assert_health(srv.http_port)


def test_sts_silent_listener_times_out(avr_server, calls):
    """A TCP peer that never answers the upgrade: STS_CONNECT_TIMEOUT bounds the wait."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        srv = avr_server(STS_URL=f"ws://127.0.0.1:{hole.getsockname()[1]}", STS_CONNECT_TIMEOUT="500")
        call = calls(srv)
        ended = call.wait_ended(timeout=4.0)
        took = ended - call.connected_at
        assert 0.3 <= took < 2.0, f"call ended after {took:.2f}s with STS_CONNECT_TIMEOUT=500"
    finally:
        hole.close()


# --------------------------------------------------------------------------- isolation
def test_fifty_simultaneous_calls_hear_only_their_own_audio(avr_server, sts_peer, calls):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    n, frames = 50, 25
    cs = [calls(srv) for _ in range(n)]
    stop = threading.Event()

    def ticker():
        t0 = time.monotonic()
        for seq in range(frames):
            d = t0 + seq * 0.020 - time.monotonic()
            if d > 0 and stop.wait(d):
                return
            for i, c in enumerate(cs):
                c.send_frame(marked_frame(i, seq))

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    th.join(timeout=10)
    for i, c in enumerate(cs):
        c.wait_for(lambda c=c: len(agent_frames(c)) >= frames, 10.0, f"call {i}: its {frames} echoed frames")
    for i, c in enumerate(cs):
        marks = [parse_marker(p) for _, p in agent_frames(c)]
        assert marks == [(i, s) for s in range(frames)], f"call {i} heard {marks[:5]}..."
        assert b"".join(p for _, p in agent_frames(c)) == b"".join(marked_frame(i, s) for s in range(frames))
    assert len(sts.conns()) == n


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    message(0x01, b"abcd"),
    b"\x01\xff\xff" + b"\x00" * 64,
])
def test_audiosocket_garbage_closed_others_continue(avr_server, sts_peer, calls, garbage):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    good = calls(srv)
    good.start_streaming(lambda seq: marked_frame(3, seq))
    good.wait_for(lambda: len(agent_frames(good)) >= 5, 3.0, "echo on the good call")
    bad = socket.create_connection(("127.0.0.1", srv.audio_port), timeout=3)
    bad.sendall(garbage)
    bad.settimeout(2.0)
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 2.0:
            if not bad.recv(65536):
                closed = True
                break
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    bad.close()
    assert closed, "the server kept a garbage AudioSocket connection open"
    n = len(agent_frames(good))
    good.wait_for(lambda: len(agent_frames(good)) >= n + 10, 3.0, "echo to continue on the good call")
    good.stop_streaming()
    marks = [parse_marker(p) for _, p in agent_frames(good)]
    assert marks == [(3, s) for s in range(len(marks))]
    assert not good.ended()


def test_sts_junk_messages_do_not_break_the_call(avr_server, sts_peer, calls):
    sts = sts_peer("node", "badjson")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    sent = b"".join(marked_frame(4, k) for k in range(10))
    call.send_audio(sent)
    call.wait_for(lambda: len([p for _, p in agent_frames(call) if parse_marker(p)]) >= 10, 5.0, "the echo")
    echoed = b"".join(p for _, p in agent_frames(call) if parse_marker(p))
    assert echoed == sent
    assert not call.ended()


def test_sts_transcript_error_and_unknown_types(avr_server, sts_peer, calls):
    sts = sts_peer("node", "transcript")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    srv.wait_for_log(r"sts-test-error-42")
    srv.wait_for_log(r"mystery_type_xyz")
    sent = b"".join(marked_frame(5, k) for k in range(5))
    call.send_audio(sent)
    call.wait_for(lambda: len(agent_audio(call)) >= len(sent), 5.0, "the echo")
    assert agent_audio(call) == sent


def test_sts_oversize_message_does_not_hurt_others(avr_server, sts_peer, calls):
    big = sts_peer("node", "oversize")
    srv = avr_server(STS_URL=big.url)
    c1 = calls(srv)
    big.wait_conn()
    # Whatever the server does with a 2 MiB message (play it or end the call), it lives on.
    assert_health(srv.http_port)
    c1.wait_for(lambda: c1.ended() or len(c1.audio_frames()) >= 10, 5.0, "frames or an end")
    assert srv.alive()
