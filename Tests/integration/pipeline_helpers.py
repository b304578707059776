"""Helpers for the pipeline tests: a caller line that talks, a line that hears
itself, and where the agent's clips are in what the caller heard.

`CallerLine` feeds a simulated call a frame every 20 ms: the frames of the clips queued with
`play()`, otherwise the line's idle signal (digital silence, or white noise at `noise_dbfs`),
plus, with `echo_db`, what the caller heard `echo_delay` frames earlier attenuated by
`echo_db` (the agent's audio reflected back, as a hybrid or a speakerphone does). Every frame
is recorded with its send time (monotonic) and tag, as slin and as sent on the wire (μ-law
for `codec="ulaw"`: 160-byte frames).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from asterisk_sim import KIND_SLIN
from audio import lin2ulaw
from speech import FRAME_BYTES, as_array, as_pcm, noise


class CallerLine:
    def __init__(self, call, codec: str = "slin", noise_dbfs: float | None = None,
                 echo_db: float | None = None, echo_delay: int = 3, seed: int = 12):
        self.call = call
        self.codec = codec
        self.noise_dbfs = noise_dbfs
        self.echo_gain = None if echo_db is None else 10 ** (echo_db / 20)
        self.echo_delay = echo_delay
        self.echo_pos: int | None = None   # byte offset in what was heard (see _echo)
        self._wall0: float | None = None   # when frame 0 was due (wall clock)
        self._heard_index = 0              # received messages, and slin bytes among them,
        self._heard_bytes = 0              # that had arrived by the last frame's due time
        self.rng = np.random.default_rng(seed)
        self.queue: deque = deque()
        self.sent: list[tuple[float, str | None, bytes, bytes]] = []  # (t, tag, slin, wire)
        self.cond = threading.Condition()

    def _heard_by(self, due: float) -> int:
        """Bytes of audio the caller had heard by wall-clock time `due` (the kernel's receive
        times): what a line running in real time had played by then, however late this
        process's streaming thread gets round to the frame due at `due`."""
        call = self.call
        with call.cond:
            while self._heard_index < len(call.received) and call.kernel_times[self._heard_index] <= due:
                _, kind, payload = call.received[self._heard_index]
                if kind == KIND_SLIN:
                    self._heard_bytes += len(payload)
                self._heard_index += 1
        return self._heard_bytes

    def _echo(self, due: float):
        """What the line returns with the caller frame due at `due`: the heard audio
        `echo_delay` frames back, read as a steady line reads it, one frame's worth per caller
        frame. Pairing each caller frame with "the newest heard frame less the delay" instead
        repeats a frame and skips the next whenever the server's frames and the caller's clock
        land close together (no real line does that); the position only moves to the target
        again when the two clocks drift apart by more than two frames (a hold, a stall), as a
        jitter buffer would. The target is taken at the frame's due time, not when this thread
        runs: a line's echo does not wait for the test process (a loaded machine runs the
        streaming thread late, then several frames at once)."""
        heard = self.call.heard_slin()
        target = self._heard_by(due) - (self.echo_delay + 1) * FRAME_BYTES
        if target < 0:
            return None
        if self.echo_pos is None or abs(self.echo_pos - target) > 2 * FRAME_BYTES:
            self.echo_pos = target
        piece = heard[self.echo_pos:self.echo_pos + FRAME_BYTES]
        self.echo_pos += FRAME_BYTES
        if len(piece) < FRAME_BYTES:
            piece += b"\x00" * (FRAME_BYTES - len(piece))
        return as_array(piece) * self.echo_gain

    def start(self) -> "CallerLine":
        self.call.start_streaming(self._frame)
        return self

    def stop(self) -> None:
        self.call.stop_streaming()

    def play(self, pcm: bytes, tag: str) -> None:
        """Queue `pcm` (s16le, 8 kHz) to be said, padded to whole frames with silence."""
        pcm = pcm + b"\x00" * (-len(pcm) % FRAME_BYTES)
        with self.cond:
            for off in range(0, len(pcm), FRAME_BYTES):
                self.queue.append((tag, pcm[off:off + FRAME_BYTES]))

    def _frame(self, seq: int) -> bytes:
        with self.cond:
            tag, frame = self.queue.popleft() if self.queue else (None, b"\x00" * FRAME_BYTES)
        x = None
        if self.noise_dbfs is not None:
            x = noise(FRAME_BYTES, self.noise_dbfs, self.rng)
        if self._wall0 is None:
            self._wall0 = time.time() - seq * 0.020
        if self.echo_gain is not None:
            e = self._echo(self._wall0 + seq * 0.020)
            if e is not None:
                x = e if x is None else x + e
        if x is not None:
            frame = as_pcm(as_array(frame) + x)
        wire = lin2ulaw(frame) if self.codec == "ulaw" else frame
        with self.cond:
            self.sent.append((time.monotonic(), tag, frame, wire))
            self.cond.notify_all()
        return wire

    # ------------------------------------------------------------------ what was sent
    def slin(self) -> bytes:
        with self.cond:
            return b"".join(s for _, _, s, _ in self.sent)

    def wire(self) -> bytes:
        with self.cond:
            return b"".join(w for _, _, _, w in self.sent)

    def frames_of(self, tag: str) -> list[tuple[float, bytes]]:
        with self.cond:
            return [(t, s) for t, g, s, _ in self.sent if g == tag]

    def wait_said(self, tag: str, timeout: float = 10.0) -> list[tuple[float, bytes]]:
        """Wait until every queued frame of `tag` has been sent."""
        def done():
            return self.frames_of(tag) and not any(g == tag for g, _ in self.queue)
        deadline = time.monotonic() + timeout
        with self.cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"caller line: {tag!r} not said within {timeout}s")
                self.cond.wait(min(left, 0.05))
        return self.frames_of(tag)


# --------------------------------------------------------------------------- what was heard
def find_clip(heard: bytes, clip: bytes, start: int = 0) -> int:
    """Byte offset of `clip`, byte-exact, in what the caller heard (−1 if absent)."""
    return heard.find(clip, start)


def clips_in_order(heard: bytes, clips: list[tuple[str, bytes]]) -> list[int]:
    """Each clip found whole and byte-exact, each after the previous one; returns the offsets.
    The message names the first clip missing and how much of it was heard."""
    offsets = []
    pos = 0
    for name, clip in clips:
        at = heard.find(clip, pos)
        if at < 0:
            anywhere = heard.find(clip)
            # the longest prefix of the clip that was heard after `pos`, for the message
            lo, hi = 0, len(clip)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if heard.find(clip[:mid], pos) >= 0:
                    lo = mid
                else:
                    hi = mid - 1
            at = heard.find(clip[:lo], pos) if lo else -1
            gap = ""
            if lo and at >= 0 and (at + lo) % 320 and not any(heard[at + lo:(at + lo) // 320 * 320 + 320]):
                gap = " (then silence to the end of that frame: a partial frame played padded?)"
            raise AssertionError(
                f"clip {name!r} ({len(clip)} bytes) not heard whole after byte {pos}: longest prefix heard "
                f"{lo} bytes{gap}; found elsewhere: {anywhere}; heard {len(heard)} bytes, "
                f"{sum(1 for i in range(0, len(heard), 320) if any(heard[i:i + 320]))} non-silent frames")
        offsets.append(at)
        pos = at + len(clip)
    return offsets


def common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while lo < hi:  # first index where they differ
        mid = (lo + hi) // 2
        if a[:mid + 1] == b[:mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def non_silent_frames(frames: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    return [(t, p) for t, p in frames if any(p)]


def playback_stop(frames: list[tuple[float, bytes]], clip: bytes) -> tuple[float | None, int]:
    """Where the caller stopped hearing `clip`: (arrival time of the first frame that is not
    the clip's continuation, or None if the clip played whole or is still playing at the end
    of `frames`; bytes of the clip heard). The clip's start must have been heard."""
    heard = b"".join(p for _, p in frames)
    start = heard.find(clip[:FRAME_BYTES * 5])
    if start < 0:
        raise AssertionError("the start of the clip was never heard")
    played = common_prefix(heard[start:], clip)
    index = (start + played) // FRAME_BYTES
    if played >= len(clip) or index >= len(frames) - 1:
        return None, played
    return frames[index][0], played
