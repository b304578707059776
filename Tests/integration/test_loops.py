"""LOOPS=2: one event loop per thread behind SO_REUSEPORT listeners, one shared call registry."""

from __future__ import annotations

import json
import uuid as uuidlib

import pytest

from helpers import build_request, request_once
from test_call import test_fifty_simultaneous_calls_hear_only_their_own_audio as fifty_calls

pytestmark = pytest.mark.call_path


def test_routes_registered_on_any_loop_reach_calls_on_any_loop(avr_server, sts_peer, calls):
    # The kernel spreads both the HTTP and the AudioSocket connections over the two loops,
    # so with 16 calls some /call registrations are claimed by a call on the other loop.
    sts = sts_peer("node", "echo")
    srv = avr_server(STS_URL=sts.url, LOOPS="2")
    expected = {}
    for n in range(16):
        uuid = str(uuidlib.uuid4())
        body = json.dumps({"uuid": uuid, "payload": {"n": str(n)}}).encode()
        resp = request_once(srv.http_port, build_request("POST", "/call", body))
        assert resp.status == 200
        expected[uuid] = f"/?n={n}"
        calls(srv, uuid)
    # Every connection's init names its call; its URL must carry that call's payload.
    inits = sts.wait(lambda recs: (lambda found: found if len(found) == 16 else None)(
        [r for r in recs if r["event"] == "message" and r.get("type") == "init"]), 10.0, "16 init messages")
    urls = {conn: sts.of(conn, "connection")[0]["url"] for conn in sts.conns()}
    seen = {r["json"]["uuid"]: urls[r["conn"]] for r in inits}
    assert seen == expected


def test_fifty_calls_on_two_loops_hear_only_their_own_audio(avr_server, sts_peer, calls):
    fifty_calls(lambda **env: avr_server(LOOPS="2", **env), sts_peer, calls)
