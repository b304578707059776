"""Who paces the agent's audio on Asterisk's WebSocket channel (`WS_MEDIA_PACING`): the real
server between a real WebSocket STS, which sends the agent's answer in one burst when told,
and the simulated channel with its queue (`QueuedWebSocketChannel`: plays one frame per
20 ms, `MEDIA_XOFF` at 900 queued, `MEDIA_XON` below 800, ignores frames at 1000,
`FLUSH_MEDIA` empties it).

The agent's frames carry their sequence number (`marked_frame`: the first sample names the
agent, the second is 1 + the number), so what the channel received and played can be checked frame by frame.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import pytest

from audio import marked_frame, parse_marker
from loop_thread import LoopThread
from waiting import wait_on
from websocket_channel_sim import QueuedWebSocketChannel

pytestmark = pytest.mark.call_path

# The agent's frames are `marked_frame`s of this id (no caller's frame carries it).
AGENT = 3000


def agent_frame(seq: int) -> bytes:
    return marked_frame(AGENT, seq)


def seq_of(frame: bytes) -> int | None:
    mark = parse_marker(frame)
    return mark[1] if mark is not None and mark[0] == AGENT else None


class PushSts:
    """A WebSocket STS that sends what the test tells it to (`send`), on the call's connection."""

    def __init__(self):
        self.port = 0
        self._ws = None
        self._cond = threading.Condition()
        self._loop_thread = LoopThread("push STS")
        self._server = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._cond:
            self._ws = ws
            self._cond.notify_all()
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    def start(self) -> "PushSts":
        from websockets.asyncio.server import serve

        async def setup():
            self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None, max_size=None)
            self.port = self._server.sockets[0].getsockname()[1]

        async def cleanup():
            self._server.close()
            await self._server.wait_closed()

        self._loop_thread.start(setup, cleanup)
        return self

    def stop(self) -> None:
        self._loop_thread.stop()

    def wait_connection(self, timeout: float = 5.0):
        return wait_on(self._cond, lambda: self._ws, timeout, lambda: "push STS: no connection")

    def send(self, messages: list[dict]) -> float:
        """Sends the messages in order; returns the monotonic time the first one was sent."""
        ws = self.wait_connection()
        texts = [json.dumps(m, separators=(",", ":")) for m in messages]

        async def go():
            first = time.monotonic()
            for text in texts:
                await ws.send(text)
            return first

        return asyncio.run_coroutine_threadsafe(go(), self._loop_thread.loop).result(10)

    def close(self) -> None:
        """The agent ends the call: a close frame (1000)."""
        ws = self.wait_connection()
        asyncio.run_coroutine_threadsafe(ws.close(1000), self._loop_thread.loop).result(10)

    def send_answer(self, frames: int, per_message: int = 50) -> float:
        """The agent's answer in one burst: `frames` marked 20 ms frames, `per_message` a message."""
        messages = []
        for first in range(0, frames, per_message):
            pcm = b"".join(agent_frame(s) for s in range(first, min(frames, first + per_message)))
            messages.append({"type": "audio", "audio": base64.b64encode(pcm).decode()})
        return self.send(messages)


@pytest.fixture
def push_sts():
    sts = PushSts().start()
    yield sts
    sts.stop()


@pytest.fixture
def channel():
    made: list[QueuedWebSocketChannel] = []

    def factory(srv) -> QueuedWebSocketChannel:
        ch = QueuedWebSocketChannel(srv.http_port, fmt="slin")
        made.append(ch)
        return ch.start()

    yield factory
    for ch in made:
        ch.close_quietly()


def received(ch) -> list[tuple[float, int]]:
    return [(t, s) for t, s in ((t, seq_of(m)) for t, m in ch.media) if s is not None]


def played(ch) -> list[tuple[float, int]]:
    return [(t, s) for t, s in ((t, seq_of(m)) for t, m in ch.played) if s is not None]


def start_call(avr_server, push_sts, channel, pacing: str):
    srv = avr_server(STS_URL=push_sts.url, WS_MEDIA_PACING=pacing)
    ch = channel(srv)
    push_sts.wait_connection()
    ch.wait(lambda: len(ch.played) >= 3, 5.0, "the idle line's first frames to play")
    return srv, ch


def test_asterisk_pacing_sends_ahead_and_a_flush_silences_at_once(avr_server, push_sts, channel):
    srv, ch = start_call(avr_server, push_sts, channel, "asterisk")
    sent_at = push_sts.send_answer(200)  # 4 s of speech
    ch.wait(lambda: len(received(ch)) >= 200, 3.0, "all 200 agent frames")
    got = received(ch)
    assert [s for _, s in got] == list(range(200)), "agent frames lost or out of order"
    # Ahead of real time: 4 s of audio all in the channel's queue well within a second.
    assert got[-1][0] - sent_at < 1.0, f"the last frame came {got[-1][0] - sent_at:.2f} s after the burst"
    assert ch.ignored == 0 and ch.largest_queue < QueuedWebSocketChannel.XOFF
    # The channel plays them in order, one per tick.
    ch.wait(lambda: len(played(ch)) >= 25, 3.0, "25 agent frames played")
    push_sts.send([{"type": "interruption"}])
    ch.wait_text("FLUSH_MEDIA")
    flushed_at, dropped = ch.flushes[0]
    assert dropped > 100, f"the flush found {dropped} frames queued"
    # Whatever the channel plays afterwards is no longer the agent's.
    ch.wait(lambda: len(ch.played) >= len([p for p in ch.played if p[0] <= flushed_at]) + 5, 2.0,
            "5 frames played after the flush")
    late = [s for t, s in played(ch) if t > flushed_at]
    assert late == [], f"agent frames {late} played after FLUSH_MEDIA"
    assert [s for _, s in played(ch)] == list(range(len(played(ch))))


def test_asterisk_pacing_stops_at_xoff_and_resumes_at_xon_without_loss(avr_server, push_sts, channel):
    srv, ch = start_call(avr_server, push_sts, channel, "asterisk")
    total = 1100  # 22 s: more than the channel's queue takes
    resumes = ch.stall_timer(2.5)  # the channel plays nothing for a while: only MEDIA_XOFF stops us
    push_sts.send_answer(total)
    ch.wait(lambda: ch.xoffs, 3.0, "MEDIA_XOFF (900 queued)")
    # The agent's burst filled the queue: with the idle frames queued before it (how many
    # depends on how soon the answer came), its frames make up the 900.
    at = ch.xoffs[0]
    idle_queued = sum(1 for t, m in list(ch.media) if t <= at and seq_of(m) is None) \
        - sum(1 for t, _ in list(ch.played) if t <= at)
    assert idle_queued < 100, f"{idle_queued} idle frames queued before the answer"
    assert len(received(ch)) + idle_queued >= QueuedWebSocketChannel.XOFF
    # Paused: nothing more while the timer is stalled but what was in flight when the channel
    # said MEDIA_XOFF (our own bound on the queue allows 950).
    ch.wait(lambda: time.monotonic() >= resumes, 3.0, "the channel's timer to resume")
    paused_count = len(received(ch))
    assert paused_count < QueuedWebSocketChannel.MAX, f"{paused_count} frames sent into a full queue"
    assert ch.ignored == 0, f"the channel ignored {ch.ignored} frames (sent into a full queue)"
    assert not ch.xons
    # MEDIA_XON below 800 queued: the rest comes, nothing lost, in order.
    ch.wait(lambda: len(received(ch)) >= total, 6.0, f"all {total} agent frames after MEDIA_XON")
    xon_at = ch.xons[0]
    after = [t for t, s in received(ch)[paused_count:]]
    assert after and min(after) >= xon_at, "frames sent before MEDIA_XON"
    assert [s for _, s in received(ch)] == list(range(total))
    assert ch.ignored == 0 and ch.largest_queue < QueuedWebSocketChannel.MAX

def test_asterisk_pacing_hangs_up_after_the_channel_played_the_last_words(avr_server, push_sts, channel):
    srv, ch = start_call(avr_server, push_sts, channel, "asterisk")
    push_sts.send_answer(100)  # 2 s, all in the channel's queue at once
    ch.wait(lambda: len(received(ch)) >= 100, 3.0, "all 100 agent frames")
    push_sts.close()
    ch.wait_text("HANGUP", timeout=5.0)
    hangup_at = next(t for t, text in ch.texts if text.split(" ")[0] == "HANGUP")
    heard = [s for t, s in played(ch) if t <= hangup_at]
    # The channel plays a frame a tick; the last one may be playing as HANGUP comes.
    assert len(heard) >= 99, f"HANGUP came after {len(heard)} of 100 frames had played"


def test_core_pacing_keeps_the_channel_queue_near_empty(avr_server, push_sts, channel):
    srv, ch = start_call(avr_server, push_sts, channel, "core")
    sent_at = push_sts.send_answer(100)  # 2 s of speech
    ch.wait(lambda: len(received(ch)) >= 25, 3.0, "25 agent frames")
    first = received(ch)[0][0]
    # One frame per 20 ms: 25 frames take about half a second, not a burst.
    assert received(ch)[24][0] - first >= 0.4
    ch.wait(lambda: len(received(ch)) >= 100, 4.0, "all 100 agent frames")
    assert [s for _, s in received(ch)] == list(range(100))
    assert ch.largest_queue <= 3, f"the channel's queue reached {ch.largest_queue} frames"
    push_sts.send([{"type": "interruption"}])
    ch.wait_text("FLUSH_MEDIA")
    assert first - sent_at < 0.1
