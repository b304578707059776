"""Hostile STS services beside healthy calls: a ping flood that never reads, an STS that goes
silent, a streaming-HTTP STS that stops reading its request body, one that never answers. Each runs beside five
healthy echo calls, which must lose no audio and keep a steady echo delay; the server's memory
stays bounded, and the first SIGTERM ends the process within DRAIN_TIMEOUT + 5 s whatever
the hostile peer does.

The hostile peer (`peers/hostile_sts.py`) serves every call on one `STS_URL`; a call
registered with `POST /call` and payload `{"mode": ...}` reaches it as `/?mode=...`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid as uuidlib

import pytest

from asterisk_sim import message
from audio import is_silence, marked_frame, marked_seq
from conftest import judge_exit, started_peers
from helpers import HarnessLag, build_request, check_echo_steady, request_once, rss_growth_bound_mib
from hostile_sts import HostileSts
from waiting import wait_on

pytestmark = pytest.mark.call_path

DRAIN_TIMEOUT = 2


@pytest.fixture
def hostile_sts():
    yield from started_peers(HostileSts)


def register(srv, mode: str, **extra) -> str:
    """A call uuid whose STS URL carries `mode=<mode>` (and `extra`) in its query."""
    uuid = str(uuidlib.uuid4())
    body = json.dumps({"uuid": uuid, "payload": {"mode": mode, **{k: str(v) for k, v in extra.items()}}}).encode()
    assert request_once(srv.http_port, build_request("POST", "/call", body)).status == 200
    return uuid


def agent_audio(call) -> bytes:
    return b"".join(p for _, p in call.audio_frames() if not is_silence(p))


class HealthyCalls:
    """Five callers, one marked 20 ms frame each every 20 ms, against the echo."""

    def __init__(self, srv, calls, lag: HarnessLag, n: int = 5):
        self.calls = [calls(srv) for _ in range(n)]
        self.lag = lag
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> "HealthyCalls":
        self._thread.start()
        return self

    def _tick(self) -> None:
        t0 = time.monotonic()
        seq = 0
        while not self._stop.is_set():
            delay = t0 + seq * 0.020 - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            for i, c in enumerate(self.calls):
                c.stream_frame(seq, marked_frame(i, seq))
            seq += 1
            self.frames = seq

    def finish(self) -> None:
        """Stops sending; every call must hear all it said, the echo delay steady throughout."""
        self._stop.set()
        self._thread.join(timeout=5)
        for i, c in enumerate(self.calls):
            expected = b"".join(marked_frame(i, s) for s in range(self.frames))
            c.wait_for(lambda c=c: len(agent_audio(c)) >= len(expected), 5.0, f"healthy call {i}: its echo")
            assert agent_audio(c) == expected, f"healthy call {i} lost or garbled audio"
            assert not c.ended(), f"healthy call {i} was ended"
        # Each echo against when its frame was written: the sender thread shares this process's
        # GIL with the hostile peer's and the readers' threads, the server's loop does not.
        print(check_echo_steady(self.calls, self.lag, "healthy calls", seq_of=marked_seq))


def stop_within_bound(srv) -> float:
    """First SIGTERM (a drain of DRAIN_TIMEOUT s, healthy calls still up): the process must
    exit 0 within DRAIN_TIMEOUT + 5 s. Returns how long it took."""
    t0 = time.monotonic()
    bound = DRAIN_TIMEOUT + 5
    code = srv.stop(timeout=bound)
    took = time.monotonic() - t0
    problem = judge_exit(srv, code, bound)
    assert problem is None, problem
    return took


def test_ping_flood_that_never_reads_ends_its_call_and_spares_the_others(avr_server, calls, hostile_sts, harness_lag):
    sts = hostile_sts()
    srv = avr_server(STS_URL=sts.ws_url, DRAIN_TIMEOUT=str(DRAIN_TIMEOUT))
    healthy = HealthyCalls(srv, calls, harness_lag).start()
    rss0 = srv.rss_kib()
    # 40 pings a second, never reading: a keep-alive, however odd; the call goes on.
    brisk = calls(srv, register(srv, "pings", rate=40))
    sts.wait_mode("pings")
    flood = calls(srv, register(srv, "flood"))
    flood.start_streaming(lambda seq: marked_frame(9, seq))
    sts.wait_mode("flood")
    srv.wait_for_log(r"STS connection failed: ping flood: more than 50 pings within one second", timeout=5)
    flood.wait_ended(timeout=5)
    time.sleep(2.0)  # a measured window: healthy and brisk calls run on beside the flood's end
    rss = srv.rss_kib()
    assert rss - rss0 < 64 * 1024, f"RSS grew {(rss - rss0) / 1024:.1f} MB"
    assert not brisk.ended(), "40 pings a second must not count as a flood"
    assert sts.wait_mode("pings")["pings_sent"] >= 80
    assert len(srv.log_matches(r"STS connection failed: ping flood")) == 1, srv.log_matches(r"ping flood")
    healthy.finish()
    stop_within_bound(srv)


def test_pings_while_the_sts_is_not_reading_are_answered_by_one_pong_the_latest(avr_server, calls, hostile_sts):
    sts = hostile_sts()
    srv = avr_server(STS_URL=sts.ws_url)
    late = calls(srv, register(srv, "lateread", count=40))
    conn = sts.wait_mode("lateread")
    # Caller audio as fast as it goes, until the STS leg's queue is past its bound: from then
    # on, nothing written to it reaches the kernel until the STS reads.
    frame = message(0x10, marked_frame(9, 0))
    deadline = time.monotonic() + 20
    while not srv.log_matches(r"STS is not reading"):
        assert time.monotonic() < deadline, "the STS leg's queue never filled"
        late.send_raw(frame * 256)
    sts.go.set()
    wait_on(sts._cond, lambda: conn["ended"], 10, lambda: f"the STS never finished reading: {conn}")
    assert conn["pings_sent"] == 40
    assert 1 <= conn["pongs"] <= 3, f"{conn['pongs']} pongs for 40 pings sent while it was not reading"
    assert conn["last_pong"] == 39, "the pong answers the latest ping"
    assert not late.ended()


def test_silent_sts_ends_its_call_within_interval_plus_timeout(avr_server, calls, hostile_sts, harness_lag):
    sts = hostile_sts()
    srv = avr_server(STS_URL=sts.ws_url, DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
                     STS_PING_INTERVAL="500", STS_PING_TIMEOUT="500")
    healthy = HealthyCalls(srv, calls, harness_lag).start()
    silent = calls(srv, register(srv, "stall"))
    silent.start_streaming(lambda seq: marked_frame(9, seq))
    opened = sts.wait_mode("stall")["t"]
    srv.wait_for_log(r"STS connection failed: no answer to ping within 500 ms$", timeout=5)
    ended = silent.wait_ended(timeout=5)
    assert ended - opened <= 1.0 + 0.5, f"the silent STS's call ended {ended - opened:.2f}s after it opened"
    time.sleep(1.5)  # three more ping rounds: the healthy calls answer theirs
    assert len(srv.log_matches(r"STS connection failed: no answer")) == 1, srv.log_matches(r"no answer to ping")
    healthy.finish()
    stop_within_bound(srv)


def test_http_sts_that_stops_reading_costs_bounded_memory_and_never_holds_the_exit(avr_server, calls, hostile_sts, harness_lag):
    sts = hostile_sts()
    # The stall bound is out of the way here: the call must still be up when the drain begins.
    srv = avr_server(STS_URL=sts.http_url, DRAIN_TIMEOUT=str(DRAIN_TIMEOUT), STS_HTTP_STALL_TIMEOUT="600000")
    healthy = HealthyCalls(srv, calls, harness_lag).start()
    stuck = calls(srv, register(srv, "stall"))
    sts.wait_mode("stall")
    time.sleep(0.3)  # the call's start-up allocations are behind us
    rss0 = srv.rss_kib()
    # 32 MiB of caller audio as fast as the socket takes it (AudioSocket input is not paced).
    frame = message(0x10, marked_frame(9, 0))
    count = 32 * 1024 * 1024 // 320
    sent = threading.Event()

    def blast():
        for _ in range(count // 1024):
            if not stuck.send_raw(frame * 1024):
                break
        sent.set()

    threading.Thread(target=blast, daemon=True).start()
    assert sent.wait(30), "the server did not take 32 MiB of caller audio within 30 s"
    rss = srv.rss_kib()
    assert rss - rss0 < 8 * 1024, f"RSS grew {(rss - rss0) / 1024:.1f} MB"
    srv.wait_for_log(r"STS is not reading: \d+ caller message\(s\) dropped \(over 256 KiB unsent\)$", timeout=5)
    assert not stuck.ended()
    healthy.finish()
    took = stop_within_bound(srv)
    assert took >= DRAIN_TIMEOUT - 0.5, f"exited after {took:.2f}s: the drain did not wait for the calls"


def blast_and_keep_flowing(call, stop: threading.Event, mib: int) -> threading.Thread:
    """`mib` MiB of caller audio as fast as the socket takes it (AudioSocket input is not
    paced), then one frame every 20 ms until `stop` or the call ends."""
    frame = message(0x10, marked_frame(9, 0))

    def run():
        for _ in range(mib * 1024 * 1024 // 320 // 1024):
            if stop.is_set() or not call.send_raw(frame * 1024):
                return
        while not stop.wait(0.020):
            if not call.send_raw(frame):
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_http_sts_that_stops_reading_ends_its_call_after_the_stall_timeout(avr_server, calls, hostile_sts, harness_lag):
    """The STS answers 200 and stops reading: the call's unsent bytes stay at the 256 KiB
    bound (RSS bounded while audio keeps coming), and the call ends STS_HTTP_STALL_TIMEOUT
    after the STS last took a byte, with one line; the healthy calls notice nothing."""
    sts = hostile_sts()
    srv = avr_server(STS_URL=sts.http_url, DRAIN_TIMEOUT=str(DRAIN_TIMEOUT), STS_HTTP_STALL_TIMEOUT="1500")
    healthy = HealthyCalls(srv, calls, harness_lag).start()
    stuck = calls(srv, register(srv, "stall"))
    sts.wait_mode("stall")
    time.sleep(0.3)  # the call's start-up allocations are behind us
    rss0 = srv.rss_kib()
    stop = threading.Event()
    blast_and_keep_flowing(stuck, stop, mib=32)
    rss_peak = rss0
    deadline = time.monotonic() + 30
    while not stuck.ended() and time.monotonic() < deadline:
        rss_peak = max(rss_peak, srv.rss_kib())
        time.sleep(0.1)
    stop.set()
    assert stuck.ended(), "the call to an STS that stopped reading was not ended"
    line = srv.wait_for_log(r"STS connection failed: STS HTTP [^ ]*/\?mode=[^ ]*: request body not read for 1500 ms "
                            r"\(\d+ KiB unsent\)$", timeout=1).group(0)
    print(f"stall: RSS {rss0} KiB -> peak {rss_peak} KiB; {line}")
    assert rss_peak - rss0 < 8 * 1024, f"RSS grew {(rss_peak - rss0) / 1024:.1f} MB while the STS did not read"
    assert len(srv.log_matches(r"STS connection failed")) == 1, srv.log_matches(r"STS connection failed")
    assert len(srv.log_matches(r"STS connection failed: .*request body not read")) == 1
    healthy.finish()
    stop_within_bound(srv)


def test_http_sts_that_never_answers_ends_its_call_after_the_head_timeout(avr_server, calls, hostile_sts, harness_lag):
    """The STS reads every byte of the request body and never sends a status line: the call
    ends STS_HTTP_HEAD_TIMEOUT after its request, with one line, while its audio flows; the
    STS saw that audio, and RSS stays where it was."""
    sts = hostile_sts()
    srv = avr_server(STS_URL=sts.http_url, DRAIN_TIMEOUT=str(DRAIN_TIMEOUT), STS_HTTP_HEAD_TIMEOUT="1000")
    healthy = HealthyCalls(srv, calls, harness_lag).start()
    silent = calls(srv, register(srv, "nohead"))
    silent.start_streaming(lambda seq: marked_frame(9, seq))
    conn = sts.wait_mode("nohead")
    rss0 = srv.rss_kib()
    rss_peak = rss0
    deadline = time.monotonic() + 5
    while not silent.ended() and time.monotonic() < deadline:
        rss_peak = max(rss_peak, srv.rss_kib())
        time.sleep(0.05)
    ended = silent.wait_ended(timeout=0.1)
    silent.stop_streaming()
    took = ended - conn["t"]
    assert 0.9 <= took <= 1.0 + 0.5, f"the call ended {took:.2f}s after its request, want about 1 s"
    line = srv.wait_for_log(r"STS connection failed: STS HTTP [^ ]*/\?mode=[^ ]*: no response within 1000 ms$",
                            timeout=1).group(0)
    assert conn.get("body_bytes", 0) >= 10 * 320, f"the STS saw no audio flowing: {conn}"
    print(f"no head: ended after {took:.2f}s, RSS {rss0} -> peak {rss_peak} KiB; {line}")
    # The bound is the release build's; a sanitized build's RSS also holds ASan's quarantine
    # (helpers.rss_growth_bound_mib). The call ending after 1 s is what bounds it there.
    assert rss_peak - rss0 < rss_growth_bound_mib(4) * 1024, f"RSS grew {(rss_peak - rss0) / 1024:.1f} MB"
    time.sleep(0.5)
    assert len(srv.log_matches(r"STS connection failed")) == 1, srv.log_matches(r"STS connection failed")
    healthy.finish()
    stop_within_bound(srv)
