"""Issue 9: TLS for every outbound connection (wss:// STS, https:// streaming STS and
webhooks), against real TLS peers with certificates made at test time (tls_certs.py).

Verification is always on: avr-core trusts the system store plus TLS_CA_FILE (the test CA).
Each failure ends the call cleanly (Asterisk gets 0x00) with one log line naming the URL
and OpenSSL's reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import ssl
import threading
import time
import uuid as uuidlib

import pytest

from asterisk_sim import KIND_SLIN
from audio import is_silence, marked_frame, pattern_pcm, sine_frame
from conftest import started_peers
from helpers import SEED_QUERY, assert_health, call_request, free_port, request_once
from sts_http_stream import HttpStreamSts
from metrics_scrape import value
from tls_certs import TestCertificates
from webhook_receiver import event_type_of, sts_url_reply


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return TestCertificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def http_sts():
    yield from started_peers(HttpStreamSts)


def agent_audio(call) -> bytes:
    return b"".join(p for _, p in call.audio_frames() if not is_silence(p))


def echo_round_trip(call, sts, frames: int = 50, timeout: float = 5.0) -> None:
    """The caller's audio comes back byte for byte and reached the STS byte for byte."""
    sent = b"".join(marked_frame(1, k) for k in range(frames))
    call.send_audio(sent)
    call.wait_for(lambda: len(agent_audio(call)) >= len(sent), timeout, f"the echo of {frames} frames")
    assert agent_audio(call) == sent, "caller did not hear its own audio back byte for byte"
    conn = sts.wait_conn()
    sts.wait(lambda _: len(sts.audio_in(conn)) >= len(sent), timeout, "all caller audio at the STS")
    assert sts.audio_in(conn) == sent, "STS did not receive the caller audio byte for byte"
    assert call.audio_kinds() == {KIND_SLIN}


# --------------------------------------------------------------------------- wss:// STS
@pytest.mark.parametrize("impl", ["node", "python"])
def test_wss_echo_is_byte_exact_both_ways(avr, sts_peer, calls, certs, impl):
    sts = sts_peer(impl, "echo", tls=certs.good)
    assert sts.url.startswith("wss://127.0.0.1:")
    srv = avr(STS_URL=sts.url, TLS_CA_FILE=certs.ca)
    call = calls(srv)
    echo_round_trip(call, sts)
    srv.wait_for_log(r"Connecting to STS WebSocket: wss://127\.0\.0\.1:")
    call.hangup()
    # The close handshake still runs inside TLS: the STS sees a close frame from us.
    sts.wait(lambda recs: any(r["event"] in ("close", "closed") for r in recs), 5.0, "the STS to see the close")
    srv.wait_for_log(r"Call ended: ")


def test_without_tls_ca_file_the_test_ca_is_not_trusted(avr, sts_peer, calls, certs):
    """Verification is on by default: the system store alone does not know the test CA."""
    sts = sts_peer("python", "echo", tls=certs.good)
    srv = avr(STS_URL=sts.url)
    call = calls(srv)
    call.wait_ended(timeout=5.0)
    srv.wait_for_log(r"^\[ERROR\]: .*STS connection failed: .*" + re.escape(sts.url)
                     + r".*certificate verify failed: (unable to get local issuer certificate|self-signed)")
    assert call.hangup_at is not None, "Asterisk was not told to hang up (0x00)"
    assert sts.conns() == [], "a WebSocket was opened over an unverified connection"


def test_unreadable_tls_ca_file_stops_the_server_with_one_line(certs, tmp_path):
    from conftest import run_config_error

    bad = tmp_path / "not-a-bundle.pem"
    bad.write_text("this is no certificate\n")
    code, lines = run_config_error({"TLS_CA_FILE": str(bad), "PORT": str(free_port())})
    assert code != 0
    assert any("TLS" in l and str(bad) in l for l in lines), lines
    code, lines = run_config_error({"TLS_CA_FILE": "/nonexistent/ca.pem"})
    assert code != 0 and any('TLS_CA_FILE: "/nonexistent/ca.pem" does not exist' in l for l in lines), lines


def test_second_call_resumes_the_tls_session(avr, sts_peer, calls, certs):
    for version in ("1.3", "1.2"):
        sts = sts_peer("python", "echo", tls=certs.good, tls_max="1.2" if version == "1.2" else None)
        srv = avr(STS_URL=sts.url, TLS_CA_FILE=certs.ca)
        for index in range(3):
            call = calls(srv)
            call.send_audio(marked_frame(1, 0))
            call.wait_for(lambda: len(agent_audio(call)) >= 320, 5.0, "the echo")
            call.hangup()
            sts.wait_conn(index)
        connections = [r for r in sts.records() if r["event"] == "connection"]
        seen = [(c["tls"]["version"], c["tls"]["resumed"]) for c in connections]
        want_version = "TLSv1.2" if version == "1.2" else "TLSv1.3"
        assert seen == [(want_version, False), (want_version, True), (want_version, True)], \
            f"TLS {version}: (version, resumed) per call: {seen}"
        # And /metrics says the same.
        handshakes = {r: value(srv.http_port, "avr_tls_handshakes_total", result=r) for r in ("full", "resumed", "failed")}
        assert handshakes == {"full": 1, "resumed": 2, "failed": 0}, f"TLS {version}: {handshakes}"



def test_resuming_a_tls_1_2_session_offers_1_3_again_once_the_server_refuses_it(avr, sts_peer, calls, certs):
    """A saved TLS 1.2 session is resumed offering TLS 1.2 only (no TLS 1.3 key share to
    pay for); when the server (here a new one on the same port, TLS 1.3 capable) does not
    resume it, that call completes in TLS 1.2 and the next one is back on TLS 1.3."""
    old = sts_peer("python", "echo", tls=certs.good, tls_max="1.2")
    srv = avr(STS_URL=old.url, TLS_CA_FILE=certs.ca)

    def one_call(sts, index):
        call = calls(srv)
        call.send_audio(marked_frame(1, 0))
        call.wait_for(lambda: len(agent_audio(call)) >= 320, 5.0, "the echo")
        call.hangup()
        sts.wait_conn(index)

    for index in range(2):
        one_call(old, index)
    old.stop()
    new = sts_peer("python", "echo", tls=certs.good, port=old.port)
    for index in range(3):
        one_call(new, index)
    seen = [[(c["tls"]["version"], c["tls"]["resumed"]) for c in sts.records() if c["event"] == "connection"]
            for sts in (old, new)]
    assert seen == [[("TLSv1.2", False), ("TLSv1.2", True)],
                    [("TLSv1.2", False), ("TLSv1.3", False), ("TLSv1.3", True)]], seen

# --------------------------------------------------------------------------- failures
@pytest.mark.parametrize("which,reason", [
    ("untrusted", "certificate verify failed: unable to get local issuer certificate"),
    ("expired", "certificate verify failed: certificate has expired"),
    ("wrong_host", "certificate verify failed: IP address mismatch"),
])
def test_bad_certificate_ends_the_call_with_one_line(avr, sts_peer, calls, webhook_receiver, certs, which, reason):
    sts = sts_peer("python", "echo", tls=getattr(certs, which))
    hooks = webhook_receiver()
    srv = avr(STS_URL=sts.url, TLS_CA_FILE=certs.ca, WEBHOOK_URL=hooks.url)
    call = calls(srv)
    call.wait_ended(timeout=5.0)
    assert call.hangup_at is not None, "Asterisk was not told to hang up (0x00)"
    srv.wait_for_log(r"^\[ERROR\]: .*STS connection failed: .*" + re.escape(sts.url) + ".*" + re.escape(reason) + "$")
    hooks.wait_for_events("call_ended")
    # One error line (the "Call ended: ..." info line repeats the reason as the end reason).
    assert len([l for l in srv.lines if "certificate verify failed" in l and l.startswith("[ERROR]")]) == 1, \
        srv.lines[-10:]
    assert sts.conns() == []
    assert_health(srv.http_port)
    assert value(srv.http_port, "avr_tls_handshakes_total", result="failed") == 1
    assert value(srv.http_port, "avr_tls_handshakes_total", result="full") == 0


def test_host_name_is_checked_against_the_certificate(avr, calls, certs):
    """wss://localhost with a certificate for sts.example.com: SNI names localhost, and the
    name check fails."""
    names = []
    context = certs.server_context("wrong_host")
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = TlsRawServer(context, behaviour="handshake_then_hold")
    try:
        url = f"wss://localhost:{server.port}/"
        srv = avr(STS_URL=url, TLS_CA_FILE=certs.ca)
        call = calls(srv)
        call.wait_ended(timeout=5.0)
        srv.wait_for_log(r"STS connection failed: .*" + re.escape(url) + r".*certificate verify failed: hostname mismatch")
        assert names == ["localhost"], f"SNI seen by the server: {names}"
    finally:
        server.stop()


class TlsRawServer:
    """A TCP server on 127.0.0.1 with one of a few misbehaviours, each in a thread:
    silent (accepts, never answers the ClientHello), hangup (reads the ClientHello, closes),
    handshake_then_hold, ws_then_truncate / ws_then_close_notify (a WebSocket upgrade over
    TLS, one audio message, then the TCP connection closes without / after close_notify)."""

    def __init__(self, context: ssl.SSLContext | None, behaviour: str):
        self.context, self.behaviour = context, behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.events: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        try:
            conn.settimeout(10)
            if self.behaviour == "silent":
                return
            if self.behaviour == "hangup":
                conn.recv(100)
                self.events.append("client hello")
                conn.close()
                return
            tls = self.context.wrap_socket(conn, server_side=True)
            self.conns.append(tls)
            self.events.append("handshake")
            if self.behaviour == "handshake_then_hold":
                return
            head = b""
            while b"\r\n\r\n" not in head:
                data = tls.recv(4096)
                if not data:
                    return
                head += data
            key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID.encode()).digest())
            tls.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            payload = b'{"type":"audio","audio":"' + base64.b64encode(pattern_pcm(320)) + b'"}'
            tls.sendall(bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload)
            self.events.append("upgraded")
            time.sleep(0.2)
            if self.behaviour == "ws_then_close_notify":
                raw = tls.unwrap()   # sends close_notify
                raw.close()
            else:
                # End the TCP stream under TLS (FIN, no close_notify), then drain what the
                # client still sends so that closing does not turn into a reset.
                raw = socket.socket(fileno=tls.detach())
                raw.shutdown(socket.SHUT_WR)
                while raw.recv(65536):
                    pass
                raw.close()
            self.events.append("closed")
        except (OSError, ssl.SSLError) as error:
            self.events.append(f"error: {error}")

    def stop(self):
        for c in [self.sock, *self.conns]:
            try:
                c.close()
            except OSError:
                pass


def test_server_that_never_answers_the_client_hello_times_out(avr, calls, certs):
    server = TlsRawServer(None, "silent")
    try:
        url = f"wss://127.0.0.1:{server.port}/"
        srv = avr(STS_URL=url, TLS_CA_FILE=certs.ca, STS_CONNECT_TIMEOUT="500")
        call = calls(srv)
        ended = call.wait_ended(timeout=5.0)
        took = ended - call.connected_at
        assert 0.3 <= took < 3.0, f"call ended after {took:.2f}s with STS_CONNECT_TIMEOUT=500"
        srv.wait_for_log(r"STS connection failed: .*" + re.escape(url) + r".*no connection within 500 ms")
        assert call.hangup_at is not None
    finally:
        server.stop()


def test_server_closing_mid_handshake_ends_the_call(avr, calls, certs):
    server = TlsRawServer(None, "hangup")
    try:
        url = f"wss://127.0.0.1:{server.port}/"
        srv = avr(STS_URL=url, TLS_CA_FILE=certs.ca)
        call = calls(srv)
        call.wait_ended(timeout=5.0)
        srv.wait_for_log(r"STS connection failed: .*" + re.escape(url)
                         + r".*TLS handshake failed: connection (closed|failed) during the TLS handshake")
        assert server.events[:1] == ["client hello"]
        assert call.hangup_at is not None
    finally:
        server.stop()


@pytest.mark.parametrize("behaviour", ["ws_then_truncate", "ws_then_close_notify"])
def test_truncated_stream_is_an_error_close_notify_is_not(avr, calls, certs, behaviour):
    server = TlsRawServer(certs.server_context("good"), behaviour)
    try:
        url = f"wss://127.0.0.1:{server.port}/"
        srv = avr(STS_URL=url, TLS_CA_FILE=certs.ca)
        call = calls(srv)
        call.wait_ended(timeout=5.0)
        assert "upgraded" in server.events, server.events
        call.wait_for(lambda: len(agent_audio(call)) >= 320, 3.0, "the STS audio played before the end")
        if behaviour == "ws_then_truncate":
            srv.wait_for_log(r"^\[ERROR\]: .*STS connection failed: .*connection closed without close_notify")
        else:
            srv.wait_for_log(r"^\[INFO\]: .*STS closed the connection without a close frame")
            assert not any("close_notify" in l for l in srv.lines), srv.lines[-10:]
    finally:
        server.stop()


# --------------------------------------------------------------------------- records split everywhere
class ByteRelay:
    """Forwards TCP between avr-core and a TLS server one byte per send (TCP_NODELAY), so
    TLS records and their headers arrive split at every position."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.relayed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            for s in (a, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.socks.append(s)
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                for i in range(len(data)):
                    dst.sendall(data[i:i + 1])
                self.relayed += len(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        for s in [self.sock, *self.socks]:
            try:
                s.close()
            except OSError:
                pass


def test_records_split_at_every_byte(avr, sts_peer, calls, certs):
    sts = sts_peer("node", "echo", tls=certs.good)
    relay = ByteRelay(sts.port)
    try:
        srv = avr(STS_URL=f"wss://127.0.0.1:{relay.port}/", TLS_CA_FILE=certs.ca)
        call = calls(srv)
        echo_round_trip(call, sts, frames=25, timeout=10.0)
        assert relay.relayed > 25 * 320 * 2
    finally:
        relay.stop()


# --------------------------------------------------------------------------- https:// streaming STS
def test_https_streaming_sts_is_byte_exact_both_ways(avr, http_sts, calls, certs):
    reply = pattern_pcm(8_000)
    sts = http_sts(reply=reply, write_size=333, ssl_context=certs.server_context("good"))
    assert sts.url.startswith("https://")
    srv = avr(STS_URL=sts.url, TLS_CA_FILE=certs.ca)
    call = calls(srv)
    sent = b"".join(sine_frame(k) for k in range(50))
    call.start_streaming(sine_frame, count=50)
    req = sts.wait_request()
    assert req["method"] == "POST" and req["path"] == "/stream"
    got = sts.wait_body(req, len(sent), timeout=5.0)
    assert got == sent, "caller audio not byte-exact at the HTTPS STS"
    want = reply + b"\x00" * (-len(reply) % 320)
    call.wait_for(lambda: len(agent_audio(call)) >= len(want), 5.0, "the STS answer played back")
    assert agent_audio(call) == want
    call.hangup()
    assert sts.wait_ended(req, timeout=3.0) == "eof", f"request body did not end cleanly: {req['ended']}"


def test_https_streaming_sts_with_untrusted_certificate_ends_the_call(avr, http_sts, calls, certs):
    sts = http_sts(reply=b"", ssl_context=certs.server_context("untrusted"))
    srv = avr(STS_URL=sts.url, TLS_CA_FILE=certs.ca)
    call = calls(srv)
    call.wait_ended(timeout=5.0)
    srv.wait_for_log(r"^\[ERROR\]: .*STS connection failed: STS HTTP " + re.escape(sts.url)
                     + r": TLS handshake failed: certificate verify failed")
    assert sts.requests == []


# --------------------------------------------------------------------------- https:// webhooks
def test_https_webhooks_and_override_to_wss(avr, webhook_receiver, sts_peer, calls, certs):
    sts = sts_peer("node", "echo", tls=certs.good)
    hooks = webhook_receiver(ssl_context=certs.server_context("good"))
    assert hooks.url.startswith("https://")
    uuid = str(uuidlib.uuid4())
    chosen = f"wss://127.0.0.1:{sts.port}/x"
    hooks.respond("call_initiated", sts_url_reply(chosen))
    # STS_URL points nowhere: only the wss:// override can reach the STS.
    srv = avr(STS_URL=f"ws://127.0.0.1:{free_port()}/default", WEBHOOK_URL=hooks.url, TLS_CA_FILE=certs.ca)
    resp = request_once(srv.http_port, call_request(uuid), timeout=10.0)
    assert resp.status == 200 and resp.json() == {"sts_url": f"{chosen}?{SEED_QUERY}", "override": True}, resp.body
    call = calls(srv, uuid)
    echo_round_trip(call, sts, frames=10)
    call.hangup()
    hooks.wait_for_events("call_ended", timeout=5.0)
    types = [event_type_of(r) for r in hooks.events()]
    assert types == ["call_initiated", "call_started", "call_ended"], types
    ports = {r["peer_port"] for r in hooks.events()}
    assert len(ports) == 1, f"webhooks came over {len(ports)} TLS connections, not one kept alive: {ports}"


def test_https_webhook_to_an_untrusted_receiver_fails_with_one_line(avr, webhook_receiver, sts_peer, calls, certs):
    hooks = webhook_receiver(ssl_context=certs.server_context("untrusted"))
    srv = avr(WEBHOOK_URL=hooks.url, TLS_CA_FILE=certs.ca, WEBHOOK_TIMEOUT="2000")
    uuid = str(uuidlib.uuid4())
    resp = request_once(srv.http_port, call_request(uuid), timeout=10.0)
    assert resp.status == 200 and resp.json()["override"] is False
    srv.wait_for_log(r"^\[ERROR\]: Webhook call_initiated for .* to " + re.escape(hooks.url)
                     + r" failed after 1 attempt\(s\): TLS failed: certificate verify failed: "
                       r"unable to get local issuer certificate$")
    assert hooks.events() == []
