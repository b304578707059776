"""Speech for the pipeline tests: espeak-ng renders a text, sox resamples it to 8 kHz s16le
mono (the pipeline's audio everywhere), and the result is trimmed and set to a level.

    pcm = say("Hello there", voice="en-gb", wpm=170, level_dbfs=-20.0)

Rendered clips are cached in memory and in a temporary directory of this process (removed
at exit), so a test session renders each text once. Also: levels in dBFS (RMS relative to
full scale 32768), white noise at a level, mixing with clipping. Needs the Debian packages
`espeak-ng` and `sox` (both in the Makefile's APT_PACKAGES).
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

FULL_SCALE = 32768.0
FRAME_BYTES = 320  # 20 ms at 8 kHz s16le

_cache: dict[tuple, bytes] = {}
_lock = threading.Lock()
_dir: Path | None = None
_serial = itertools.count()


def _cache_dir() -> Path:
    global _dir
    if _dir is None:
        _dir = Path(tempfile.mkdtemp(prefix="avr-speech-"))
        atexit.register(shutil.rmtree, _dir, True)
    return _dir


def as_array(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)


def as_pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def dbfs(pcm: bytes) -> float:
    """RMS level of s16le audio in dB relative to full scale (−inf for digital silence)."""
    x = as_array(pcm)
    if not len(x):
        return float("-inf")
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * np.log10(rms / FULL_SCALE) if rms > 0 else float("-inf")


def frame_levels(pcm: bytes) -> list[float]:
    """dBFS of each 20 ms frame."""
    return [dbfs(pcm[i:i + FRAME_BYTES]) for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def render(text: str, voice: str = "en-us", wpm: int = 175, pitch: int = 50) -> bytes:
    """espeak-ng's rendering of `text`, resampled by sox to 8 kHz s16le mono (not trimmed,
    level as espeak-ng made it)."""
    key = ("raw", text, voice, wpm, pitch)
    with _lock:
        if key in _cache:
            return _cache[key]
    # A name of its own per rendering: two threads may render the same text at once (a test
    # computing the clip it expects while the TTS service synthesises it).
    name = f"{hashlib.sha1(repr(key).encode()).hexdigest()[:16]}-{threading.get_ident()}-{next(_serial)}"
    wav = _cache_dir() / f"{name}.wav"
    raw = _cache_dir() / f"{name}.raw"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(wav), text],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # -D: no dither, so a text renders to the same bytes in every process (the TTS
    # service and the test compute the same clip).
    subprocess.run(["sox", "-D", str(wav), "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(raw)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pcm = raw.read_bytes()
    if not pcm or not any(pcm):
        raise RuntimeError(f"espeak-ng/sox produced no audio for {text!r}")
    with _lock:
        _cache[key] = pcm
    return pcm


def say(text: str, voice: str = "en-us", wpm: int = 175, pitch: int = 50,
        level_dbfs: float = -20.0) -> bytes:
    """`text` spoken: silence before the first and after the last audible sample trimmed
    (audible: above −50 dBFS), and scaled so that its loud part (the frames within 30 dB of
    the loudest) has an RMS of `level_dbfs`."""
    key = ("say", text, voice, wpm, pitch, level_dbfs)
    with _lock:
        if key in _cache:
            return _cache[key]
    x = as_array(render(text, voice, wpm, pitch))
    audible = np.nonzero(np.abs(x) > FULL_SCALE * 10 ** (-50 / 20))[0]
    x = x[audible[0]: audible[-1] + 1]
    n = len(x) // 160 * 160
    frames = x[:n].reshape(-1, 160) if n else x.reshape(1, -1)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loud = frames[rms >= rms.max() * 10 ** (-30 / 20)]
    gain = FULL_SCALE * 10 ** (level_dbfs / 20) / np.sqrt(np.mean(loud * loud))
    pcm = as_pcm(x * gain)
    with _lock:
        _cache[key] = pcm
    return pcm


def noise(nbytes: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise with an RMS of `level_dbfs`, as float samples."""
    return rng.normal(0.0, FULL_SCALE * 10 ** (level_dbfs / 20), nbytes // 2)


def onset(pcm: bytes, threshold_dbfs: float = -40.0) -> int:
    """Byte offset of the first 20 ms frame louder than `threshold_dbfs`."""
    for k, level in enumerate(frame_levels(pcm)):
        if level > threshold_dbfs:
            return k * FRAME_BYTES
    raise ValueError("no frame above the threshold")
