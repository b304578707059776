"""Audio test signals shared by the peers and the tests (no audioop: it is gone in 3.13)."""

from __future__ import annotations

import math
import struct

FRAME_SLIN = 320   # 20 ms of 8 kHz s16le
FRAME_G711 = 160   # 20 ms of G.711


def pattern_pcm(nbytes: int, start_sample: int = 0, second: bool = False) -> bytes:
    """The STS peers' agent speech: sample n = 1000 + (n*37 % 4001) (never zero), or for the
    `second` answer -(1000 + (n*53 % 3001)). Same definition as sts_node.js."""
    out = bytearray(nbytes)
    for i in range(0, nbytes - 1, 2):
        n = start_sample + i // 2
        v = -(1000 + (n * 53) % 3001) if second else 1000 + (n * 37) % 4001
        struct.pack_into("<h", out, i, v)
    if nbytes % 2:
        out[-1] = 0x11
    return bytes(out)


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2]))


def nonzero_samples(pcm: bytes) -> list[int]:
    return [s for s in samples(pcm) if s != 0]


def is_silence(frame: bytes) -> bool:
    return not any(frame)


def sine_pcm(nbytes: int, start_sample: int = 0, freq: float = 440.0, amp: int = 6000) -> bytes:
    n = nbytes // 2
    return struct.pack(f"<{n}h", *(int(amp * math.sin(2 * math.pi * freq * (start_sample + i) / 8000))
                                    for i in range(n)))


def sine_frame(seq: int) -> bytes:
    """Frame number `seq` (20 ms of 8 kHz s16le) of a continuous 300 Hz caller tone."""
    return sine_pcm(FRAME_SLIN, start_sample=seq * 160, freq=300.0, amp=3000)


MARK = 20000


def marked_frame(call_id: int, seq: int, nbytes: int = FRAME_SLIN) -> bytes:
    """A speech-like (sine) slin frame whose first two samples carry (call id, sequence number)."""
    body = bytearray(sine_pcm(nbytes, start_sample=seq * (nbytes // 2)))
    struct.pack_into("<hh", body, 0, MARK + call_id, 1 + seq)
    return bytes(body)


def parse_marker(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 4:
        return None
    a, b = struct.unpack_from("<hh", frame, 0)
    if a < MARK or a > MARK + 10000:
        return None
    return a - MARK, b - 1


def marked_seq(frame: bytes) -> int | None:
    """The sequence number a `marked_frame` carries; None for any other audio."""
    mark = parse_marker(frame)
    return None if mark is None else mark[1]


# ----------------------------------------------------------------------------- G.711 μ-law
_BIAS = 0x84
_CLIP = 32635


def lin2ulaw_sample(s: int) -> int:
    mask = 0xFF
    if s < 0:
        s = -s
        mask = 0x7F
    s = min(s, _CLIP) + _BIAS
    exp = 7
    for e in range(7, -1, -1):
        if s & (0x80 << e):
            exp = e
            break
    mant = (s >> (exp + 3)) & 0x0F
    return ((exp << 4) | mant) ^ mask


def ulaw2lin_sample(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + _BIAS
    t <<= (u & 0x70) >> 4
    return (_BIAS - t) if (u & 0x80) else (t - _BIAS)


def lin2ulaw(pcm: bytes) -> bytes:
    return bytes(lin2ulaw_sample(s) for s in samples(pcm))


def ulaw2lin(data: bytes) -> bytes:
    return struct.pack(f"<{len(data)}h", *(ulaw2lin_sample(b) for b in data))


# ----------------------------------------------------------------------------- G.711 A-law
# ITU-T G.711 A-law on 16-bit samples (the 13-bit magnitude is s >> 3), written from the
# recommendation's segment table: segment 0 and 1 share a step of 2 (in 13-bit units), each
# further segment doubles it; even bits are inverted on the wire (XOR 0x55), bit 7 is the sign
# (1 = positive). Decoding returns the middle of the quantisation interval, so it is never 0.
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def lin2alaw_sample(s: int) -> int:
    v = s >> 3  # 13-bit, floor (as the G.191 reference does with an arithmetic shift)
    if v >= 0:
        sign = 0x80
    else:
        sign = 0x00
        v = -v - 1  # one's complement magnitude
    seg = 0
    while seg < 8 and v > _ALAW_SEG_END[seg]:
        seg += 1
    if seg >= 8:
        code = 0x7F
    else:
        mant = (v >> 1) & 0x0F if seg < 2 else (v >> seg) & 0x0F
        code = (seg << 4) | mant
    return (code | sign) ^ 0x55


def alaw2lin_sample(a: int) -> int:
    a ^= 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    if seg == 0:
        t += 8
    else:
        t += 0x108
        t <<= seg - 1
    return t if a & 0x80 else -t


def lin2alaw(pcm: bytes) -> bytes:
    return bytes(lin2alaw_sample(s) for s in samples(pcm))


def alaw2lin(data: bytes) -> bytes:
    return struct.pack(f"<{len(data)}h", *(alaw2lin_sample(b) for b in data))


ALAW_SILENCE = lin2alaw_sample(0)   # 0xD5
ULAW_SILENCE = lin2ulaw_sample(0)   # 0xFF


# ----------------------------------------------------------------------------- more signals
def tone_pcm(nsamples: int, rate: int = 8000, freq: float = 1000.0, amp: float = 8000.0,
             start_sample: int = 0) -> bytes:
    """A sine at any sample rate, s16le, continuous across calls via `start_sample`."""
    return struct.pack(f"<{nsamples}h", *(int(round(amp * math.sin(2 * math.pi * freq * (start_sample + i) / rate)))
                                           for i in range(nsamples)))


def speech_like_pcm(nsamples: int, rate: int = 8000, level: float = 7000.0) -> bytes:
    """Deterministic voiced-speech-like sound: a gliding 110–190 Hz fundamental with decaying
    harmonics (formant-ish bumps near 500 Hz and 1.5 kHz) under a 4 Hz syllable envelope that
    never reaches zero (no frame is digital silence)."""
    out = []
    phase = 0.0
    for n in range(nsamples):
        t = n / rate
        f0 = 150 + 40 * math.sin(2 * math.pi * 0.7 * t)
        phase += 2 * math.pi * f0 / rate
        v = 0.0
        for h in range(1, 20):
            f = h * f0
            if f >= rate / 2 - 200:
                break
            w = 1.0 / h + 0.8 * math.exp(-((f - 500) / 200) ** 2) + 0.4 * math.exp(-((f - 1500) / 300) ** 2)
            v += w * math.sin(h * phase + 0.3 * h)
        env = 0.25 + 0.75 * (0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)) ** 2
        out.append(max(-32768, min(32767, int(round(level * 0.45 * env * v)))))
    return struct.pack(f"<{nsamples}h", *out)
