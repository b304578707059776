"""ASR, LLM and TTS test services speaking what the AVR modules speak (README "Pipeline mode"), on
aiohttp, each on its own 127.0.0.1 port with its own event loop in a thread.

    asr = AsrService(turns=[AsrTurn(["Hello there<end>\\n"])]).start()   # ASR_URL = asr.url
    llm = LlmService(replies=[llm_whole("Sure. The weather is fine.")]).start()
    tts = TtsService().start()                       # each text → espeak-ng speech (speech.py)
    req = asr.wait_request(); asr.wait_body(req, 3200)
    llm.wait_requests(1)[0]["json"] ... tts.texts() ... tts.clip_for("Sure.")
    ...stop()

Every request is recorded as a dict: `t` (time.monotonic() when it began), `method`, `path`,
`headers` (raw, in order), `uuid` (X-UUID), `body` (bytearray, growing as it streams in),
`json` (LLM/TTS), `body_end` ("eof" or "error: ...") and `t_body_end`, `status`,
`t_done` (the service finished its response), `closed_at` (the client closed the connection
while the service was still answering: barge-in cancels in-flight requests that way).
`wait_*` methods wait on a condition variable with a deadline (AssertionError on timeout).

ASR (`POST /speech-to-text-stream`): reads the chunked caller audio as it streams in and
answers a 200 `text/event-stream` body of bare text chunks. Turns (`AsrTurn`) are written
when the caller's speech ends (energy detector on the received slin: speech, then 300 ms
below the threshold), or once `after_bytes` of audio arrived, or when the test calls
`emit()`. A turn's chunks go out `gap` seconds apart; each write is recorded in `emitted`
(monotonic time, chunk) and `emitted_wall` (time.time(), to compare with the simulated
Asterisk's kernel receive timestamps). `status` ≠ 200 answers at once with
`{"message": ...}`. The response ends when the request body ends.

LLM (`POST /prompt-stream`): each request takes the next `LlmReply` (the last one repeats):
a list of writes (bytes, or a float = sleep that long), then `hold` seconds with the
connection open (in flight), then the end; or a status ≠ 200 with its body. Builders:
`llm_whole`, `llm_deltas`, `llm_split`, `llm_plain`, `llm_objects`, `llm_error`.

TTS (`POST /text-to-speech-stream`): the audio of `{"text"}` is `clip_for(text)` (espeak-ng,
8 kHz s16le, the same bytes a test computes); each request takes the next `TtsReply`
(the last repeats): mode "raw" (streamed in `chunk`-byte writes at `speed` × real time),
"wav" (a RIFF/WAVE container with a LIST chunk before `data`, its header split across
writes), "whole" (the clip in one write after `delay`), "error" (a status with a JSON body),
or "hang" (the request is read, nothing is ever answered).

Also runnable alone, for manual calls:
    pipeline_services.py [--asr-text "Hello<end>"] [--llm-reply "Hi. How are you?"] [--tts-mode raw]
prints `ASR_URL=... LLM_URL=... TTS_URL=...` and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

from loop_thread import AiohttpAppThread
from speech import FRAME_BYTES, say
from waiting import wait_on


# ----------------------------------------------------------------------------- common
class _Service:
    what = "service"
    path = "/"

    def __init__(self):
        self.port = 0
        self.requests: list[dict] = []
        self._cond = threading.Condition()
        # handler_cancellation: when avr-core closes a connection, the handler is cancelled at
        # once, which is how `closed_at` is recorded for a request still being answered.
        self._app = AiohttpAppThread(self.what, self._handle, client_max_size=64 * 1024 * 1024,
                                     shutdown_timeout=1.0, handler_cancellation=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self):
        self.port = self._app.start()
        return self

    def stop(self) -> None:
        self._app.stop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._app._loop_thread.loop

    def _new_entry(self, request: web.Request) -> dict:
        entry = {
            "t": time.monotonic(),
            "method": request.method,
            "path": request.path_qs,
            "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
            "uuid": request.headers.get("X-UUID"),
            "body": bytearray(),
            "json": None,
            "body_end": None,
            "t_body_end": None,
            "status": None,
            "t_done": None,
            "closed_at": None,
        }
        with self._cond:
            self.requests.append(entry)
            self._cond.notify_all()
        return entry

    def _set(self, entry: dict, **kw) -> None:
        with self._cond:
            entry.update(kw)
            self._cond.notify_all()

    async def _read_all(self, request: web.Request, entry: dict) -> bytes:
        body = await request.read()
        with self._cond:
            entry["body"] += body
            entry["body_end"], entry["t_body_end"] = "eof", time.monotonic()
            try:
                entry["json"] = json.loads(body)
            except ValueError:
                entry["json"] = None
            self._cond.notify_all()
        return body

    def _closed(self, entry: dict) -> None:
        """The client went away while the response was still being written."""
        with self._cond:
            if entry["closed_at"] is None and entry["t_done"] is None:
                entry["closed_at"] = time.monotonic()
            self._cond.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        entry = self._new_entry(request)
        try:
            return await self._serve(request, entry)
        except asyncio.CancelledError:
            self._closed(entry)
            raise
        except (ConnectionResetError, ConnectionError, RuntimeError, OSError) as exc:
            # Writing to a transport avr-core closed.
            self._closed(entry)
            with self._cond:
                entry.setdefault("write_error", repr(exc))
            raise

    async def _serve(self, request: web.Request, entry: dict) -> web.StreamResponse:
        raise NotImplementedError

    # ------------------------------------------------------------------ inspection
    def summary(self) -> list[dict]:
        with self._cond:
            return [{k: (len(v) if k == "body" else v) for k, v in r.items() if k != "headers"}
                    for r in self.requests]

    def wait(self, predicate, timeout: float, what: str):
        return wait_on(self._cond, predicate, timeout,
                       lambda: f"{self.what}: timed out after {timeout}s waiting for {what}; "
                               f"requests: {self.summary()}")

    # LLM and TTS requests are small JSON bodies: a request is "there" once its body is in.
    # The ASR request streams for the whole call: it is there from its head.
    whole_body = True

    def _arrived(self, entry: dict) -> bool:
        return not self.whole_body or entry["body_end"] is not None

    def wait_request(self, index: int = 0, timeout: float = 5.0) -> dict:
        return self.wait(lambda: self.requests[index] if len(self.requests) > index
                         and self._arrived(self.requests[index]) else None,
                         timeout, f"request #{index + 1}")

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[dict]:
        self.wait(lambda: len(self.requests) >= count and all(self._arrived(r) for r in self.requests[:count]),
                  timeout, f"{count} requests")
        with self._cond:
            return list(self.requests)

    def wait_done(self, entry: dict, timeout: float = 5.0) -> float:
        """Wait until the service finished answering `entry` (or the client closed it)."""
        self.wait(lambda: entry["t_done"] or entry["closed_at"], timeout, "the response to finish")
        return entry["t_done"] or entry["closed_at"]

    def wait_closed(self, entry: dict, timeout: float = 5.0) -> float:
        """Wait until the client closed `entry`'s connection before its response was complete."""
        return self.wait(lambda: entry["closed_at"] or (entry["t_done"] and "done"), timeout,
                         "the client to close the connection")

    def wait_body(self, entry: dict, nbytes: int, timeout: float = 5.0) -> bytes:
        self.wait(lambda: len(entry["body"]) >= nbytes, timeout, f"{nbytes} body bytes")
        with self._cond:
            return bytes(entry["body"])

    def wait_body_end(self, entry: dict, timeout: float = 5.0) -> str:
        return self.wait(lambda: entry["body_end"], timeout, "the request body to end")

    def count(self) -> int:
        with self._cond:
            return len(self.requests)


def header_values(entry: dict, name: str) -> list[str]:
    return [v for k, v in entry["headers"] if k.lower() == name.lower()]


# ----------------------------------------------------------------------------- ASR
@dataclass
class AsrTurn:
    chunks: list[str]
    gap: float = 0.25             # seconds between the chunks of this turn
    after_bytes: int | None = None  # None: at the end of the caller's next utterance


class UtteranceEnds:
    """Counts utterance ends in a stream of 8 kHz s16le: at least `min_speech` frames louder
    than `threshold` RMS, then `hangover` frames below it."""

    def __init__(self, threshold: float = 800.0, min_speech: int = 5, hangover: int = 15):
        self.threshold, self.min_speech, self.hangover = threshold, min_speech, hangover
        self.carry = b""
        self.speech = 0
        self.quiet = 0

    def feed(self, data: bytes) -> int:
        buf = self.carry + data
        n = len(buf) // FRAME_BYTES * FRAME_BYTES
        self.carry = buf[n:]
        ended = 0
        if not n:
            return 0
        frames = np.frombuffer(buf[:n], dtype="<i2").astype(np.float64).reshape(-1, FRAME_BYTES // 2)
        for rms in np.sqrt(np.mean(frames * frames, axis=1)):
            if rms >= self.threshold:
                self.speech += 1
                self.quiet = 0
            elif self.speech >= self.min_speech:
                self.quiet += 1
                if self.quiet >= self.hangover:
                    ended += 1
                    self.speech = self.quiet = 0
            else:
                self.speech = 0
        return ended


class AsrService(_Service):
    what = "ASR service"
    path = "/speech-to-text-stream"
    whole_body = False

    def __init__(self, turns: list[AsrTurn] | None = None, status: int = 200,
                 error_message: str = "ASR engine unavailable", threshold: float = 800.0,
                 streams: list[list[AsrTurn]] | None = None, end_after_turns: bool = False):
        """`turns` for every request, or `streams[k]` for request k (the last repeats);
        `end_after_turns`: the response ends once its turns are written (the module
        restarting), while avr-core may still be sending audio."""
        super().__init__()
        self.turns = list(turns or [])
        self.streams = streams
        self.end_after_turns = end_after_turns
        self.status = status
        self.error_message = error_message
        self.threshold = threshold
        self._outputs: dict[int, asyncio.Queue] = {}

    async def _serve(self, request: web.Request, entry: dict) -> web.StreamResponse:
        entry["emitted"] = []
        entry["emitted_wall"] = []   # the same writes in CLOCK_REALTIME (the kernel timestamps' clock)
        if self.status != 200:   # at once, as a module whose engine is down does
            resp = web.json_response({"message": self.error_message}, status=self.status)
            self._set(entry, status=self.status, t_done=time.monotonic())
            return resp
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                        "Cache-Control": "no-cache"})
        await resp.prepare(request)
        self._set(entry, status=200)
        out: asyncio.Queue = asyncio.Queue()
        index = len(self.requests) - 1
        self._outputs[index] = out
        turns = list(self.streams[min(index, len(self.streams) - 1)] if self.streams else self.turns)
        ends = UtteranceEnds(self.threshold)

        async def writer():
            while True:
                item = await out.get()
                if item is None:
                    return
                delay, chunk = item
                if delay:
                    await asyncio.sleep(delay)
                await resp.write(chunk.encode("utf-8"))
                with self._cond:
                    entry["emitted"].append((time.monotonic(), chunk))
                    entry["emitted_wall"].append(time.time())
                    self._cond.notify_all()

        def queue_turn(turn: AsrTurn) -> None:
            for k, chunk in enumerate(turn.chunks):
                out.put_nowait((turn.gap if k else 0.0, chunk))

        write_task = asyncio.create_task(writer())
        try:
            async for data in request.content.iter_any():
                with self._cond:
                    entry["body"] += data
                    self._cond.notify_all()
                finished = ends.feed(data)
                while turns and (
                        (turns[0].after_bytes is not None and len(entry["body"]) >= turns[0].after_bytes)
                        or (turns[0].after_bytes is None and finished > 0)):
                    if turns[0].after_bytes is None:
                        finished -= 1
                    queue_turn(turns.pop(0))
                if self.end_after_turns and not turns:
                    break
            else:
                self._set(entry, body_end="eof", t_body_end=time.monotonic())
        except asyncio.CancelledError:
            write_task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - recorded for the test to judge
            self._set(entry, body_end=f"error: {exc!r}", t_body_end=time.monotonic())
        out.put_nowait(None)
        try:
            await write_task
            await resp.write_eof()
        except (ConnectionError, RuntimeError, OSError):
            self._closed(entry)
            return resp
        self._set(entry, t_done=time.monotonic())
        return resp

    def emit(self, chunks: list[str], gap: float = 0.25, index: int = -1) -> None:
        """Write a turn now on request `index`'s response (from the test's thread)."""
        def put():
            out = self._outputs[sorted(self._outputs)[index]]
            for k, chunk in enumerate(chunks):
                out.put_nowait((gap if k else 0.0, chunk))
        self.loop.call_soon_threadsafe(put)

    def wait_emitted(self, entry: dict, count: int = 1, timeout: float = 10.0) -> list:
        self.wait(lambda: len(entry.get("emitted", [])) >= count, timeout, f"{count} transcript chunks written")
        with self._cond:
            return list(entry["emitted"])


# ----------------------------------------------------------------------------- LLM
@dataclass
class LlmReply:
    writes: list = field(default_factory=list)   # bytes, or a float: sleep that long
    hold: float = 0.0                            # then keep the connection open this long
    status: int = 200
    content_type: str = "text/event-stream"


def text_object(content: str, kind: str = "text", ascii_only: bool = True) -> bytes:
    return json.dumps({"type": kind, "content": content}, ensure_ascii=ascii_only).encode("utf-8")


def llm_whole(text: str, **kw) -> LlmReply:
    """The whole reply in one `text` object."""
    return LlmReply([text_object(text)], **kw)


def llm_deltas(text: str, gap: float = 0.01, **kw) -> LlmReply:
    """One `text` object per token (word and the space before it), written `gap` apart."""
    words = text.split(" ")
    tokens = [words[0]] + [" " + w for w in words[1:]]
    writes: list = []
    for tok in tokens:
        writes += [text_object(tok), gap]
    return LlmReply(writes, **kw)


def llm_split(text: str, pieces: tuple[int, ...] = (7, 3, 50, 1, 26), gap: float = 0.02, **kw) -> LlmReply:
    """One object per word, without ASCII escaping (multi-byte UTF-8 on the wire), the byte
    stream cut into writes of `pieces` bytes (cycled), and also right after every backslash
    and every UTF-8 lead byte: objects split mid-string, mid-escape and mid-character, and
    several coalesced into one write."""
    words = text.split(" ")
    stream = b"".join(text_object(w if i == 0 else " " + w, ascii_only=False) for i, w in enumerate(words))
    cuts = {i + 1 for i, b in enumerate(stream) if b == 0x5C or b >= 0xC0}
    off = k = 0
    while off < len(stream):
        off += pieces[k % len(pieces)]
        cuts.add(off)
        k += 1
    bounds = [0] + sorted(c for c in cuts if 0 < c < len(stream)) + [len(stream)]
    writes: list = []
    for a, b in zip(bounds, bounds[1:]):
        writes += [stream[a:b], gap]
    return LlmReply(writes, **kw)


def llm_plain(text: str, piece: int = 11, gap: float = 0.02, **kw) -> LlmReply:
    """A reply that is not JSON at all (text/markdown), written in `piece`-byte writes."""
    raw = text.encode("utf-8")
    writes: list = []
    for off in range(0, len(raw), piece):
        writes += [raw[off:off + piece], gap]
    return LlmReply(writes, content_type="text/plain; charset=utf-8", **kw)


def llm_objects(*objects: dict, gap: float = 0.02, **kw) -> LlmReply:
    """Arbitrary objects (status, error, unknown types...), one write each."""
    writes: list = []
    for obj in objects:
        writes += [json.dumps(obj).encode(), gap]
    return LlmReply(writes, **kw)


def llm_error(status: int = 500, message: str = "model overloaded") -> LlmReply:
    return LlmReply([json.dumps({"message": message}).encode()], status=status,
                    content_type="application/json")


class LlmService(_Service):
    what = "LLM service"
    path = "/prompt-stream"

    def __init__(self, replies: list[LlmReply] | None = None):
        super().__init__()
        self.replies = list(replies or [llm_whole("Okay.")])

    def _next_reply(self) -> LlmReply:
        with self._cond:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    async def _serve(self, request: web.Request, entry: dict) -> web.StreamResponse:
        reply = self._next_reply()
        await self._read_all(request, entry)
        if reply.status != 200:
            body = b"".join(w for w in reply.writes if isinstance(w, bytes))
            self._set(entry, status=reply.status, t_done=time.monotonic())
            return web.Response(status=reply.status, body=body, headers={"Content-Type": reply.content_type})
        resp = web.StreamResponse(status=200, headers={"Content-Type": reply.content_type})
        await resp.prepare(request)
        self._set(entry, status=200, written=0)
        for w in reply.writes:
            if isinstance(w, bytes):
                await resp.write(w)
                with self._cond:
                    entry["written"] += len(w)
            else:
                await asyncio.sleep(w)
        if reply.hold:
            self._set(entry, holding=time.monotonic())
            await asyncio.sleep(reply.hold)
        await resp.write_eof()
        self._set(entry, t_done=time.monotonic())
        return resp

    def messages(self) -> list[dict]:
        with self._cond:
            return [r["json"] for r in self.requests]


# ----------------------------------------------------------------------------- TTS
@dataclass
class TtsReply:
    mode: str = "raw"            # "raw" | "wav" | "whole" | "error" | "hang" (no answer at all)
    chunk: int = 333             # raw/wav: bytes per write
    speed: float = 4.0           # raw/wav: × real time (8 kHz s16le = 16000 bytes/s)
    delay: float = 0.3           # whole: synthesis time before the one write
    status: int = 200            # error: the status...
    error_body: dict = field(default_factory=lambda: {"error": "voice not found"})
    content_type: str = "audio/l16"
    first_pause: float = 0.0     # raw/wav: a pause after the first audio write (synthesis catching up)


def wav_header(nbytes: int, rate: int = 8000) -> bytes:
    """RIFF/WAVE, PCM 16-bit mono, with a LIST/INFO chunk between `fmt ` and `data` (as ffmpeg
    writes it), so a reader must walk the chunks to find `data`."""
    info = b"INFO" + b"ISFT" + struct.pack("<I", 14) + b"Lavf60.3.100\x00\x00"
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt
              + b"LIST" + struct.pack("<I", len(info)) + info
              + b"data" + struct.pack("<I", nbytes))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + nbytes) + b"WAVE" + chunks


class TtsService(_Service):
    what = "TTS service"
    path = "/text-to-speech-stream"

    def __init__(self, replies: list[TtsReply] | None = None, voice: str = "en-us", wpm: int = 190):
        super().__init__()
        self.replies = list(replies or [TtsReply()])
        self.voice, self.wpm = voice, wpm

    def clip_for(self, text: str) -> bytes:
        """The audio this service answers for `text` (s16le, 8 kHz, an even byte count)."""
        return say(text, voice=self.voice, wpm=self.wpm, level_dbfs=-20.0)

    def _next_reply(self) -> TtsReply:
        with self._cond:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    async def _serve(self, request: web.Request, entry: dict) -> web.StreamResponse:
        reply = self._next_reply()
        await self._read_all(request, entry)
        doc = entry["json"]
        text = doc.get("text") if isinstance(doc, dict) else None
        self._set(entry, text=text, mode=reply.mode, sent=0)
        if reply.mode == "error" or not isinstance(text, str):
            status = reply.status if reply.mode == "error" else 400
            body = reply.error_body if reply.mode == "error" else {"error": "text is required"}
            self._set(entry, status=status, t_done=time.monotonic())
            return web.json_response(body, status=status)
        if reply.mode == "hang":
            self._set(entry, holding=time.monotonic())
            await asyncio.sleep(3600)
        pcm = await asyncio.get_running_loop().run_in_executor(None, self.clip_for, text)
        if reply.mode == "whole":
            await asyncio.sleep(reply.delay)
            self._set(entry, status=200, sent=len(pcm), t_done=time.monotonic())
            return web.Response(body=pcm, headers={"Content-Type": "application/octet-stream"})
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "audio/wav" if reply.mode == "wav" else reply.content_type})
        await resp.prepare(request)
        self._set(entry, status=200)
        if reply.mode == "wav":
            head = wav_header(len(pcm))
            for piece in (head[:5], head[5:23], head[23:]):   # the header split across writes
                await resp.write(piece)
                await asyncio.sleep(0.01)
        t0 = time.monotonic()
        for off in range(0, len(pcm), reply.chunk):
            if off and off == reply.chunk and reply.first_pause:
                await asyncio.sleep(reply.first_pause)
                t0 += reply.first_pause
            due = t0 + off / (16000 * reply.speed)
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            await resp.write(pcm[off:off + reply.chunk])
            with self._cond:
                entry["sent"] = off + len(pcm[off:off + reply.chunk])
        await resp.write_eof()
        self._set(entry, t_done=time.monotonic())
        return resp

    def texts(self) -> list[str | None]:
        """The `text` of each request so far (None while a body is still arriving, or if absent)."""
        with self._cond:
            return [r["json"].get("text") if isinstance(r["json"], dict) else None for r in self.requests]


# ----------------------------------------------------------------------------- script
def main() -> None:
    ap = argparse.ArgumentParser(description="ASR/LLM/TTS test services (README: Pipeline mode)")
    ap.add_argument("--asr-text", default="Hello there<end>\n", help="written at each utterance end")
    ap.add_argument("--llm-reply", default="Sure, I can help with that. What would you like to know?")
    ap.add_argument("--llm-variant", choices=["whole", "deltas", "split", "plain"], default="deltas")
    ap.add_argument("--tts-mode", choices=["raw", "wav", "whole"], default="raw")
    args = ap.parse_args()
    builder = {"whole": llm_whole, "deltas": llm_deltas, "split": llm_split, "plain": llm_plain}[args.llm_variant]
    asr = AsrService(turns=[AsrTurn([args.asr_text]) for _ in range(1000)]).start()
    llm = LlmService(replies=[builder(args.llm_reply)]).start()
    tts = TtsService(replies=[TtsReply(mode=args.tts_mode)]).start()
    print(f"ASR_URL={asr.url} LLM_URL={llm.url} TTS_URL={tts.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for s in (asr, llm, tts):
            s.stop()


if __name__ == "__main__":
    main()
