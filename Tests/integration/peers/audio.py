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
