"""The HTTP service: /call, /health, robustness of the HTTP/1.1 server."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

from conftest import run_config_error
from helpers import (
    SEED_BODY,
    SEED_QUERY,
    SEED_UUID,
    ConnectionClosed,
    RawHttp,
    Response,
    assert_health,
    assert_json_content,
    assert_json_error,
    build_request,
    call_request,
    request_once,
)

STS = "ws://localhost:6030"
SEED_ANSWER = ('{"sts_url":"ws://localhost:6030/?from=2000&to=5001&uniqueid=1770758888.32'
               '&channel=PJSIP%2F2000-00000013","override":false}')


def curl(*args: str, timeout: float = 10.0) -> tuple[str, int, str, float]:
    """Run the curl CLI; returns (body, status, content_type, seconds)."""
    marker = "\n--AVR-CURL--\n"
    t0 = time.monotonic()
    out = subprocess.run(["curl", "-s", *args, "-w", marker + "%{http_code} %{content_type}"],
                         capture_output=True, timeout=timeout, check=False)
    took = time.monotonic() - t0
    assert out.returncode == 0, (out.returncode, out.stderr)
    body, _, tail = out.stdout.decode().rpartition(marker)
    status, _, ctype = tail.partition(" ")
    return body, int(status), ctype, took


@pytest.fixture
def srv(avr_server):
    return avr_server(STS_URL=STS)


# --------------------------------------------------------------------------- /call, /health
def test_call_with_curl_exactly_like_the_dialplan(srv):
    body, status, ctype, _ = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", SEED_BODY,
                                  srv.url("/call"))
    assert status == 200
    assert ctype.split(";")[0] == "application/json"
    assert body == SEED_ANSWER


def test_call_without_sts_url_answers_null(avr_server):
    srv = avr_server()
    body, status, ctype, _ = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", SEED_BODY,
                                  srv.url("/call"))
    assert (status, ctype.split(";")[0]) == (200, "application/json")
    assert body == '{"sts_url":null,"override":false}'


def test_health(srv):
    body, status, ctype, _ = curl(srv.url("/health"))
    assert status == 200 and ctype.split(";")[0] == "application/json"
    assert json.loads(body) == {"status": "ok"}
    resp = request_once(srv.http_port, build_request("GET", "/health"))
    assert resp.status == 200 and resp.body == b'{"status":"ok"}'
    assert_json_content(resp)


def test_large_payload_with_expect_100_continue_is_fast(srv):
    """Older libcurl (and curl for big bodies) sends `Expect: 100-continue` and waits 1 s for
    `100 Continue` before sending the body. The server must not make it wait."""
    payload = {"from": "2000", "to": "5001", "note": "x" * 2000}
    body = json.dumps({"uuid": str(uuidlib.uuid4()), "payload": payload})
    assert len(body) > 1024
    out, status, ctype, took = curl("-X", "POST", "-H", "Content-Type: application/json",
                                    "-H", "Expect: 100-continue", "-d", body, srv.url("/call"))
    print(f"POST /call {len(body)} bytes with Expect: 100-continue took {took * 1000:.0f} ms")
    assert status == 200, out
    assert json.loads(out)["sts_url"].startswith("ws://localhost:6030/?from=2000&to=5001&note=xxx")
    assert took < 0.5, f"took {took:.3f}s: the server made curl fall back to its 1 s Expect wait"


def test_expect_100_continue_raw(srv):
    body = call_request(str(uuidlib.uuid4()), headers=[("Expect", "100-continue")])
    head, _, payload = body.partition(b"\r\n\r\n")
    with srv.http() as c:
        c.send(head + b"\r\n\r\n")
        interim = c.read_response(timeout=2.0)
        assert interim.status == 100, interim
        c.send(payload)
        resp = c.read_response()
        assert resp.status == 200, resp.body
    assert_health(srv.http_port)


def test_uppercase_uuid_accepted(srv):
    resp = request_once(srv.http_port, call_request(SEED_UUID.upper()))
    assert resp.status == 200, resp.body
    assert resp.json() == json.loads(SEED_ANSWER)


def test_payload_values_are_percent_encoded(srv):
    payload = {"a b": "x&y=z", "ü": "é/?#"}
    resp = request_once(srv.http_port, call_request(str(uuidlib.uuid4()), payload))
    assert resp.status == 200, resp.body
    url = resp.json()["sts_url"]
    assert url.startswith("ws://localhost:6030/?"), url
    from urllib.parse import parse_qsl, urlsplit
    assert dict(parse_qsl(urlsplit(url).query)) == payload, url
    assert " " not in url and "#" not in url


# --------------------------------------------------------------------------- framing
def test_request_sent_byte_by_byte(srv):
    data = call_request(SEED_UUID)
    with srv.http() as c:
        c.send_bytewise(data)
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body.decode() == SEED_ANSWER
    assert_health(srv.http_port)


@pytest.mark.parametrize("count", [2, 3])
def test_pipelined_requests_answered_in_order(srv, count):
    ids = [str(uuidlib.uuid4()) for _ in range(count)]
    reqs = [
        call_request(ids[0], {"n": "0"}),
        build_request("GET", "/health"),
        call_request(ids[2] if count > 2 else ids[1], {"n": "2"}),
    ][:count]
    with srv.http() as c:
        c.send(b"".join(reqs))
        got = [c.read_response() for _ in range(count)]
    assert got[0].status == 200 and got[0].json()["sts_url"] == "ws://localhost:6030/?n=0"
    assert got[1].status == 200 and got[1].json() == {"status": "ok"}
    if count == 3:
        assert got[2].status == 200 and got[2].json()["sts_url"] == "ws://localhost:6030/?n=2"


def test_keep_alive_two_requests_on_one_connection(srv):
    with srv.http() as c:
        c.send(call_request(str(uuidlib.uuid4())))
        r1 = c.read_response()
        assert r1.status == 200
        assert (r1.header("Connection") or "").lower() != "close"
        assert not c.closed_within(0.05)
        c.send(build_request("GET", "/health"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.json() == {"status": "ok"}


def test_connection_close_honored(srv):
    with srv.http() as c:
        c.send(build_request("GET", "/health", headers=[("Connection", "close")]))
        resp = c.read_response()
        assert resp.status == 200
        assert c.closed_within(1.0), "server kept the connection open after Connection: close"


def test_idle_keep_alive_survives_header_timeout(avr_server):
    """Asterisk's CURL() keeps its connection idle for the whole call: an idle connection
    between requests is not a half-sent request and must not get 408."""
    srv = avr_server(STS_URL=STS, HTTP_HEADER_TIMEOUT="300")
    with srv.http() as c:
        c.send(call_request(str(uuidlib.uuid4())))
        assert c.read_response().status == 200
        assert c.still_open_after(0.9), f"idle keep-alive connection was closed; got {c.buf!r}"
        c.send(build_request("GET", "/health"))
        assert c.read_response().status == 200


def test_chunked_call_body(srv):
    body = SEED_BODY.encode()
    chunks = [body[:7], body[7:50], body[50:51], body[51:]]
    with srv.http() as c:
        c.send(build_request("POST", "/call", chunks=chunks))
        resp = c.read_response()
    assert resp.status == 200, resp.body
    assert resp.body.decode() == SEED_ANSWER
    assert_health(srv.http_port)


# --------------------------------------------------------------------------- errors
def test_garbage_request_line(srv):
    with srv.http() as c:
        c.send(b"GARBAGE\r\n\r\n")
        resp = c.read_response()
        assert_json_error(resp, 400)
        assert c.closed_within(1.0), "connection not closed after a malformed request"
    assert_health(srv.http_port)


def test_oversized_headers_431(srv):
    filler = "".join(f"X-Filler-{i}: {'a' * 1000}\r\n" for i in range(20))
    data = f"GET /health HTTP/1.1\r\nHost: x\r\n{filler}\r\n".encode()
    assert len(data) > 16 * 1024
    with srv.http() as c:
        c.send_tolerant(data)
        resp = c.read_response()
        assert_json_error(resp, 431)
        assert c.closed_within(1.0)
    assert_health(srv.http_port)


def test_declared_body_over_limit_413(srv):
    head = (f"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {65536 + 1}\r\n\r\n").encode()
    with srv.http() as c:
        c.send(head)  # the body is never sent: the answer must come from the header alone
        resp = c.read_response(timeout=3.0)
        assert_json_error(resp, 413)
        assert c.closed_within(1.0)
    assert_health(srv.http_port)


def test_body_limit_is_exact(avr_server):
    srv = avr_server(STS_URL=STS, HTTP_MAX_BODY="4096")

    def body_of(size: int) -> bytes:
        base = {"uuid": str(uuidlib.uuid4()), "payload": {"pad": ""}}
        n = size - len(json.dumps(base, separators=(",", ":")))
        base["payload"]["pad"] = "p" * n
        out = json.dumps(base, separators=(",", ":")).encode()
        assert len(out) == size
        return out

    resp = request_once(srv.http_port, build_request("POST", "/call", body_of(4096)))
    assert resp.status == 200, resp.body
    with srv.http() as c:
        c.send_tolerant(build_request("POST", "/call", body_of(4097)))
        assert_json_error(c.read_response(), 413)
    assert_health(srv.http_port)


def test_chunked_body_growing_over_limit_413(avr_server):
    srv = avr_server(STS_URL=STS, HTTP_MAX_BODY="4096")
    with srv.http() as c:
        c.send(b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # 6 KiB in 1 KiB chunks, never terminated
            if not c.send_tolerant(b"400\r\n" + b"a" * 1024 + b"\r\n"):
                break
        resp = c.read_response(timeout=3.0)
        assert_json_error(resp, 413)
        assert c.closed_within(1.0)
    assert_health(srv.http_port)


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/call", "POST"),
    ("PUT", "/call", "POST"),
    ("DELETE", "/health", "GET"),
    ("POST", "/health", "GET"),
])
def test_wrong_method_405(srv, method, path, allowed):
    body = "{}" if method in ("PUT", "POST") else None
    resp = request_once(srv.http_port, build_request(method, path, body))
    assert_json_error(resp, 405)
    allow = resp.header("Allow")
    assert allow is not None, "405 without an Allow header"
    assert allowed in [m.strip() for m in allow.split(",")], allow
    assert_health(srv.http_port)


@pytest.mark.parametrize("path", ["/", "/calls", "/call/x", "/healthz", "/nope?x=1"])
def test_unknown_path_404(srv, path):
    assert_json_error(request_once(srv.http_port, build_request("GET", path)), 404)
    assert_health(srv.http_port)


def test_query_string_on_known_path_is_fine(srv):
    resp = request_once(srv.http_port, build_request("GET", "/health?probe=1"))
    assert resp.status == 200


@pytest.mark.parametrize("body", [
    "{", "not json", '{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","payload":{"a":"b"}', "",
    '{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","payload":{"a":"b"}} trailing',
    "\xff\xfe",
])
def test_invalid_json_400(srv, body):
    data = body.encode("latin-1") if body == "\xff\xfe" else body.encode()
    resp = request_once(srv.http_port, build_request("POST", "/call", data))
    assert_json_error(resp, 400)
    assert_health(srv.http_port)


@pytest.mark.parametrize("doc,field", [
    ({"payload": {"from": "2000"}}, "uuid"),
    ({"uuid": "not-a-uuid", "payload": {}}, "uuid"),
    ({"uuid": "935652e3-7c59-4edc-b17f-9646a9c2a26", "payload": {}}, "uuid"),   # one digit short
    ({"uuid": "935652e3-7c59-4edc-b17f-9646a9c2a26z", "payload": {}}, "uuid"),  # not hex
    ({"uuid": "935652e37c594edcb17f9646a9c2a265", "payload": {}}, "uuid"),      # no dashes
    ({"uuid": 12, "payload": {}}, "uuid"),
    ({"uuid": SEED_UUID}, "payload"),
    ({"uuid": SEED_UUID, "payload": "x"}, "payload"),
    ({"uuid": SEED_UUID, "payload": [1, 2]}, "payload"),
    ({"uuid": SEED_UUID, "payload": None}, "payload"),
])
def test_bad_fields_400_naming_the_field(srv, doc, field):
    resp = request_once(srv.http_port, build_request("POST", "/call", json.dumps(doc)))
    assert_json_error(resp, 400, mentions=field)
    assert_health(srv.http_port)


def test_top_level_not_an_object_400(srv):
    resp = request_once(srv.http_port, build_request("POST", "/call", "[1,2,3]"))
    assert_json_error(resp, 400)
    assert_health(srv.http_port)


def test_error_keeps_connection_usable_or_closes_cleanly(srv):
    """After a 404 the connection either stays usable or is closed: never a hang."""
    with srv.http() as c:
        c.send(build_request("GET", "/nope"))
        assert_json_error(c.read_response(), 404)
        try:
            c.send(build_request("GET", "/health"))
            resp = c.read_response()
            assert resp.status == 200
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
            pass


def test_half_request_gets_408(avr_server):
    srv = avr_server(STS_URL=STS, HTTP_HEADER_TIMEOUT="500")
    with srv.http() as c:
        t0 = time.monotonic()
        c.send(b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        resp = c.read_response(timeout=3.0)
        took = time.monotonic() - t0
        assert_json_error(resp, 408)
        assert 0.4 <= took <= 1.5, f"408 after {took:.3f}s with HTTP_HEADER_TIMEOUT=500ms"
        assert c.closed_within(1.0)
    assert_health(srv.http_port)


def test_half_body_gets_408(avr_server):
    srv = avr_server(STS_URL=STS, HTTP_HEADER_TIMEOUT="500")
    with srv.http() as c:
        t0 = time.monotonic()
        c.send(b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 100\r\n\r\n{\"uuid\":")
        resp = c.read_response(timeout=3.0)
        took = time.monotonic() - t0
        assert_json_error(resp, 408)
        assert 0.4 <= took <= 1.5, f"408 after {took:.3f}s"
        assert c.closed_within(1.0)
    assert_health(srv.http_port)


def test_slow_client_does_not_block_others(avr_server):
    srv = avr_server(STS_URL=STS, HTTP_HEADER_TIMEOUT="2000")
    slow = srv.http()
    slow.send(b"POST /call HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    for _ in range(5):
        assert_health(srv.http_port)
    assert time.monotonic() - t0 < 1.0
    slow.close()


# --------------------------------------------------------------------------- lingering close
# The server's drain bounds after a response that ends the connection (docs/ARCHITECTURE.md,
# "Decisions"): 5 s in all, 2 s without input, 64 MiB discarded.
MIB = 1024 * 1024
LINGER_TOTAL_S = 5.0
LINGER_IDLE_S = 2.0
LINGER_MAX_BYTES = 64 * MIB
EIGHT_MIB = 8 * MIB


def _big_headers(extra: str = "") -> bytes:
    filler = "".join(f"X-Filler-{i}: {'a' * 1000}\r\n" for i in range(20))
    return f"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{filler}{extra}\r\n".encode()


def _declared(length: int) -> bytes:
    return (f"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _chunked(total: int, size: int = 64 * 1024) -> bytes:
    head = b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = f"{size:x}\r\n".encode() + b"a" * size + b"\r\n"
    return head + chunk * (total // size)


def _write_everything_then_read(c: RawHttp, data: bytes, send_timeout: float = 20.0):
    """What a naive client does: write every byte, only then read. Returns (send error, response
    or the read error)."""
    c.sock.settimeout(send_timeout)  # for sendall: the bound on the whole write
    try:
        c.sock.sendall(data)
        send_error = None
    except OSError as exc:
        send_error = exc
    try:
        resp = c.read_response(timeout=5.0)
    except (ConnectionClosed, TimeoutError, OSError) as exc:
        resp = exc
    return send_error, resp


@pytest.mark.parametrize("case", ["413-content-length", "413-chunked", "400-malformed", "431-headers",
                                  "200-connection-close-then-more"])
def test_client_writing_whole_body_before_reading_gets_the_response(srv, case):
    """An early answer (the server closes after it) must survive a client that is still
    sending: 8 MiB after the point where the server decided, all written before any read."""
    junk = b"x" * EIGHT_MIB
    data, status = {
        "413-content-length": (_declared(EIGHT_MIB) + junk, 413),
        "413-chunked": (_chunked(EIGHT_MIB), 413),
        "400-malformed": (b"GARBAGE\r\n\r\n" + junk, 400),
        "431-headers": (_big_headers(f"Content-Length: {EIGHT_MIB}\r\n") + junk, 431),
        "200-connection-close-then-more": (build_request("GET", "/health", headers=[("Connection", "close")]) + junk,
                                           200),
    }[case]
    with srv.http() as c:
        send_error, resp = _write_everything_then_read(c, data)
        assert send_error is None and isinstance(resp, Response), \
            f"client saw: while writing {send_error!r}; then reading {resp!r}"
        if status == 200:
            assert resp.json() == {"status": "ok"}
        else:
            assert_json_error(resp, status)
        assert c.closed_within(2.0), "no EOF after the response"
    assert_health(srv.http_port)


def test_408_readable_while_body_still_arriving(avr_server):
    # The body is allowed (HTTP_MAX_BODY 16 MiB) but too slow: 408, not 413.
    srv = avr_server(STS_URL=STS, HTTP_HEADER_TIMEOUT="500", HTTP_MAX_BODY=str(2 * EIGHT_MIB))
    with srv.http() as c:
        c.send(_declared(EIGHT_MIB) + b"x" * 1024)
        # The request timer fires while the body is incomplete: wait until the 408 is there,
        # without reading it, then write the rest of the body, then read.
        readable, _, _ = select.select([c.sock], [], [], 3.0)
        assert readable, "no 408 within 3 s with HTTP_HEADER_TIMEOUT=500"
        send_error, resp = _write_everything_then_read(c, b"x" * (EIGHT_MIB - 1024))
        assert send_error is None and isinstance(resp, Response), \
            f"client saw: while writing {send_error!r}; then reading {resp!r}"
        assert_json_error(resp, 408)
        assert c.closed_within(2.0)
    assert_health(srv.http_port)


def test_pipelined_request_then_malformed_one(srv):
    """A good request and a bad one in one segment: the first is answered, the second gets
    400, and the server lives on."""
    with srv.http() as c:
        c.send(build_request("GET", "/health") + b"GARBAGE\r\n\r\n" + b"x" * MIB)
        assert c.read_response().status == 200
        assert_json_error(c.read_response(), 400)
        assert c.closed_within(2.0)
    assert srv.alive()
    assert_health(srv.http_port)


def _trickle(sock: socket.socket, stop: threading.Event, outcome: dict, chunk: int = 16 * 1024,
             every: float = 0.02) -> None:
    """Keep sending `chunk` bytes every `every` s until told to stop or the server resets."""
    data = b"x" * chunk
    sent = 0
    try:
        while not stop.is_set():
            sock.sendall(data)
            sent += chunk
            stop.wait(every)
    except OSError as exc:
        outcome["error"] = exc
        outcome["at"] = time.monotonic()
    outcome["sent"] = sent


def test_linger_ends_at_the_time_bound_and_others_are_served(srv):
    """A client that keeps sending slowly (below the byte bound, never idle) and never closes:
    it reads its 413 and then EOF at once (half-close) while the server keeps draining; the
    server closes at the total bound; /health answers meanwhile."""
    with srv.http(timeout=10.0) as c:
        c.send(_declared(1024 * MIB))
        resp = c.read_response(timeout=3.0)  # the 413 comes from the headers alone
        answered = time.monotonic()
        assert_json_error(resp, 413)
        # No socket timeouts change from here on: the sender thread owns the socket's sends.
        stop, outcome = threading.Event(), {}
        sender = threading.Thread(target=_trickle, args=(c.sock, stop, outcome), daemon=True)
        sender.start()
        try:
            readable, _, _ = select.select([c.sock], [], [], 2.0)
            assert readable and c.sock.recv(1, socket.MSG_DONTWAIT) == b"", "no EOF after the 413 (no half-close)"
            for _ in range(5):
                t0 = time.monotonic()
                assert_health(srv.http_port)
                assert time.monotonic() - t0 < 1.0
            assert "error" not in outcome, \
                f"server stopped reading {outcome.get('at', 0) - answered:.2f} s after the 413: {outcome}"
            sender.join(timeout=LINGER_TOTAL_S + 5.0)
            assert "error" in outcome, f"server still reading {LINGER_TOTAL_S + 5.0:g} s after the 413"
        finally:
            stop.set()
            sender.join(timeout=2.0)
    took = outcome["at"] - answered
    assert LINGER_TOTAL_S - 1.0 <= took <= LINGER_TOTAL_S + 2.0, f"closed {took:.2f} s after the 413"
    assert outcome["sent"] < LINGER_MAX_BYTES  # the time bound ended it, not the byte bound
    assert_health(srv.http_port)


def test_linger_ends_at_the_byte_bound_without_buffering(srv):
    """A client sending as fast as it can: the server discards up to the byte bound and then
    closes; the discarded input is not kept (RSS does not grow by anything like it)."""
    rss_before = srv.rss_kib()
    with srv.http(timeout=10.0) as c:
        c.send(_declared(1024 * MIB))
        assert_json_error(c.read_response(timeout=3.0), 413)
        c.sock.settimeout(LINGER_TOTAL_S + 5.0)
        chunk = b"x" * MIB
        sent, error = 0, None
        t0 = time.monotonic()
        while sent < 4 * LINGER_MAX_BYTES:
            try:
                c.sock.sendall(chunk)
            except OSError as exc:
                error = exc
                break
            sent += len(chunk)
        took = time.monotonic() - t0
    assert error is not None, f"server read {sent // MIB} MiB of a body it had refused"
    # What the client wrote is what the server read plus what sat in kernel buffers.
    assert LINGER_MAX_BYTES - MIB <= sent <= LINGER_MAX_BYTES + 24 * MIB, \
        f"server closed after {sent // MIB} MiB ({took:.2f} s, {error!r})"
    grown = srv.rss_kib() - rss_before
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB while discarding {sent // MIB} MiB"
    assert_health(srv.http_port)


def test_linger_ends_when_the_client_goes_quiet(avr_server):
    """A client that sends part of a refused body and then neither sends nor closes: the server
    closes after the idle bound, well before the total one."""
    srv = avr_server(STS_URL=STS, LOG_LEVEL="debug")
    with srv.http() as c:
        start = len(srv.lines)
        c.send(_declared(EIGHT_MIB) + b"x" * MIB)
        assert_json_error(c.read_response(timeout=3.0), 413)
        answered = time.monotonic()
        srv.wait_for_log(r"lingering close of .* ended \(idle\)", timeout=LINGER_TOTAL_S + 2.0, start=start)
        took = time.monotonic() - answered
        assert LINGER_IDLE_S - 0.5 <= took <= LINGER_IDLE_S + 1.5, f"closed {took:.2f} s after the 413"
        # Closed for real: the server's kernel now answers data with a reset.
        deadline = time.monotonic() + 2.0
        with pytest.raises(OSError):
            while time.monotonic() < deadline:
                c.sock.send(b"x")
                select.select([], [], [], 0.02)
    assert_health(srv.http_port)


# --------------------------------------------------------------------------- registry bound
def test_pending_call_registry_is_bounded(avr_server):
    srv = avr_server(STS_URL=STS, MAX_PENDING_CALLS="3")
    for _ in range(3):
        assert request_once(srv.http_port, call_request(str(uuidlib.uuid4()))).status == 200
    resp = request_once(srv.http_port, call_request(str(uuidlib.uuid4())))
    assert_json_error(resp, 503)
    assert_health(srv.http_port)


# --------------------------------------------------------------------------- config errors
@pytest.mark.parametrize("name,value", [
    ("PORT", "70000"),
    ("PORT", "abc"),
    ("PORT", "0"),
    ("HTTP_PORT", "70000"),
    ("STS_URL", "ftp://x"),
    ("WEBHOOK_URL", "ftp://x"),
    ("WEBHOOK_TIMEOUT", "abc"),
    ("AMBIENT_NOISE_FILE", "/nonexistent"),
])
def test_config_error_exits_with_one_clear_line(name, value):
    env = {"PORT": "5999", "HTTP_PORT": "6999"}  # never reached: the bad value stops start-up
    env[name] = value
    code, lines = run_config_error(env)
    assert code != 0, f"{name}={value}: exit code 0; output {lines!r}"
    naming = [l for l in lines if name in l]
    assert naming, f"no line names {name}: {lines!r}"
    assert any(value in l for l in naming), f"no line shows the value {value!r}: {lines!r}"
    assert not any("listening on port" in l for l in lines), lines


# --------------------------------------------------------------------------- memory
def _pipelined_calls(conns: list[RawHttp], ids: list[str], note: str) -> tuple[dict[int, int], list[str]]:
    """Send one /call per id, round-robin over keep-alive connections, pipelined in batches.
    Returns a status histogram and the ids refused with 503 (to retry)."""
    hist: dict[int, int] = {}
    refused: list[str] = []
    batch = 50
    for start in range(0, len(ids), batch * len(conns)):
        sent: list[tuple[RawHttp, list[str]]] = []
        for k, c in enumerate(conns):
            part = ids[start + k * batch:start + (k + 1) * batch]
            if not part:
                continue
            c.send(b"".join(call_request(u, {"from": "2000", "to": "5001", "note": note}) for u in part))
            sent.append((c, part))
        for c, part in sent:
            for u in part:
                r = c.read_response(timeout=10.0)
                hist[r.status] = hist.get(r.status, 0) + 1
                if r.status == 503:
                    refused.append(u)
    return hist, refused


def test_call_metadata_expires_and_memory_stays_flat(avr_server):
    """10,000 distinct /call with CALL_METADATA_TTL=1 and MAX_PENDING_CALLS=2000: the registry
    must free entries (otherwise the cap refuses calls forever) and RSS must not grow with the
    number of calls. Baseline: RSS when the first 2,000 are live (the registry's high water)."""
    srv = avr_server(STS_URL=STS, CALL_METADATA_TTL="1", MAX_PENDING_CALLS="2000")
    note = "n" * 512  # ~1 KiB per entry (payload + URL): a leak of 8,000 entries is > 8 MiB
    conns = [srv.http(timeout=10.0) for _ in range(4)]
    todo = [str(uuidlib.uuid4()) for _ in range(10_000)]
    done = 0
    rss = {"start": srv.rss_kib()}
    deadline = time.monotonic() + 40.0
    batch_size = 1000
    while todo:
        chunk, todo = todo[:batch_size], todo[batch_size:]
        hist, refused = _pipelined_calls(conns, chunk, note)
        assert set(hist) <= {200, 503}, hist
        done += len(chunk) - len(refused)
        if done >= 1000 and "after_1000" not in rss:
            rss["after_1000"] = srv.rss_kib()
        if done >= 2000 and "after_2000" not in rss:
            rss["after_2000"] = srv.rss_kib()
        if refused:
            # The registry is full: wait (deadline) until expiry frees a slot for the first one.
            probe = refused.pop(0)
            while request_once(srv.http_port, call_request(
                    probe, {"from": "2000", "to": "5001", "note": note})).status != 200:
                assert time.monotonic() < deadline, f"only {done} of 10000 accepted: metadata never expires?"
                time.sleep(0.05)
            done += 1
            todo = refused + todo
    rss["after_10000"] = srv.rss_kib()
    # Wait >= 2 s (2 x TTL) for expiry, sampling RSS on the way (the deadline is the wait).
    t_end = time.monotonic() + 2.2
    samples = []
    while time.monotonic() < t_end:
        samples.append(srv.rss_kib())
        time.sleep(0.1)
    rss["after_expiry"] = srv.rss_kib()
    rss["max_during_wait"] = max(samples)
    # Expired for real: a full registry's worth of new calls is accepted again.
    hist, refused = _pipelined_calls(conns, [str(uuidlib.uuid4()) for _ in range(2000)], note)
    assert hist == {200: 2000}, f"after expiry, 2000 new calls got {hist}"
    rss["after_refill"] = srv.rss_kib()
    for c in conns:
        c.close()
    growth = rss["after_refill"] - rss["after_2000"]
    print("RSS KiB:", json.dumps(rss), "growth vs first 2000:", growth)
    bound = 4096
    assert growth <= bound, f"RSS grew {growth} KiB (> {bound} KiB) over 10,000 expiring calls: {rss}"
    assert_health(srv.http_port)
