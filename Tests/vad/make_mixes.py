#!/usr/bin/env python3
"""Builds the barge-in evaluation set for the VAD (docs/VAD.md) from espeak-ng speech.

Usage: python3 Tests/vad/make_mixes.py OUT_DIR [--quick] [--agent-dbfs LEVEL]

--quick: one echo delay (60 ms), white and pink noise at -40 dBFS only, 20 s instead of 60 s of
echo-only and noise-only audio (what the unit tests run when espeak-ng is installed).
--agent-dbfs: the agent's speech level (default -20 dBFS); its echo is 20 dB below that.

Also the simulated phone lines ("line" mixes, kinds lineecho and line): echo-only at ERL 6/10/15
dB with 0/60/200 ms delay and a clipped (non-linear) echo, 12 s each; callers 10/16/20 dB under
the agent's loudest frame, with an ERL 15 dB / 60 ms echo and without echo.

Writes, for each mix, OUT_DIR/<name>.caller.raw (what the caller leg hears: caller speech +
agent echo + line noise) and OUT_DIR/<name>.agent.raw (what the agent played, the echo
reference), 8 kHz mono s16le, and OUT_DIR/manifest.tsv with one line per mix:
    name <tab> kind <tab> onset_sample (-1: no caller speech) <tab> samples
Levels are dBFS RMS re 32768 over active speech (20 ms frames within 30 dB of the loudest).
Deterministic: fixed texts, voices and noise seeds.
"""
import os
import subprocess
import sys

import numpy as np

RATE = 8000
FRAME = 160
AGENT_DBFS = -20.0        # nominal telephone talker level (about -20 dBm0)
ECHO_DB = -20.0           # echo return loss of the line
NOISE = [("white", -40.0), ("pink", -40.0), ("white", -50.0), ("pink", -50.0)]
DELAYS_MS = [0, 60, 200]
CALLER_DBFS = [-10.0, -20.0, -30.0]
ONSET_S = 3.0             # caller starts talking 3 s into the agent's answer
AFTER_ONSET_S = 2.5
LINE_ERLS = [6, 10, 15]          # echo return loss of the simulated lines (dB)
LINE_ECHO_S = 12                 # agent speech per echo-only line mix
LINE_CALLERS_UNDER = [10, 16, 20]  # caller's loudest frame under the agent's loudest (dB)

AGENT_TEXT = ("Thank you for calling. I can help you with your booking, your invoices, or a change "
              "of address. Please tell me your customer number, and I will look up your account. "
              "Our offices are open from nine to five, Monday to Friday, and on Saturday mornings. "
              "If you would like to speak to a person, just say so at any time.")
AGENT_VOICE = "en-us+f2"
CALLERS = [
    ("en+m3", "Sorry, I need to change my delivery address."),
    ("en-gb+f4", "Hello? Can you hear me? I want to cancel."),
    ("en-us+m1", "Wait, that is not what I asked for."),
]


def speak(voice, text, speed=160):
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         check=True, capture_output=True).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16",
                          "-e", "signed-integer", "-"], input=wav, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def active_frames(x):
    n = len(x) // FRAME
    energy = (x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1)
    return energy > energy.max() * 1e-3


def scale_to(x, dbfs):
    active = active_frames(x)
    n = len(active)
    level = (x[: n * FRAME].reshape(n, FRAME)[active] ** 2).mean()
    return x * (32768 * 10 ** (dbfs / 20) / np.sqrt(level))


def onset(x):
    return int(np.argmax(active_frames(x))) * FRAME


def noise(kind, dbfs, count, seed):
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(count)
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1
        white = np.fft.irfft(spectrum / np.sqrt(f), count)
    return white * (32768 * 10 ** (dbfs / 20) / white.std())


def agent_peak_dbfs(x):
    """Level of the loudest 20 ms frame, dBFS re 32768."""
    n = len(x) // FRAME
    return 10 * np.log10((x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1).max() / 32768 ** 2)


def line_echo(played, erl, delay_ms, clip=False):
    """What a 2-wire hybrid sends back of `played`: `erl` dB quieter, `delay_ms` late; with
    `clip`, overdriven first (clipped at a quarter of the agent's peak), a non-linear echo."""
    d = RATE * delay_ms // 1000
    source = played
    if clip:
        limit = np.abs(played).max() / 4
        source = np.clip(played * 2, -limit, limit)
        source *= np.sqrt((played ** 2).mean() / (source ** 2).mean())
    echo = np.zeros_like(played)
    echo[d:] = source[: len(played) - d] * 10 ** (-erl / 20)
    return echo


def write(path, x):
    np.clip(np.round(x), -32768, 32767).astype("<i2").tofile(path)


def main():
    global AGENT_DBFS
    out = sys.argv[1]
    quick = "--quick" in sys.argv
    if "--agent-dbfs" in sys.argv:
        AGENT_DBFS = float(sys.argv[sys.argv.index("--agent-dbfs") + 1])
    os.makedirs(out, exist_ok=True)
    agent = scale_to(speak(AGENT_VOICE, AGENT_TEXT), AGENT_DBFS)
    callers = [(voice, speak(voice, text)) for voice, text in CALLERS]
    lines = []

    def agent_loop(count):
        reps = int(np.ceil(count / len(agent)))
        return np.tile(agent, reps)[:count]

    def echo_of(played, delay_ms):
        d = RATE * delay_ms // 1000
        echo = np.zeros_like(played)
        echo[d:] = played[: len(played) - d] * 10 ** (ECHO_DB / 20)
        return echo

    seed = 1
    delays = [60] if quick else DELAYS_MS
    noises = NOISE[:2] if quick else NOISE
    # Caller speech over the agent's echo and line noise.
    for caller_dbfs in CALLER_DBFS:
        for delay in delays:
            for kind, noise_dbfs in noises:
                for index, (voice, clip) in enumerate(callers):
                    clip = scale_to(clip, caller_dbfs)
                    start = int(ONSET_S * RATE) - onset(clip)
                    count = int((ONSET_S + AFTER_ONSET_S) * RATE)
                    played = agent_loop(count)
                    caller = np.zeros(count)
                    part = clip[: count - start]
                    caller[start: start + len(part)] = part
                    seed += 1
                    mixed = caller + echo_of(played, delay) + noise(kind, noise_dbfs, count, seed)
                    name = f"speech{int(caller_dbfs)}_echo{delay}ms_{kind}{int(noise_dbfs)}_v{index}"
                    write(f"{out}/{name}.caller.raw", mixed)
                    write(f"{out}/{name}.agent.raw", played)
                    lines.append(f"{name}\tspeech\t{int(ONSET_S * RATE)}\t{count}")
    # The agent's echo and line noise only, 60 s each; and line noise only, 60 s.
    minute = (20 if quick else 60) * RATE
    for delay in delays:
        for kind, noise_dbfs in noises:
            seed += 1
            played = agent_loop(minute)
            name = f"echo{delay}ms_{kind}{int(noise_dbfs)}"
            write(f"{out}/{name}.caller.raw", echo_of(played, delay) + noise(kind, noise_dbfs, minute, seed))
            write(f"{out}/{name}.agent.raw", played)
            lines.append(f"{name}\techo\t-1\t{minute}")
    for kind, noise_dbfs in noises:
        seed += 1
        name = f"noise_{kind}{int(noise_dbfs)}"
        write(f"{out}/{name}.caller.raw", noise(kind, noise_dbfs, minute, seed))
        write(f"{out}/{name}.agent.raw", np.zeros(minute))
        lines.append(f"{name}\tnoise\t-1\t{minute}")
    # Simulated phone lines (docs/VAD.md, "Echo cancellation"): the agent's echo at the
    # line's echo return loss (ERL) and delay, as a 2-wire hybrid returns it, and callers
    # given by how far their loudest frame is under the agent's loudest frame.
    peak = agent_peak_dbfs(agent)
    line_noises = [("white", -50.0)] if quick else [("white", -50.0), ("pink", -40.0)]
    for erl in LINE_ERLS:
        for delay in DELAYS_MS:
            for kind, noise_dbfs in line_noises:
                seed += 1
                played = agent_loop(LINE_ECHO_S * RATE)
                name = f"line_erl{erl}_echo{delay}ms_{kind}{int(noise_dbfs)}"
                echo = line_echo(played, erl, delay)
                write(f"{out}/{name}.caller.raw", echo + noise(kind, noise_dbfs, len(played), seed))
                write(f"{out}/{name}.agent.raw", played)
                lines.append(f"{name}\tlineecho\t-1\t{len(played)}")
    for delay in [60] if quick else DELAYS_MS:
        seed += 1
        played = agent_loop(LINE_ECHO_S * RATE)
        name = f"line_erl6clipped_echo{delay}ms_white-50"
        echo = line_echo(played, 6, delay, clip=True)
        write(f"{out}/{name}.caller.raw", echo + noise("white", -50.0, len(played), seed))
        write(f"{out}/{name}.agent.raw", played)
        lines.append(f"{name}\tlineecho\t-1\t{len(played)}")
    for under in LINE_CALLERS_UNDER:
        for erl in [None, 15]:
            for kind, noise_dbfs in line_noises:
                for index, (voice, clip) in enumerate(callers):
                    clip = clip * (10 ** ((peak - under - agent_peak_dbfs(clip)) / 20))
                    start = int(ONSET_S * RATE) - onset(clip)
                    count = int((ONSET_S + AFTER_ONSET_S) * RATE)
                    played = agent_loop(count)
                    caller = np.zeros(count)
                    part = clip[: count - start]
                    caller[start: start + len(part)] = part
                    seed += 1
                    echo = 0 if erl is None else line_echo(played, erl, 60)
                    mixed = caller + echo + noise(kind, noise_dbfs, count, seed)
                    name = f"line_under{under}_{'noecho' if erl is None else f'erl{erl}_echo60ms'}_{kind}{int(noise_dbfs)}_v{index}"
                    write(f"{out}/{name}.caller.raw", mixed)
                    write(f"{out}/{name}.agent.raw", played)
                    lines.append(f"{name}\tline\t{int(ONSET_S * RATE)}\t{count}")
    with open(f"{out}/manifest.tsv", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} mixes in {out}")


if __name__ == "__main__":
    main()
