"""Cluster mode: two avr-core instances behind HAProxy (deploy/haproxy.cfg), a
real redis-server. Asterisk's two connections of a call (CURL to /call, then AudioSocket)
are placed independently by the load balancer; with REDIS_URL the call keeps its payload
and its webhook override wherever they land. Redis stopped, restarted or frozen never
hurts a call; a rolling restart drains one instance while the other takes the new calls."""

from __future__ import annotations

import json
import random
import re
import signal
import time
import uuid as uuidlib

import pytest

from cluster_peers import HAProxy, RedisServer
from conftest import judge_exit, started_peers
from helpers import build_request, check_echo_steady, check_timing, echo_delays, echo_ok, request_once, wait_until
from metrics_scrape import value
from webhook_receiver import sts_url_reply

pytestmark = pytest.mark.call_path


@pytest.fixture
def redis_server():
    yield from started_peers(RedisServer)


@pytest.fixture
def haproxy():
    yield from started_peers(HAProxy)


def post_call(port: int, uuid: str, n: int):
    body = json.dumps({"uuid": uuid, "payload": {"n": str(n), "who": "caller"}}).encode()
    return request_once(port, build_request("POST", "/call", body))


def instance_of(servers, pattern: str) -> int | None:
    for index, srv in enumerate(servers):
        if srv.log_matches(pattern):
            return index
    return None


def wait_instance(servers, pattern: str, timeout: float = 5.0) -> int:
    """Index of the server that logged `pattern` (waits for it)."""
    found = wait_until(lambda: [i + 1 for i in [instance_of(servers, pattern)] if i is not None], timeout,
                       message=f"a server to log {pattern!r}")
    return found[0] - 1


def sts_urls_by_uuid(sts) -> dict[str, str]:
    recs = sts.records()
    urls = {r["conn"]: r["url"] for r in recs if r["event"] == "connection"}
    return {r["json"]["uuid"]: urls[r["conn"]] for r in recs
            if r["event"] == "message" and r.get("type") == "init"}


def two_instances(avr_server, sts_peer, webhook_receiver, **env):
    fallback = sts_peer("node", "echo")
    chosen = sts_peer("node", "echo")
    hooks = webhook_receiver()
    hooks.default = sts_url_reply(chosen.url + "/override")
    servers = [avr_server(STS_URL=fallback.url, WEBHOOK_URL=hooks.url, LOG_LEVEL="debug", **env) for _ in range(2)]
    return servers, fallback, chosen


def place_through_lb(lb, servers, calls, count: int, seed: int):
    """All the /call requests first (each on a new connection), then the AudioSocket
    connections in a shuffled order: the round-robin places the two connections of a call
    independently. Returns [(uuid, n, http instance, audiosocket instance)]."""
    placed = []
    for n in range(count):
        uuid = str(uuidlib.uuid4())
        resp = post_call(lb.http_port, uuid, n)
        assert resp.status == 200, resp.body
        assert resp.json()["override"] is True, resp.body
        placed.append((uuid, n))
    order = list(placed)
    random.Random(seed).shuffle(order)
    for uuid, _ in order:
        calls(lb_target(lb), uuid)
    result = []
    for uuid, n in placed:
        http_at = wait_instance(servers, f"{uuid}\\] Route registered by POST /call")
        audio_at = wait_instance(servers, f"{uuid}\\] Call started")
        result.append((uuid, n, http_at, audio_at))
    return result


class lb_target:
    """What the `calls` factory needs of a server: the AudioSocket port (here HAProxy's)."""

    def __init__(self, lb):
        self.audio_port = lb.audio_port


@pytest.mark.parametrize("loops", ["1", "2"])
def test_calls_keep_payload_and_override_on_any_instance(avr_server, sts_peer, webhook_receiver, redis_server,
                                                          haproxy, calls, loops):
    redis = redis_server()
    servers, fallback, chosen = two_instances(avr_server, sts_peer, webhook_receiver, REDIS_URL=redis.url,
                                              LOOPS=loops)
    for srv in servers:
        srv.wait_for_log(r"Shared call registry: Redis .* connected", 5.0)
    lb = haproxy(*servers)
    placed = place_through_lb(lb, servers, calls, 16, seed=10)
    crossed = [p for p in placed if p[2] != p[3]]
    print(f"{len(crossed)} of {len(placed)} calls had /call and AudioSocket on different instances")
    assert len(crossed) >= 3, placed
    assert {p[2] for p in placed} == {0, 1} and {p[3] for p in placed} == {0, 1}, "round-robin uses both"
    urls = wait_until(lambda: (lambda u: u if len(u) == 16 else None)(sts_urls_by_uuid(chosen)), 10.0,
                      message="16 calls at the override STS")
    for uuid, n, _, _ in placed:
        assert urls[uuid] == f"/override?n={n}&who=caller", (uuid, urls[uuid])
    assert sts_urls_by_uuid(fallback) == {}, "no call fell back to STS_URL"
    assert redis.command("DBSIZE") == "0", "every route was claimed (GETDEL)"


def test_without_redis_calls_across_instances_lose_their_route(avr_server, sts_peer, webhook_receiver, haproxy,
                                                               calls):
    """The contrast (the reason for REDIS_URL): same placement, no shared registry."""
    servers, fallback, chosen = two_instances(avr_server, sts_peer, webhook_receiver)
    lb = haproxy(*servers)
    placed = place_through_lb(lb, servers, calls, 16, seed=10)
    crossed = {p[0] for p in placed if p[2] != p[3]}
    assert len(crossed) >= 3
    wait_until(lambda: len(sts_urls_by_uuid(chosen)) + len(sts_urls_by_uuid(fallback)) == 16, 10.0,
               message="16 calls at an STS")
    at_fallback = sts_urls_by_uuid(fallback)
    # Every call whose connections were split lost its payload and its override.
    assert set(at_fallback) == crossed
    assert all(url == "/" for url in at_fallback.values()), at_fallback
    for srv in servers:
        for uuid in crossed:
            assert not srv.log_matches(f"{uuid}\\] Connecting to STS WebSocket: .*n=")


def test_redis_stopped_and_restarted_mid_run(avr_server, redis_server, calls):
    redis = redis_server()
    a = avr_server(REDIS_URL=redis.url, LOG_LEVEL="debug")
    b = avr_server(REDIS_URL=redis.url, LOG_LEVEL="debug")
    for srv in (a, b):
        srv.wait_for_log(r"Redis .* connected", 5.0)

    def cross_call(n: int, http, audio):
        uuid = str(uuidlib.uuid4())
        assert post_call(http.http_port, uuid, n).status == 200
        call = calls(audio, uuid)
        echo_ok(call)
        return uuid, call

    uuid, live = cross_call(1, a, b)
    b.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 3.0)  # no "(no prior POST /call)"
    port = redis.port
    redis.stop()
    for srv in (a, b):
        srv.wait_for_log(r"Redis .* unavailable", 3.0)
    # Calls keep flowing: the live one, and new ones on the instance that got their /call.
    echo_ok(live)
    for n in range(3):
        uuid, call = cross_call(10 + n, b, b)
        b.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 3.0)
        call.hangup()
    assert len(a.log_matches(r"\[WARN\].*Redis .* unavailable")) == 1, "one warning per outage"
    # Restarted: claims go through Redis again.
    redis_server(port=port)
    for srv in (a, b):
        srv.wait_for_log(r"Redis .* is back after \d+ ms", 10.0)
    uuid, call = cross_call(20, a, b)
    b.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 3.0)
    echo_ok(live)


def numbered_frame(seq: int) -> bytes:
    """Caller frame `seq` (< 65,280): its number in the first two bytes, repeated."""
    return bytes([seq & 0xFF, 1 + (seq >> 8)]) * 160


def frame_number(payload: bytes) -> int | None:
    """The number of a `numbered_frame` (echoed back), None for anything else (silence)."""
    return payload[0] + ((payload[1] - 1) << 8) if len(payload) >= 2 and payload[1] else None


def test_echo_after_a_late_claim_is_not_delayed_by_it(avr_server, redis_server, calls):
    """A call with no route anywhere waits for Redis to be asked twice (100 ms apart) with the
    caller's audio held. The built-in echo does not take that held audio: the caller hears
    what they say now, with no delay left over from the claim (replaying the held 100 ms
    kept every later echo 100 ms late)."""
    redis = redis_server()
    srv = avr_server(REDIS_URL=redis.url, LOG_LEVEL="debug")
    srv.wait_for_log(r"Redis .* connected", 5.0)
    call = calls(srv)
    call.start_streaming(numbered_frame, count=100)
    m = srv.wait_for_log(re.escape(f"[{call.uuid}] Route claimed in ") + r"(\d+) µs", 5.0)
    assert int(m.group(1)) >= 90_000, m.group(0)  # the claim did wait: the case under test
    call.wait_for(lambda: any(frame_number(p) == 99 for _, p in call.audio_frames()), 5.0, "the echo of the last frame")
    call.stop_streaming()
    echoed = [n for _, p in call.audio_frames() if (n := frame_number(p)) is not None]
    assert echoed[0] >= 3, f"frame {echoed[0]} is the first echoed: the held frames were played"
    assert echoed == list(range(echoed[0], 100)), "from the first echo on, every frame once and in order"
    delays = sorted(echo_delays(call, seq_of=frame_number))
    median = delays[len(delays) // 2]
    print(f"echo delay over {len(delays)} frames: median {median * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms")
    assert median < 0.040, f"the echo is {median * 1000:.0f} ms behind the caller (median)"


def test_password_and_database(avr_server, redis_server, calls):
    redis = redis_server(password="s3cr#t")
    a = avr_server(REDIS_URL=f"redis://:s3cr%23t@127.0.0.1:{redis.port}/2", REDIS_KEY_PREFIX="pbx7:")
    b = avr_server(REDIS_URL=f"redis://:s3cr%23t@127.0.0.1:{redis.port}/2", REDIS_KEY_PREFIX="pbx7:")
    for srv in (a, b):
        srv.wait_for_log(r"Redis redis://:\*\*\*@127\.0\.0\.1:\d+/2 connected", 5.0)
    uuid = str(uuidlib.uuid4())
    assert post_call(a.http_port, uuid, 3).status == 200
    assert redis.command("-n", "2", "EXISTS", f"pbx7:{uuid}") == "1"
    assert redis.command("-n", "0", "DBSIZE") == "0"
    echo_ok(calls(b, uuid))
    b.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 3.0)
    assert redis.command("-n", "2", "DBSIZE") == "0"
    for srv in (a, b):
        assert not srv.log_matches("s3cr"), "the password is never logged"
    # /metrics: a stored the route, b claimed it, each in one operation.
    assert value(a.http_port, "avr_redis_operations_total", op="set", result="ok") == 1
    assert value(b.http_port, "avr_redis_operations_total", op="getdel", result="ok") == 1
    assert value(b.http_port, "avr_redis_operations_total", result="failed") == 0


def test_wrong_password_falls_back(avr_server, redis_server, calls):
    redis = redis_server(password="right")
    srv = avr_server(REDIS_URL=f"redis://:wrong@127.0.0.1:{redis.port}")
    srv.wait_for_log(r"Redis .* unavailable \(AUTH refused", 5.0)
    uuid = str(uuidlib.uuid4())
    assert post_call(srv.http_port, uuid, 4).status == 200
    echo_ok(calls(srv, uuid))
    srv.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 3.0)
    assert not srv.log_matches("wrong")


def test_redis_that_never_answers(avr_server, redis_server, calls, harness_lag):
    """SIGSTOP freezes Redis: connections are accepted, nothing is answered. The REDIS_TIMEOUT
    deadline holds (each /call and each claim waits at most that long, then uses this
    instance's registry), and live calls' audio is untouched."""
    redis = redis_server()
    srv = avr_server(REDIS_URL=redis.url, REDIS_TIMEOUT="200", LOG_LEVEL="debug")
    srv.wait_for_log(r"Redis .* connected", 5.0)
    live = [calls(srv) for _ in range(4)]
    for call in live:
        call.start_streaming(numbered_frame)
    time.sleep(0.5)  # measured window: before, during and after the freeze (below)
    redis.pause()
    try:
        uuid = str(uuidlib.uuid4())
        t0 = time.monotonic()
        assert post_call(srv.http_port, uuid, 7).status == 200
        waited = time.monotonic() - t0
        assert waited >= 0.15, f"/call answered after {waited:.3f} s: it did not wait for the SET's reply"
        check_timing(waited < 0.6, f"/call waited {waited:.3f} s (deadline 0.2 s)")
        call = calls(srv, uuid)
        echo_ok(call, timeout=3.0)
        held = time.monotonic() - t0
        check_timing(held < 1.0, f"first echo {held:.3f} s after /call (deadline 0.2 s)")
        srv.wait_for_log(r"Redis .* unavailable \(no answer within 200 ms", 3.0)
        srv.wait_for_log(f"{uuid}\\] Call started from [^(]*$", 1.0)  # its route, from the local registry
        # Later calls wait at most one deadline each (an attempt of their own, or one under way).
        uuid2 = str(uuidlib.uuid4())
        assert post_call(srv.http_port, uuid2, 8).status == 200
        call2 = calls(srv, uuid2)
        echo_ok(call2)
        time.sleep(1.0)  # the freeze lasts a second of the live calls' measured audio (below)
    finally:
        redis.resume()
    srv.wait_for_log(r"Redis .* is back", 10.0)
    # /metrics: the frozen SETs and claims missed their deadline.
    assert value(srv.http_port, "avr_redis_operations_total", op="set", result="failed") >= 2
    assert value(srv.http_port, "avr_redis_operations_total", op="getdel", result="failed") >= 2
    for call in live:
        call.stop_streaming()
    # Each echo's delay from when the caller wrote the frame (check_echo_steady): a loop
    # blocked on the frozen Redis would add 200 ms to the frames of the block at once.
    print(check_echo_steady(live, harness_lag, "calls beside the frozen Redis", seq_of=frame_number))


def exited_and_others_carry_on(a, live, on_a) -> None:
    """The drained instance `a` exits cleanly, and the calls that were not on it still echo."""
    code = a.proc.wait(timeout=5)
    a.stop()
    assert judge_exit(a, code) is None
    for call in live:
        if call not in on_a:
            echo_ok(call)


def test_rolling_restart_drains_one_instance(avr_server, redis_server, haproxy, calls):
    redis = redis_server()
    servers = [avr_server(REDIS_URL=redis.url, DRAIN_TIMEOUT="60") for _ in range(2)]
    a, b = servers
    lb = haproxy(a, b)
    target = lb_target(lb)
    live = [calls(target) for _ in range(100)]
    for call in live:
        echo_ok(call)
    on_a = [c for c in live if a.log_matches(f"{c.uuid}\\] Call started")]
    on_b = [c for c in live if b.log_matches(f"{c.uuid}\\] Call started")]
    # Each call on exactly one instance. Round-robin splits them 50/50 unless a health check
    # timed out on a loaded machine (fall 1) or a connect was redispatched: then a few more
    # land on one side, which is haproxy doing its job, not a fault of ours.
    assert sorted(map(id, on_a + on_b)) == sorted(map(id, live)), "every call started on exactly one instance"
    assert min(len(on_a), len(on_b)) >= 25, (len(on_a), len(on_b), lb.log_tail())
    if len(on_a) != 50:
        print(f"split {len(on_a)}/{len(on_b)}; haproxy: {lb.log_tail()}")
    a.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert wait_until(lambda: request_once(a.http_port, build_request("GET", "/ready")).status == 503, 1.0,
                      message="/ready 503 on A")
    check_timing(time.monotonic() - t0 < 0.5, "/ready fails at once")
    # Each backend (AudioSocket, HTTP) checks on its own schedule: both must see A down.
    wait_until(lambda: lb.states("avr_audiosocket").get("avr1") == "DOWN"
               and lb.states("avr_http").get("avr1") == "DOWN", 5.0, message="haproxy marks A down")
    # New calls, both connections through the load balancer, all reach B.
    new = []
    for n in range(10):
        uuid = str(uuidlib.uuid4())
        assert post_call(lb.http_port, uuid, n).status == 200
        new.append(calls(target, uuid))
    for call in new:
        echo_ok(call)
        assert b.log_matches(f"{call.uuid}\\] Call started from [^(]*$"), "new call on B with its route"
    # A's calls go on; none is cut; A exits when the last one ends.
    for call in on_a:
        echo_ok(call)
        assert call.hangup_at is None and call.eof_at is None
    for call in on_a:
        call.hangup()
    exited_and_others_carry_on(a, live, on_a)


def test_drain_timeout_behind_the_load_balancer(avr_server, haproxy, calls):
    servers = [avr_server(DRAIN_TIMEOUT="1") for _ in range(2)]
    a, b = servers
    lb = haproxy(a, b)
    live = [calls(lb_target(lb)) for _ in range(6)]
    for call in live:
        echo_ok(call)
    on_a = [c for c in live if a.log_matches(f"{c.uuid}\\] Call started")]
    a.proc.send_signal(signal.SIGTERM)
    for call in on_a:
        call.wait_ended(5.0)
        assert call.hangup_at is not None, "ended cleanly with 0x00 at DRAIN_TIMEOUT"
    exited_and_others_carry_on(a, live, on_a)
