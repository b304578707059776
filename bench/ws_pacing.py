#!/usr/bin/env python3
"""What the caller hears with each WS_MEDIA_PACING, through the real server between a real
WebSocket STS (which sends an answer in one burst when told) and the simulated WebSocket
channel with its queue (Tests/integration/peers: plays one frame per 20 ms, MEDIA_XOFF at
900, MEDIA_XON below 800, FLUSH_MEDIA empties it).

For each mode, one call, `--turns` answers of `--answer` seconds each:
- first audio: from the STS sending the answer to the channel *playing* its first frame
  (the added latency of the agent's first audio; the channel's timer phase is its own);
- interruption tail: the STS interrupts `--interrupt-after` seconds into the playing of the
  answer; how long after the interruption the channel still plays agent frames (with
  FLUSH_MEDIA), how long the flush took to reach the channel, and how much the channel held
  when it came (what would still play without FLUSH_MEDIA, 20 ms a frame).
Then, per mode, a stream in real time (the built-in echo backend): the delay of each echo.

    AVR_CORE_BIN=.build/release/avr-core .venv/bin/python3 bench/ws_pacing.py --turns 20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "integration", "peers"))

from test_websocket_pacing import PushSts, agent_frame, played, received  # noqa: E402
from websocket_channel_sim import QueuedWebSocketChannel  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, sts_url: str, pacing: str):
    http_port = free_port()
    env = dict(os.environ, PORT=str(free_port()), HTTP_PORT=str(http_port), STS_URL=sts_url,
               WS_MEDIA_PACING=pacing, DRAIN_TIMEOUT="0", LOG_LEVEL="warn")
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc, http_port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("avr-core did not start")
            time.sleep(0.05)


def run(binary: str, pacing: str, turns: int, answer: float, interrupt_after: float) -> dict:
    sts = PushSts().start()
    proc, http_port = start_server(binary, sts.url, pacing)
    ch = QueuedWebSocketChannel(http_port, fmt="slin").start()
    first_audio, first_received, tails, held_at_flush, flush_delay = [], [], [], [], []
    try:
        sts.wait_connection()
        ch.wait(lambda: len(ch.played) >= 10, 5, "the idle line")
        frames = int(answer * 50)
        for turn in range(turns):
            base_played = len(played(ch))
            base_received = len(received(ch))
            flushes = len(ch.flushes)
            sent_at = sts.send_answer(frames)
            ch.wait(lambda: len(played(ch)) > base_played, 5, "the answer's first frame to play")
            first_audio.append(played(ch)[base_played][0] - sent_at)
            first_received.append(received(ch)[base_received][0] - sent_at)
            # Interrupt a while into the playing of the answer.
            n = int(interrupt_after * 50)
            ch.wait(lambda: len(played(ch)) >= base_played + n, answer + 5, f"{n} frames played")
            interrupted_at = sts.send([{"type": "interruption"}])
            ch.wait(lambda: len(ch.flushes) > flushes, 5, "FLUSH_MEDIA")
            flushed_at, held = ch.flushes[-1]
            held_at_flush.append(held)
            flush_delay.append(flushed_at - interrupted_at)
            # Settle: a few frames played after the flush, then the tail is final.
            ch.wait(lambda: any(t > flushed_at + 0.1 for t, _ in ch.played[-3:]), 5, "frames after the flush")
            last = max((t for t, _ in played(ch)[base_played:]), default=interrupted_at)
            tails.append(max(0.0, last - interrupted_at) * 1000)
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            cpu_seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        ch.close_quietly()
        proc.terminate()
        proc.wait(5)
        sts.stop()

    def summary(values, scale=1000.0):
        v = sorted(x * scale for x in values)
        return {"median": round(statistics.median(v), 1), "p90": round(v[int(0.9 * (len(v) - 1))], 1),
                "max": round(v[-1], 1)}

    return {"pacing": pacing, "turns": turns, "answer_s": answer,
            "first_audio_played_ms": summary(first_audio),
            "first_audio_received_ms": summary(first_received),
            "interruption_tail_ms": summary(tails, 1.0),
            "flush_after_interruption_ms": summary(flush_delay),
            "held_at_flush_frames": summary(held_at_flush, 1.0),
            "ignored_by_channel": ch.ignored, "largest_channel_queue": ch.largest_queue,
            "avr_core_cpu_s": cpu_seconds}


def run_echo(binary: str, pacing: str, frames: int) -> dict:
    """A stream in real time: the built-in echo backend (no STS_URL) sends each caller frame
    back; the delay from the caller sending a frame to the channel receiving its echo."""
    http_port = free_port()
    env = dict(os.environ, PORT=str(free_port()), HTTP_PORT=str(http_port), WS_MEDIA_PACING=pacing,
               DRAIN_TIMEOUT="0", LOG_LEVEL="warn")
    env.pop("STS_URL", None)
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("avr-core did not start")
                time.sleep(0.05)
        ch = QueuedWebSocketChannel(http_port, fmt="slin").start()
        ch.wait(lambda: len(ch.played) >= 10, 5, "the idle line")
        sent = {}
        t0 = time.monotonic()
        for k in range(frames):
            delay = t0 + 0.020 * k - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent[k] = time.monotonic()
            ch.send_media(agent_frame(k))
        ch.wait(lambda: len(received(ch)) >= frames - 1, 5, "the echoes")
        delays = sorted((t - sent[s]) * 1000 for t, s in received(ch) if s in sent)
        ch.close_quietly()
    finally:
        proc.terminate()
        proc.wait(5)
    return {"pacing": pacing, "echo_frames": len(delays), "echo_delay_ms": {
        "median": round(statistics.median(delays), 1), "p90": round(delays[int(0.9 * (len(delays) - 1))], 1),
        "max": round(delays[-1], 1)}, "largest_channel_queue": ch.largest_queue}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--answer", type=float, default=4.0, help="seconds of speech per answer (one burst)")
    parser.add_argument("--interrupt-after", type=float, default=1.0)
    parser.add_argument("--modes", default="core,asterisk")
    parser.add_argument("--echo-frames", type=int, default=250, help="frames of the real-time echo run")
    args = parser.parse_args()
    binary = os.environ.get("AVR_CORE_BIN", os.path.join(ROOT, ".build", "release", "avr-core"))
    for mode in args.modes.split(","):
        print(json.dumps(run(binary, mode, args.turns, args.answer, args.interrupt_after)), flush=True)
    for mode in args.modes.split(","):
        print(json.dumps(run_echo(binary, mode, args.echo_frames)), flush=True)


if __name__ == "__main__":
    main()
