"""Codecs, sample rates, ambient noise and the rarer AudioSocket messages.

`Dial(AudioSocket/...)` passes the caller's native codec: G.711 A-law or μ-law inside `0x10`
messages of 160 bytes, or signed linear at a higher rate (`0x12` = 16 kHz, `0x15` = 44.1 kHz).
The STS always gets 8 kHz s16le, and every caller hears 8 kHz slin `0x10`: Asterisk's
`res_audiosocket.c` reads every server `0x10` as slin whatever the channel's codec, and the
simulated Asterisk does the same (G.711 bytes sent back would be heard as noise and fail these
tests). Ambient noise is mixed under every outbound frame, looped, scaled, saturating.
"""

from __future__ import annotations

import re
import statistics
import struct
import time

import numpy as np
import pytest

from asterisk_sim import KIND_ERROR, KIND_SLIN
from audio import (
    ALAW_SILENCE,
    FRAME_G711,
    FRAME_SLIN,
    ULAW_SILENCE,
    alaw2lin,
    is_silence,
    lin2alaw,
    lin2ulaw,
    pattern_pcm,
    samples,
    sine_frame,
    speech_like_pcm,
    tone_pcm,
    ulaw2lin,
)
from conftest import run_config_error
from helpers import HarnessLag, check_timing, free_port

pytestmark = pytest.mark.call_path


def pacing(ts: list[float]) -> tuple[float, list[float]]:
    """(mean interval, each frame's deviation from the ideal 20 ms grid anchored at the median
    offset, largest first)."""
    mean = (ts[-1] - ts[0]) / (len(ts) - 1)
    offset = statistics.median(t - 0.020 * k for k, t in enumerate(ts))
    return mean, sorted((abs(t - (offset + 0.020 * k)) for k, t in enumerate(ts)), reverse=True)


def own_lateness(ts: list[float], available: list[float] | None = None) -> list[float]:
    """Each frame's lateness (seconds, wall clock) against when the server should have sent it.

    Without `available`, against the ideal 20 ms grid anchored at the median offset. With it
    (when the agent's audio of each frame reached the server's peer: `echo_available`), against
    the earliest time the server could play the frame: when it was available, or 20 ms after
    the earliest time of the frame before, whichever is later (docs/ARCHITECTURE.md,
    "Playout": an echo follows the peer's arrival times), so the simulated caller's and the
    STS peer's own lateness does not count."""
    if available is None:
        offset = statistics.median(t - 0.020 * k for k, t in enumerate(ts))
        expected = [offset + 0.020 * k for k in range(len(ts))]
    else:
        assert len(available) >= len(ts), f"{len(available)} availability times for {len(ts)} frames"
        expected = []
        for a in available[:len(ts)]:
            expected.append(a if not expected else max(expected[-1] + 0.020, a))
    return [t - e for t, e in zip(ts, expected)]


def assert_paced(ts: list[float], what: str, lag: HarnessLag | None = None,
                 available: list[float] | None = None, skip: int = 0) -> None:
    """On the 20 ms grid (`own_lateness`; the first `skip` frames are not judged): no drift (the
    grid's interval, measured between the medians of the first and last quarter, within 1 ms of
    20 ms), 98% of frames within 10 ms (so one late tick in a short window is allowed, two are
    not), and none more than 60 ms off (three frames: a stall the caller would hear).

    With `lag`, the machine's own lateness over the same time is added to the two bounds: its
    98th percentile to the 10 ms, its worst to the 60 ms. A process that does nothing but sleep
    to a deadline (HarnessLag) woke that late on this machine meanwhile, so the server, which
    sleeps to its ticks and socket reads the same way, is judged only on what it adds. On an
    idle machine that is a fraction of a millisecond and the bounds are as tight as they read."""
    x = own_lateness(ts, available)[skip:]
    n = len(x)
    q = max(1, n // 4)
    drift = (statistics.median(x[-q:]) - statistics.median(x[:q])) / max(1, n - q)
    deviations = sorted((abs(v) for v in x), reverse=True)
    allowed = n // 50
    typical = worst = 0.0
    note = ""
    if lag is not None:
        samples = [(due, late) for due, late in lag.samples() if ts[skip] - 0.1 <= due <= ts[-1]]
        lates = sorted(late for _, late in samples)
        if lates:
            typical, worst = lates[min(len(lates) - 1, int(0.98 * len(lates)))], lates[-1]
        note = f" ({lag.summary(samples)}; bounds widened by its p98 and max)"
    check_timing(abs(drift) <= 0.001, f"{what}: interval {(0.020 + drift) * 1000:.3f} ms{note}")
    check_timing(deviations[allowed] <= 0.010 + typical,
                 f"{what}: {sum(d > 0.010 + typical for d in deviations)} of {n} frames more than "
                 f"{(0.010 + typical) * 1000:.1f} ms off (worst {', '.join(f'{d * 1000:.1f}' for d in deviations[:4])} ms){note}")
    check_timing(deviations[0] <= 0.060 + worst, f"{what}: a frame {deviations[0] * 1000:.1f} ms off{note}")


def wall_minus_monotonic() -> float:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now (the pair read closest together of a few)."""
    best = None
    for _ in range(5):
        a = time.monotonic()
        w = time.time()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, w - (a + b) / 2)
    return best[1]


def echo_available(sts, conn: int, frames: int, frame_bytes: int = FRAME_SLIN) -> list[float]:
    """When the echo STS peer sent back the audio of each of the first `frames` frames (wall
    clock): the time it recorded the caller message that completed the frame, after which it
    echoes that message at once (peers/sts_node.js; its clock is CLOCK_MONOTONIC)."""
    offset = wall_minus_monotonic()
    done: list[float] = []
    total = 0
    for m in sts_audio_messages(sts, conn):
        total += m["audio_len"]
        while len(done) < frames and total >= (len(done) + 1) * frame_bytes:
            done.append(m["t"] + offset)
    return done


def codec_lines(srv) -> list[str]:
    return srv.log_matches(r"Audio codec detected:")


def sts_audio_messages(sts, conn: int) -> list[dict]:
    return [m for m in sts.messages(conn) if "audio" in m]


# --------------------------------------------------------------------------- G.711 callers
def _ulaw(pcm: bytes) -> bytes:
    # μ-law has two zeros: 0x7F (-0) decodes to 0, which re-encodes as 0xFF (+0). Send only +0
    # so that "what comes back equals what was sent" is a byte comparison.
    return lin2ulaw(pcm).replace(b"\x7f", b"\xff")


G711 = {
    "alaw": (lin2alaw, alaw2lin, ALAW_SILENCE, "ALAW"),
    "ulaw": (_ulaw, ulaw2lin, ULAW_SILENCE, "ULAW"),
}


@pytest.mark.parametrize("codec", ["alaw", "ulaw"])
def test_g711_caller_decoded_for_sts_and_hears_slin(avr_server, sts_peer, calls, codec, harness_lag):
    """A G.711-only caller (`Dial(AudioSocket/...)`): 160-byte `0x10` payloads of speech-like
    sound. The STS gets the G.711 decoding as s16le; the caller hears it back as 320-byte slin
    frames (what Asterisk reads from the server), byte for byte, paced at 20 ms, with slin
    silence (zeros) around it -- never G.711 bytes, which Asterisk would play as noise."""
    encode, decode, _, name = G711[codec]
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv, frame_bytes=FRAME_G711)
    n = 50
    coded = encode(speech_like_pcm(160 * n))
    frames = [coded[i:i + FRAME_G711] for i in range(0, len(coded), FRAME_G711)]
    call.start_streaming(lambda seq: frames[seq], count=n)

    srv.wait_for_log(rf"Audio codec detected: {name}\s*$")
    conn = sts.wait_conn()
    want_pcm = decode(coded)
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(want_pcm), 5.0, "all decoded caller audio at the STS")
    assert sts.audio_in(conn) == want_pcm, f"STS must receive the {name} audio decoded to 8 kHz s16le"

    def agent():
        return [(t, p) for t, p in call.audio_frames() if not is_silence(p)]

    call.wait_for(lambda: len(agent()) >= n, 5.0, f"the echo of {n} frames")
    heard = agent()
    # ... and the line keeps going (in slin silence) after the echo.
    call.wait_for(lambda: len(call.audio_frames()) >= call.audio_frames().index(heard[-1]) + 11, 2.0,
                  "silence after the echo")
    assert len(codec_lines(srv)) == 1, codec_lines(srv)
    assert call.protocol_error is None, call.protocol_error
    assert not call.ended(), "Asterisk would have hung up"
    assert b"".join(p for _, p in heard) == want_pcm, f"the {name} caller did not hear its decoded audio as slin"
    assert call.audio_kinds() == {KIND_SLIN}
    assert {len(p) for _, p in call.audio_frames()} == {FRAME_SLIN}, "every outbound frame is 320 bytes of slin"
    # The echo goes out as it comes back from the STS: the call's 20 ms grid restarts on its
    # first frame and pauses while it is late (docs/ARCHITECTURE.md, "Playout"), so the echo
    # is what keeps the caller's 20 ms pacing, not the silence around it -- and each frame is
    # judged against when the STS peer sent it back, not against a fixed grid: the simulated
    # caller and the peer run late on a busy machine too, and that is not the server's doing.
    wire = [t for t, (_, p) in zip(call.wire_times(), call.audio_frames()) if not is_silence(p)]
    assert_paced(wire, f"{name} caller playback", lag=harness_lag,
                 available=echo_available(sts, conn, len(wire)), skip=3)


@pytest.mark.parametrize("codec", ["slin", "alaw", "ulaw"])
def test_caller_who_never_speaks_hears_the_greeting(avr_server, sts_peer, calls, codec):
    """No caller audio at all: the codec is never known, and it does not need to be -- the
    agent's greeting plays as slin from the start."""
    sts = sts_peer("node", "long", long_ms=400)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv, frame_bytes=FRAME_G711 if codec != "slin" else FRAME_SLIN)
    call.wait_for(lambda: any(not is_silence(p) for _, p in call.audio_frames()), 3.0, "the greeting")
    greeting = b"".join(p for _, p in call.audio_frames() if not is_silence(p))
    assert greeting, "no greeting heard"
    assert not codec_lines(srv), "no caller audio, yet a codec was detected"
    assert call.protocol_error is None and {len(p) for _, p in call.audio_frames()} == {FRAME_SLIN}


HOSTILE_CONTENT = {
    # Full scale, clipped, noisy, data-like: what once made the detector call slin G.711.
    "sawtooth": lambda n: b"".join(struct.pack("<h", ((k * 1311) % 65536) - 32768) for k in range(n)),
    "white-noise": lambda n: np.clip(np.random.default_rng(3).normal(0, 0.7 * 32767, n), -32768, 32767)
    .astype("<i2").tobytes(),
    "random-bytes": lambda n: np.random.default_rng(4).integers(0, 256, 2 * n, dtype=np.uint8).tobytes(),
    "clipped-speech": lambda n: np.clip(np.frombuffer(speech_like_pcm(n), dtype="<i2").astype(np.int32) * 12,
                                        -32768, 32767).astype("<i2").tobytes(),
}


@pytest.mark.parametrize("content", sorted(HOSTILE_CONTENT))
def test_loud_slin_frames_reach_sts_byte_exact(avr_server, sts_peer, calls, content):
    """320-byte `0x10` frames are slin whatever they sound like: loud, clipped, noisy or
    data-like content reaches the STS byte for byte from the first frame (nothing held, nothing
    doubled) and comes back byte-exact."""
    pcm = HOSTILE_CONTENT[content](160 * 25)
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    frames = [pcm[i:i + FRAME_SLIN] for i in range(0, len(pcm), FRAME_SLIN)]
    call.start_streaming(lambda seq: frames[seq], count=len(frames))
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(pcm), 5.0, "all caller audio at the STS")
    assert sts.audio_in(conn) == pcm, "the STS must get the caller's slin bytes unchanged"
    assert srv.log_matches(r"Audio codec detected: SLIN\s*$")
    def echoed():
        return b"".join(p for _, p in call.audio_frames() if not is_silence(p))

    call.wait_for(lambda: len(echoed()) >= len(pcm), 5.0, "the whole echo")
    assert echoed() == pcm, "the echo must come back byte-exact, as slin"
    assert call.protocol_error is None


CALLERS = {
    # name: (kind, frame bytes, 20 ms of the caller's audio for frame `seq`)
    "slin": (KIND_SLIN, FRAME_SLIN, lambda seq: speech_like_pcm(160 * (seq + 1))[-FRAME_SLIN:]),
    "ulaw": (KIND_SLIN, FRAME_G711, lambda seq: _ulaw(speech_like_pcm(160 * (seq + 1))[-FRAME_SLIN:])),
    "alaw": (KIND_SLIN, FRAME_G711, lambda seq: lin2alaw(speech_like_pcm(160 * (seq + 1))[-FRAME_SLIN:])),
    "slin16": (0x12, 640, lambda seq: tone_pcm(320, 16000, 440.0, 6000.0, 320 * seq)),
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_caller_hears_the_agent_byte_exact_as_slin(avr_server, sts_peer, calls, caller):
    """Whatever the caller speaks (slin and G.711 in `0x10`, slin16 in `0x12`), the agent's
    answer reaches it as 8 kHz slin `0x10`, byte for byte, read the way Asterisk reads it."""
    kind, frame_bytes, frame = CALLERS[caller]
    sts = sts_peer("node", "long", long_ms=1000, chunk=500)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv, frame_bytes=frame_bytes, kind=kind)
    call.start_streaming(frame)
    want = pattern_pcm(1000 * 16)
    call.wait_for(lambda: want in call.heard_slin(), 5.0, "the agent's answer, byte-exact")
    call.stop_streaming()
    assert call.protocol_error is None and not call.ended(), call.protocol_error
    assert {len(p) for _, p in call.audio_frames()} == {FRAME_SLIN}
    assert call.audio_kinds() == {KIND_SLIN}


def test_sts_faster_than_real_time_is_bounded(avr_server, sts_peer, calls):
    """An STS that sends 20 s of speech at once into a 2 s playback queue: the first 2 s play,
    unbroken, the rest is dropped, one log line says so, and the call goes on."""
    sts = sts_peer("node", "long", long_ms=20000, chunk=3200)
    srv = avr_server(STS_URL=sts.url, PLAYBACK_QUEUE_LIMIT="2000")
    call = calls(srv)
    call.start_streaming(sine_frame)
    srv.wait_for_log(r"Playback queue full \(2000 ms ahead of the caller\)")
    want = pattern_pcm(2000 * 16)
    call.wait_for(lambda: len(b"".join(p for _, p in call.audio_frames() if not is_silence(p))) >= len(want),
                  5.0, "2 s of agent audio")
    call.wait_frames(len(call.audio_frames()) + 25, timeout=2.0)  # and then silence
    call.stop_streaming()
    heard = b"".join(p for _, p in call.audio_frames() if not is_silence(p))
    assert heard.startswith(want[:-640]), "the queued start of the answer must play unbroken"
    # Bounded: 20 s were sent, at most 3 s play. The queue never holds more than 2 s, but frames
    # that play while the burst is still arriving make room for more of it, so how much more than
    # 2 s plays depends on how fast the server reads: a tight bound is a timing bound (35,840
    # bytes under ASan, where reading the burst took longer).
    assert len(heard) <= len(want) + 16000, f"{len(heard)} bytes played from a 2 s queue"
    check_timing(len(heard) <= len(want) + 3200, f"{len(heard)} bytes played from a 2 s queue")
    assert len(srv.log_matches(r"Playback queue full")) == 1
    assert not call.ended()


# --------------------------------------------------------------------------- higher rates
def dominant(pcm8k: bytes, skip: int = 400, count: int = 4000) -> tuple[float, float, float]:
    """(frequency of the strongest FFT bin, its amplitude, power of everything else / total) over
    `count` samples after `skip`. 4000 samples at 8 kHz: 2 Hz bins, 1 kHz exactly on bin 500."""
    x = np.frombuffer(pcm8k, dtype="<i2").astype(np.float64)[skip:skip + count]
    assert len(x) == count, f"only {len(x)} samples after the first {skip}"
    spec = np.fft.rfft(x)
    k = int(np.argmax(np.abs(spec[1:]))) + 1
    amp = 2 * abs(spec[k]) / count
    power = np.abs(spec) ** 2
    rest = (power.sum() - power[max(0, k - 1):k + 2].sum()) / power.sum()
    return k * 8000 / count, amp, rest


@pytest.mark.parametrize("kind,rate", [(0x12, 16000), (0x15, 44100)], ids=["slin16", "slin44k1"])
def test_higher_rate_caller_resampled_to_8k(avr_server, sts_peer, calls, kind, rate):
    """A slin16 (or 44.1 kHz) caller: 20 ms frames of a 1 kHz tone. The STS gets 8 kHz PCM
    (≈320 bytes per frame) holding that tone at the same level; the caller hears `0x10` 8 kHz
    slin frames of 320 bytes (the echo)."""
    frame_samples = rate // 50
    amp = 8000.0
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv, kind=kind, frame_bytes=2 * frame_samples)
    n = 40
    call.start_streaming(lambda seq: tone_pcm(frame_samples, rate, 1000.0, amp, seq * frame_samples), count=n)
    conn = sts.wait_conn()
    msgs = sts.wait(lambda _: (lambda m: m if len(m) >= n else None)(sts_audio_messages(sts, conn)), 5.0,
                    f"{n} audio messages at the STS")
    sizes = [m["audio_len"] for m in msgs]
    assert all(316 <= s <= 324 for s in sizes), f"8 kHz frames should be ~320 bytes, got {sorted(set(sizes))}"
    assert abs(sum(sizes) - 320 * n) <= 320, f"{sum(sizes)} bytes of 8 kHz PCM for {n} frames of 20 ms"
    pcm = sts.audio_in(conn)
    freq, got_amp, rest = dominant(pcm)
    db = 20 * np.log10(got_amp / amp)
    print(f"{rate} Hz caller: STS hears {freq:.0f} Hz at {db:+.2f} dB, other energy {10 * np.log10(rest):.1f} dB")
    assert freq == 1000.0, f"dominant frequency at the STS is {freq} Hz, not 1000 Hz"
    assert abs(db) <= 1.5, f"1 kHz tone level changed by {db:+.2f} dB in resampling"
    assert rest < 1e-3, f"{10 * np.log10(rest):.1f} dB of energy away from 1 kHz (distortion/aliasing)"
    srv.wait_for_log(r"Audio codec detected: SLIN\s*$")

    def agent():
        return [p for _, p in call.audio_frames() if not is_silence(p)]

    call.wait_for(lambda: sum(map(len, agent())) >= len(pcm), 5.0, "the echo at the caller")
    assert call.audio_kinds() == {KIND_SLIN}, f"caller got kinds {sorted(call.audio_kinds())}"
    assert {len(p) for _, p in call.audio_frames()} == {FRAME_SLIN}
    if set(sizes) == {FRAME_SLIN}:  # echoed messages are whole frames: the caller hears them as sent
        assert b"".join(agent()) == pcm
    assert call.protocol_error is None, call.protocol_error


@pytest.mark.parametrize("kind,rate", [(0x12, 16000), (0x15, 44100)], ids=["slin16", "slin44k1"])
def test_higher_rate_caller_above_4khz_is_filtered_not_aliased(avr_server, sts_peer, calls, kind, rate):
    """5 kHz cannot exist at 8 kHz: dropping samples would fold it to 3 kHz at full level;
    the resampler's low-pass must remove it (≥ 40 dB down)."""
    frame_samples = rate // 50
    sts = sts_peer("node", "mute")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv, kind=kind, frame_bytes=2 * frame_samples)
    n = 30
    call.start_streaming(lambda seq: tone_pcm(frame_samples, rate, 5000.0, 8000.0, seq * frame_samples), count=n)
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= 320 * (n - 1), 5.0, "the resampled audio at the STS")
    x = np.frombuffer(sts.audio_in(conn), dtype="<i2").astype(np.float64)[400:]
    level = 20 * np.log10(np.sqrt(np.mean(x ** 2)) * np.sqrt(2) / 8000 + 1e-9)
    print(f"{rate} Hz caller, 5 kHz tone: {level:.1f} dB at the STS")
    assert level <= -40, f"a 5 kHz tone reaches the STS at {level:.1f} dB (aliased to 3 kHz)"


# --------------------------------------------------------------------------- ambient noise
NOISE_SAMPLES = 4003  # ~0.5 s, deliberately not a multiple of the 160-sample frame


def write_pcm(path, values: list[int]) -> str:
    path.write_bytes(struct.pack(f"<{len(values)}h", *values))
    return str(path)


def ramp_noise() -> list[int]:
    """Every sample different, so a wrong loop position shows at once."""
    return [-12001 + 6 * n for n in range(NOISE_SAMPLES)]


def half_away(x: float) -> int:
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


@pytest.mark.parametrize("codec", ["slin", "alaw", "ulaw"])
def test_ambient_noise_fills_silence_scaled_and_looped(avr_server, sts_peer, calls, tmp_path, codec, harness_lag):
    """Mute STS: every outbound frame is the noise file x 0.5, continuing where the previous
    frame stopped and wrapping to the file's start mid-frame (4003 samples), as 8 kHz slin to
    every caller, G.711 ones included (±1 LSB for rounding)."""
    noise = ramp_noise()
    path = write_pcm(tmp_path / "ramp.raw", noise)
    sts = sts_peer("node", "mute")
    srv = avr_server(STS_URL=sts.url, AMBIENT_NOISE_FILE=path, AMBIENT_NOISE_LEVEL="0.5")
    if codec == "slin":
        call = calls(srv)
        call.send_audio(b"".join(sine_frame(k) for k in range(3)))  # enough to detect SLIN, then quiet
    else:
        encode, _, _, _ = G711[codec]
        call = calls(srv, frame_bytes=FRAME_G711)
        call.send_audio(encode(speech_like_pcm(160 * 10)))
    need = (2 * NOISE_SAMPLES + 480) // 160 + 1  # past the second loop boundary
    call.wait_frames(need, timeout=3.0)
    srv.wait_for_log(rf"Audio codec detected: {codec.upper()}\s*$")
    frames = call.audio_frames()
    assert call.audio_kinds() == {KIND_SLIN} and call.protocol_error is None
    want = [half_away(noise[i % NOISE_SAMPLES] * 0.5) for i in range(need * 160)]
    assert {len(p) for _, p in frames} == {FRAME_SLIN}
    got = samples(call.heard_slin())[:len(want)]
    ok = [abs(g - w) <= 1 for g, w in zip(got, want)]
    bad = [i for i, good in enumerate(ok) if not good]
    assert not bad, (f"{len(bad)} samples differ from noise x 0.5 looped; first at sample {bad[0]} "
                     f"(loop position {bad[0] % NOISE_SAMPLES}): got {got[bad[0]:bad[0] + 4]}, "
                     f"want {want[bad[0]:bad[0] + 4]}")
    for b in (NOISE_SAMPLES, 2 * NOISE_SAMPLES):  # the seams, mid-frame
        assert ok[b - 1] and ok[b], f"loop seam at sample {b}: got {got[b - 2:b + 2]}, want {want[b - 2:b + 2]}"
    assert_paced(call.wire_times()[3:], f"{codec} silence with ambient noise", lag=harness_lag)


def test_ambient_noise_under_loud_agent_saturates(avr_server, sts_peer, calls, tmp_path):
    """Level 1.0 noise (±12000) under near-full-scale agent audio (±30000): every sample is
    clamp(agent + noise), so peaks stick at 32767 / -32768 instead of wrapping round."""
    noise = [int(round(12000 * np.sin(2 * np.pi * 500 * n / 8000))) for n in range(NOISE_SAMPLES)]
    path = write_pcm(tmp_path / "tone.raw", noise)
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url, AMBIENT_NOISE_FILE=path, AMBIENT_NOISE_LEVEL="1.0")
    call = calls(srv)
    n = 30
    loud = [tone_pcm(160, 8000, 310.0, 30000.0, seq * 160) for seq in range(n)]
    call.start_streaming(lambda seq: loud[seq], count=n)

    def split():
        """Received frames as ('noise', None) when exactly the noise, else ('agent', samples)."""
        out = []
        for j, (_, p) in enumerate(call.audio_frames()):
            seg = [noise[(j * 160 + i) % NOISE_SAMPLES] for i in range(160)]
            s = samples(p)
            out.append(("noise", None) if s == seg else ("agent", (j, s, seg)))
        return out

    call.wait_for(lambda: sum(1 for k, _ in split() if k == "agent") >= n, 5.0, f"{n} echoed loud frames")
    srv.wait_for_log(r"Audio codec detected: SLIN\s*$")
    agent = [v for k, v in split() if k == "agent"][:n]
    clamped_hi = clamped_lo = 0
    for k, (j, s, seg) in enumerate(agent):
        sent = samples(loud[k])
        sums = [a + b for a, b in zip(sent, seg)]
        want = [max(-32768, min(32767, v)) for v in sums]
        wrapped = [((v + 32768) % 65536) - 32768 for v in sums]
        if s != want:
            i = next(i for i in range(160) if s[i] != want[i])
            hint = " (wrapped round!)" if s[i] == wrapped[i] else ""
            raise AssertionError(f"outbound frame {j} (echo of caller frame {k}) sample {i}: got {s[i]}, "
                                 f"want clamp({sent[i]} + {seg[i]}) = {want[i]}{hint}")
        clamped_hi += sum(1 for v in sums if v > 32767)
        clamped_lo += sum(1 for v in sums if v < -32768)
    assert clamped_hi > 100 and clamped_lo > 100, "the test signal did not exercise saturation"


@pytest.mark.parametrize("env,variable,value", [
    ({"AMBIENT_NOISE_LEVEL": "2"}, "AMBIENT_NOISE_LEVEL", "2"),
    ({"AMBIENT_NOISE_LEVEL": "-0.5"}, "AMBIENT_NOISE_LEVEL", "-0.5"),
    ({"AMBIENT_NOISE_FILE": "/nonexistent"}, "AMBIENT_NOISE_FILE", "/nonexistent"),
    ({"AMBIENT_NOISE_FILE": "<empty>"}, "AMBIENT_NOISE_FILE", "<empty>"),
], ids=["level-2", "level-negative", "file-missing", "file-empty"])
def test_ambient_noise_bad_configuration_stops_startup(tmp_path, env, variable, value):
    good = write_pcm(tmp_path / "ok.raw", ramp_noise())
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    full = {"AMBIENT_NOISE_FILE": good, "PORT": str(free_port())}
    full.update(env)
    if full["AMBIENT_NOISE_FILE"] == "<empty>":
        full["AMBIENT_NOISE_FILE"] = value = str(empty)
    code, lines = run_config_error(full)
    assert code != 0, f"exit status 0 with {env}; output {lines!r}"
    assert not any("listening" in l for l in lines), lines
    assert any(variable in l and value in l for l in lines), \
        f"no line naming {variable} and {value!r}: {lines!r}"


# --------------------------------------------------------------------------- DTMF and errors
def test_caller_dtmf_during_agent_speech_keeps_cadence(avr_server, sts_peer, calls, harness_lag):
    """As Asterisk does, the caller's audio pauses ~100 ms around each key (no frames), then one
    `0x03`. The agent's 2 s answer plays on, byte-exact, every 20 ms, with no gap."""
    sts = sts_peer("node", "long", long_ms=2000, chunk=640)
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    keys = {20: "1", 45: "#", 70: "9"}

    def frame(seq):
        start = max((s for s in keys if s <= seq), default=None)
        if start is not None and seq < start + 5:  # 100 ms without audio, key at its start
            if seq == start:
                call.send_dtmf(keys[start])
            return None
        return sine_frame(seq)

    call.start_streaming(frame)
    want = pattern_pcm(2000 * 16)

    def agent():
        return [(i, kt) for i, ((_, p), kt) in enumerate(zip(call.audio_frames(), call.wire_times()))
                if not is_silence(p)]

    call.wait_for(lambda: len(agent()) >= 100, 5.0, "2 s of agent audio")
    call.stop_streaming()
    heard = b"".join(p for _, p in call.audio_frames() if not is_silence(p))
    assert heard == want, "agent audio not delivered byte-exact around DTMF"
    idx = [i for i, _ in agent()]
    assert idx == list(range(idx[0], idx[0] + len(idx))), "silence frames inside the agent's answer"
    conn = sts.wait_conn()
    digits = sts.wait(lambda recs: (lambda d: d if len(d) >= 3 else None)(
        [r for r in recs if r["conn"] == conn and r.get("type") == "dtmf_digit"]), 3.0, "3 DTMF messages")
    assert [d["json"]["digit"] for d in digits] == ["1", "#", "9"]
    frames = call.audio_frames()
    first_t, last_t = frames[idx[0]][0], frames[idx[-1]][0]
    assert all(first_t < d["t"] < last_t for d in digits), "the keys were not pressed during agent speech"
    assert_paced([kt for _, kt in agent()], "agent speech with DTMF", lag=harness_lag)
    gaps = [b - a for (_, a), (_, b) in zip(agent(), agent()[1:])]
    # Under two frame times (plus what the machine itself stalled a sleeping process meanwhile):
    # no frame of the answer was skipped or held for a key press.
    stalled = harness_lag.worst(agent()[0][1], agent()[-1][1])
    check_timing(max(gaps) < 0.040 + stalled,
                 f"a {max(gaps) * 1000:.1f} ms gap in agent speech (the machine stalled {stalled * 1000:.1f} ms)")


@pytest.mark.parametrize("code", [b"", b"\x07"], ids=["no-code", "code-7"])
def test_asterisk_error_message_ends_the_call(avr_server, sts_peer, calls, code):
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= 320 * 5, 3.0, "some caller audio")
    call.stop_streaming()
    t0 = time.monotonic()
    assert call.send_message(KIND_ERROR, code)
    close = sts.wait(lambda recs: [r for r in recs if r["conn"] == conn and r["event"] == "close"], 3.0,
                     "the STS connection to close")[0]
    assert close["code"] != 1006, "STS connection dropped without a close frame after Asterisk's error"
    assert close["t"] - t0 < 1.0
    ended = call.wait_ended(timeout=2.0)
    assert ended - t0 < 1.0
    srv.wait_for_log(r"(?i)asterisk.*error|error.*asterisk", timeout=2.0)
    lines = srv.log_matches(r"(?i)asterisk.*error|error.*asterisk")
    if code:
        assert any(re.search(r"\b7\b", l.lower().split("error", 1)[1]) for l in lines), \
            f"the error code 7 is not in the log: {lines!r}"
    assert srv.alive()
