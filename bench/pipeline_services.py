#!/usr/bin/env python3
"""Bench ASR, LLM and TTS services for `bench/run.py --mode pipeline`.

One aiohttp process answers on a timer, speaking the module protocols of README "Pipeline mode":
  POST /speech-to-text-stream  the call's audio streams in; every --asr-every seconds of audio
                               received (16000 bytes a second) a transcript is written back as
                               bare text ("bench turn N for call", no framing)
  POST /prompt-stream          a two-sentence reply streamed as {"type":"text","content":…}
                               token deltas, --llm-token-ms apart
  POST /text-to-speech-stream  raw 8 kHz s16le PCM (a 300 Hz tone at -12 dBFS), --tts-ms-per-char
                               of audio per character of text, written in 100 ms pieces
                               --tts-speed times faster than real time
  GET  /stats                  counters (JSON): requests, bytes, cancellations, errors
Prints "pipeline-bench listening port=P" once it accepts connections.
"""
import argparse
import asyncio
import json
import math
import struct

from aiohttp import web

RATE = 8000
PIECE_BYTES = RATE * 2 // 10  # 100 ms


def tone_second():
    amplitude = 32767 * 10 ** (-12 / 20)
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 300 * i / RATE))) for i in range(RATE))


class Services:
    def __init__(self, args):
        self.args = args
        self.tone = tone_second()
        self.tone_twice = self.tone * 2  # a piece may wrap around the second
        self.stats = {"asr_streams": 0, "asr_open": 0, "asr_audio_bytes": 0, "asr_transcripts": 0,
                      "llm_requests": 0, "llm_completed": 0, "llm_cancelled": 0, "llm_bad_requests": 0,
                      "tts_requests": 0, "tts_completed": 0, "tts_cancelled": 0, "tts_bytes": 0, "tts_bad_requests": 0}

    async def asr(self, request):
        uuid = request.headers.get("X-UUID", "?")
        self.stats["asr_streams"] += 1
        self.stats["asr_open"] += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            per_turn = int(self.args.asr_every * RATE * 2)
            received, turns = 0, 0
            async for chunk in request.content.iter_any():
                received += len(chunk)
                self.stats["asr_audio_bytes"] += len(chunk)
                while received >= (turns + 1) * per_turn:
                    turns += 1
                    self.stats["asr_transcripts"] += 1
                    await response.write(f"bench turn {turns} for call {uuid[:8]}".encode())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.stats["asr_open"] -= 1
        return response

    async def llm(self, request):
        self.stats["llm_requests"] += 1
        try:
            body = await request.json()
            message, messages = body["message"], body["messages"]
            assert isinstance(body["uuid"], str) and isinstance(message, str) and isinstance(messages, list)
        except Exception:
            self.stats["llm_bad_requests"] += 1
            return web.json_response({"message": "uuid, message and messages are required"}, status=400)
        reply = f"Sure, I heard you say {message.split()[-1] if message.split() else 'nothing'}. " \
                f"This is the second sentence of a bench reply."
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            words = reply.split(" ")
            for index, word in enumerate(words):
                delta = word if index == 0 else " " + word
                await response.write(json.dumps({"type": "text", "content": delta}).encode())
                await asyncio.sleep(self.args.llm_token_ms / 1000)
            await response.write_eof()
            self.stats["llm_completed"] += 1
        except ConnectionResetError:  # the core cancelled the request (barge-in, hang-up)
            self.stats["llm_cancelled"] += 1
        except asyncio.CancelledError:
            self.stats["llm_cancelled"] += 1
            raise
        return response

    async def tts(self, request):
        self.stats["tts_requests"] += 1
        try:
            text = (await request.json())["text"]
            assert isinstance(text, str)
        except Exception:
            self.stats["tts_bad_requests"] += 1
            return web.json_response({"error": "text is required"}, status=400)
        total = int(len(text) * self.args.tts_ms_per_char / 1000 * RATE) * 2
        response = web.StreamResponse(headers={"Content-Type": "audio/l16"})
        response.enable_chunked_encoding()
        interval = 0.1 / self.args.tts_speed
        try:
            await response.prepare(request)
            sent, offset = 0, 0
            while sent < total:
                size = min(PIECE_BYTES, total - sent)
                piece = self.tone_twice[offset:offset + size]
                offset = (offset + size) % len(self.tone)
                await response.write(piece)
                sent += size
                self.stats["tts_bytes"] += size
                await asyncio.sleep(interval)
            await response.write_eof()
            self.stats["tts_completed"] += 1
        except ConnectionResetError:  # the core cancelled the request (barge-in, hang-up)
            self.stats["tts_cancelled"] += 1
        except asyncio.CancelledError:
            self.stats["tts_cancelled"] += 1
            raise
        return response

    async def get_stats(self, request):
        return web.json_response(self.stats)


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--asr-every", type=float, default=4.0, help="seconds of caller audio per transcript")
    parser.add_argument("--llm-token-ms", type=float, default=15.0, help="ms between token deltas")
    parser.add_argument("--tts-ms-per-char", type=float, default=60.0, help="ms of audio per character")
    parser.add_argument("--tts-speed", type=float, default=4.0, help="times faster than real time")
    args = parser.parse_args()
    services = Services(args)
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/speech-to-text-stream", services.asr)
    app.router.add_post("/prompt-stream", services.llm)
    app.router.add_post("/text-to-speech-stream", services.tts)
    app.router.add_get("/stats", services.get_stats)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"pipeline-bench listening port={port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
