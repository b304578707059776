"""What an operator does to a server: pick the listen address (BIND_ADDRESS, IPv6), start it on
a port that is taken, check a configuration before rolling it out (--check-config), send it
SIGHUP, read its logs (URLs with credentials, JSON start-up errors) and scrape it (/ready's
route label, process_* and avr_build_info, judged by promtool).

Real sockets over IPv4 and IPv6 loopback, the real binary, a real Prometheus tool. Every wait
has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid as uuidlib

import pytest

from audio import sine_frame
from conftest import AVR_CORE_BIN, REPO, base_env, run_config_error, stop_server
from helpers import build_request, call_request, free_port, request_once, wait_until
from metrics_scrape import samples, scrape, value


def run_cli(*args, env=None, timeout=10):
    full = base_env()
    full.update(env or {})
    return subprocess.run([str(AVR_CORE_BIN), *args], env=full, capture_output=True, timeout=timeout, cwd=str(REPO))


def request_at(host: str, port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """One request with `Connection: close` to `host` (IPv4 or IPv6 literal); the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def holder(host: str = "0.0.0.0") -> socket.socket:
    """A listening socket of this test on a free port (another process holding it, as far as
    the server can tell)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    return sock


# ----------------------------------------------------------------- BIND_ADDRESS
def test_ipv6_loopback_serves_audiosocket_http_and_metrics_and_nothing_on_ipv4(avr_server, calls):
    metrics_port = free_port()
    srv = avr_server(BIND_ADDRESS="::1", METRICS_PORT=str(metrics_port))
    srv.wait_for_log(r"^\[INFO\]: Listeners bound to ::1 \(BIND_ADDRESS\)$")
    health = request_at("::1", srv.http_port, build_request("GET", "/health", headers=[("Connection", "close")]))
    assert health.startswith(b"HTTP/1.1 200") and health.endswith(b'{"status":"ok"}'), health
    metrics = request_at("::1", metrics_port, build_request("GET", "/metrics", headers=[("Connection", "close")]))
    assert metrics.startswith(b"HTTP/1.1 200") and b"avr_calls_active" in metrics
    # A call over IPv6: the built-in echo answers it.
    from asterisk_sim import AsteriskCall  # noqa: PLC0415
    call = AsteriskCall("::1", srv.audio_port).start()
    try:
        for i in range(10):
            call.send_frame(sine_frame(i))
        call.wait_frames(5)
        srv.wait_for_log(r"Call started from \[::1\]:\d+")
    finally:
        call.hangup()
    # Bound to ::1 only: IPv4 loopback is refused on every port.
    for port in (srv.audio_port, srv.http_port, metrics_port):
        assert refused("127.0.0.1", port), port


def test_dual_stack_any_address_accepts_ipv4_and_ipv6(avr_server):
    srv = avr_server(BIND_ADDRESS="::")
    for host in ("127.0.0.1", "::1"):
        answer = request_at(host, srv.http_port, build_request("GET", "/ready", headers=[("Connection", "close")]))
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ready"}'), (host, answer)


def test_ipv4_loopback_bind_is_not_reachable_over_ipv6(avr_server):
    srv = avr_server(BIND_ADDRESS="127.0.0.1")
    assert request_at("127.0.0.1", srv.http_port, build_request("GET", "/health", headers=[("Connection", "close")])) \
        .startswith(b"HTTP/1.1 200")
    assert refused("::1", srv.http_port)


def test_metrics_port_can_have_an_address_of_its_own(avr_server):
    metrics_port = free_port()
    srv = avr_server(BIND_ADDRESS="::1", METRICS_PORT=str(metrics_port), METRICS_BIND_ADDRESS="127.0.0.1")
    srv.wait_for_log(rf"AVR metrics on port {metrics_port} \(GET /metrics\), bound to 127\.0\.0\.1 \(METRICS_BIND_ADDRESS\)")
    assert request_at("127.0.0.1", metrics_port, build_request("GET", "/metrics", headers=[("Connection", "close")])) \
        .startswith(b"HTTP/1.1 200")
    assert refused("::1", metrics_port)
    assert refused("127.0.0.1", srv.http_port) and refused("127.0.0.1", srv.audio_port)


@pytest.mark.parametrize("value", ["localhost", "0.0.0.0:5001", "1.2.3.256", "fe80::1%eth0"])
def test_bind_address_that_is_not_a_literal_is_a_config_error(value):
    for variable in ("BIND_ADDRESS", "METRICS_BIND_ADDRESS"):
        code, lines = run_config_error({variable: value})
        assert code == 2 and len(lines) == 1, lines
        assert lines[0] == f'[ERROR]: {variable}: "{value}" is not a numeric IPv4 or IPv6 address ' \
                           "(e.g. 0.0.0.0, 127.0.0.1, ::, ::1)", lines


# ----------------------------------------------------------------- bind errors
@pytest.mark.parametrize("variable", ["PORT", "HTTP_PORT", "METRICS_PORT"])
def test_a_taken_port_is_named_with_its_variable_and_address(variable):
    taken = holder()
    port = taken.getsockname()[1]
    env = {"PORT": str(free_port()), "HTTP_PORT": str(free_port()), variable: str(port)}
    try:
        code, lines = run_config_error(env)
        expected = f"[ERROR]: Cannot listen on {variable}={port} (0.0.0.0): address already in use"
        assert code == 1 and expected in lines, lines
        # --check-config finds it too, with the same words (exit 2: the configuration cannot be used).
        check = run_cli("--check-config", env=env)
        assert check.returncode == 2 and check.stderr.decode() == expected + "\n", check
        # JSON logs: the same line as one object.
        code, lines = run_config_error({**env, "LOG_FORMAT": "json"})
        assert code == 1, lines
        objects = [json.loads(l) for l in lines]
        assert {"level": "error", "message": expected.removeprefix("[ERROR]: ")}.items() <= objects[-1].items(), objects
    finally:
        taken.close()


def test_a_taken_ipv6_port_names_the_ipv6_address():
    taken = holder("::1")
    port = taken.getsockname()[1]
    try:
        code, lines = run_config_error({"BIND_ADDRESS": "::1", "PORT": str(port), "HTTP_PORT": str(free_port())})
        assert code == 1 and f"[ERROR]: Cannot listen on PORT={port} (::1): address already in use" in lines, lines
    finally:
        taken.close()


def test_an_address_this_host_does_not_have_is_named():
    # TEST-NET-1 (RFC 5737): never configured on a test machine.
    env = {"BIND_ADDRESS": "192.0.2.1", "PORT": str(free_port()), "HTTP_PORT": str(free_port())}
    check = run_cli("--check-config", env=env)
    assert check.returncode == 2, check
    assert re.fullmatch(r"\[ERROR\]: Cannot listen on (PORT|HTTP_PORT)=\d+ \(192\.0\.2\.1\): "
                        r"address not available\n", check.stderr.decode()), check.stderr


# ----------------------------------------------------------------- --check-config
@pytest.mark.parametrize("env, message", [
    ({"PORT": "6001", "HTTP_PORT": "6001"}, 'HTTP_PORT: "6001" is also PORT: each listener needs a port of its own'),
    ({"HTTP_PORT": "6001", "METRICS_PORT": "6001"},
     'METRICS_PORT: "6001" is also HTTP_PORT: each listener needs a port of its own'),
    ({"METRICS_PORT": "5001"}, 'METRICS_PORT: "5001" is also PORT: each listener needs a port of its own'),
])
def test_check_config_refuses_one_port_for_two_listeners(env, message):
    check = run_cli("--check-config", env=env)
    assert check.returncode == 2 and check.stderr.decode() == f"[ERROR]: {message}\n", check
    # And the server refuses to start with it, with the same line.
    code, lines = run_config_error(env)
    assert code == 2 and lines == [f"[ERROR]: {message}"], lines


def test_check_config_binds_and_releases_the_ports():
    ports = {"PORT": free_port(), "HTTP_PORT": free_port(), "METRICS_PORT": free_port()}
    check = run_cli("--check-config", env={k: str(v) for k, v in ports.items()})
    assert check.returncode == 0 and check.stdout == b"configuration OK\n", check
    for port in ports.values():  # closed again at once
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))


def test_check_config_tells_a_missing_file_from_a_directory_and_an_empty_bundle(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cases = [
        (str(tmp_path / "nope.pem"), f'TLS_CA_FILE: "{tmp_path}/nope.pem" does not exist'),
        (str(tmp_path), f'TLS_CA_FILE: "{tmp_path}" is a directory, not a file'),
        (str(empty), f"Cannot start: TLS_CA_FILE holds no PEM certificate ({empty})"),
        (str(garbage), f"Cannot start: cannot read TLS_CA_FILE as PEM"),
    ]
    for path, message in cases:
        check = run_cli("--check-config", env={"TLS_CA_FILE": path})
        assert check.returncode == 2, (path, check)
        assert check.stderr.decode().startswith(f"[ERROR]: {message}") and check.stderr.count(b"\n") == 1, \
            (path, check.stderr)
        # Start-up says the same (and the directory no longer reads as "does not exist").
        code, lines = run_config_error({"TLS_CA_FILE": path})
        assert code in (1, 2) and any(l.startswith(f"[ERROR]: {message}") for l in lines), (path, lines)
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(system_bundle):
        assert run_cli("--check-config", env={"TLS_CA_FILE": system_bundle}).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run the binary as another user (setpriv)")
def test_check_config_tells_an_unreadable_file_from_a_missing_one(tmp_path):
    """As root every file is readable: the server runs as `nobody`, as in a container."""
    secret = tmp_path / "ca.pem"
    secret.write_bytes(open("/etc/ssl/certs/ca-certificates.crt", "rb").read()
                       if os.path.exists("/etc/ssl/certs/ca-certificates.crt") else b"x")
    os.chmod(secret, 0o600)
    os.chmod(tmp_path, 0o755)
    full = base_env()
    full["TLS_CA_FILE"] = str(secret)
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(AVR_CORE_BIN),
                           "--check-config"], env=full, capture_output=True, timeout=10)
    if b"Permission denied" in proc.stderr and b"setpriv" in proc.stderr:
        pytest.skip(f"the binary is not executable by nobody here: {proc.stderr!r}")
    assert proc.returncode == 2, proc
    assert proc.stderr.decode() == f'[ERROR]: TLS_CA_FILE: "{secret}" exists but cannot be read (permission denied)\n'


def test_start_up_errors_are_json_under_log_format_json():
    code, lines = run_config_error({"LOG_FORMAT": "json", "WEBHOOK_TIMEOUT": "soon"})
    assert code == 2 and len(lines) == 1, lines
    line = json.loads(lines[0])
    assert line["level"] == "error" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
    assert line["message"].startswith('WEBHOOK_TIMEOUT: "soon" is not a whole number'), line
    check = run_cli("--check-config", env={"LOG_FORMAT": "JSON", "PORT": "7001", "HTTP_PORT": "7001"})
    assert check.returncode == 2 and json.loads(check.stderr)["message"].startswith("HTTP_PORT:"), check
    # Text stays text.
    code, lines = run_config_error({"WEBHOOK_TIMEOUT": "soon"})
    assert code == 2 and lines[0].startswith("[ERROR]: WEBHOOK_TIMEOUT:"), lines


# ----------------------------------------------------------------- SIGHUP
def test_sighup_is_logged_and_ignored_and_calls_go_on(avr_server, calls):
    srv = avr_server()
    call = calls(srv)
    call.start_streaming(sine_frame)
    call.wait_frames(10)
    for n in range(2):
        before = len(call.audio_frames())
        os.kill(srv.pid, signal.SIGHUP)
        wait_until(lambda: len(srv.log_matches(r"^\[WARN\]: Received SIGHUP: ignored")) == n + 1, timeout=5,
                   message="SIGHUP line")
        # The call goes on: more echo frames arrive, no hangup, the process lives.
        call.wait_for(lambda: len(call.audio_frames()) >= before + 20, timeout=5, message="frames after SIGHUP")
        assert srv.alive() and not call.ended()
    assert srv.log_matches(r"Received SIGHUP: ignored \(the configuration is read only at start-up; restart to change it")
    call.stop_streaming()
    call.hangup()
    srv.wait_for_log(r"Call ended")
    stop_server(srv)  # SIGTERM still stops it, exit 0


def test_sighup_while_stopping_does_not_end_the_process(avr_server, webhook_receiver, calls):
    """Stopping closes the signal watchers, which gives SIGHUP back its default action (ending
    the process) unless it is ignored again: a hangup while queued webhooks are still being
    delivered must not kill the process before they are."""
    from webhook_receiver import slow  # noqa: PLC0415
    hooks = webhook_receiver()
    hooks.default = slow(1.5)
    srv = avr_server(WEBHOOK_URL=hooks.url, WEBHOOK_TIMEOUT="3000")
    call = calls(srv)
    call.send_frame(sine_frame(0))
    call.wait_frames(1)
    os.kill(srv.pid, signal.SIGINT)
    srv.wait_for_log(r"Received signal 2, shutting down")
    # call_ended reaches the receiver once the loop is past stop() (the watchers are closed);
    # its answer takes 1.5 s, during which the process waits.
    hooks.wait_for_events("call_ended")
    assert srv.alive()
    os.kill(srv.pid, signal.SIGHUP)
    code = srv.proc.wait(timeout=10)
    srv.stopped = True
    assert code == 0, f"exit {code} after SIGHUP while stopping; last lines {srv.lines[-5:]}"
    assert hooks.events("call_ended"), "call_ended was not delivered"


# ----------------------------------------------------------------- credentials in logs
def test_credentials_in_urls_never_reach_the_log(avr_server, sts_peer, webhook_receiver, calls):
    sts = sts_peer("node", "echo")
    secret = "s3cret-" + uuidlib.uuid4().hex[:8]
    down = free_port()
    srv = avr_server(STS_URL=f"ws://operator:{secret}@127.0.0.1:{sts.port}/agent?token={secret}",
                     WEBHOOK_URL=f"http://hook:{secret}@127.0.0.1:{down}/events?key={secret}",
                     WEBHOOK_TIMEOUT="300", LOG_LEVEL="debug")
    uuid = str(uuidlib.uuid4())
    resp = request_once(srv.http_port, call_request(uuid, {"from": "2000", "pin": secret}))
    assert resp.status == 200 and secret in resp.json()["sts_url"]   # the URL itself is used unchanged
    call = calls(srv, uuid)
    call.start_streaming(sine_frame)
    call.wait_frames(5)                                                 # the STS really was reached
    srv.wait_for_log(re.escape(f"[{uuid}] Connecting to STS WebSocket: ws://***@127.0.0.1:{sts.port}/agent"
                               "?token=***&from=***&pin=***"))
    srv.wait_for_log(r"Webhook call_initiated for .* to " + re.escape(f"http://***@127.0.0.1:{down}/events?key=***"),
                     timeout=5)
    call.stop_streaming()
    call.hangup()
    srv.wait_for_log(r"Call ended")
    stop_server(srv)
    leaked = [l for l in srv.lines + srv.stderr_lines if secret in l]
    assert not leaked, leaked


def test_pipeline_urls_are_redacted_in_the_start_up_line(avr_server):
    secret = "k3y-" + uuidlib.uuid4().hex[:8]
    base = f"http://127.0.0.1:{free_port()}"
    srv = avr_server(ASR_URL=f"{base}/asr?api_key={secret}", LLM_URL=f"{base}/llm?api_key={secret}",
                     TTS_URL=f"https://u:{secret}@127.0.0.1:1/tts")
    srv.wait_for_log(re.escape(f"Pipeline mode: ASR {base}/asr?api_key=***, LLM {base}/llm?api_key=***, "
                               "TTS https://***@127.0.0.1:1/tts"))
    assert not [l for l in srv.lines if secret in l]


# ----------------------------------------------------------------- metrics
def test_ready_has_its_own_route_label(avr_server):
    srv = avr_server()
    for _ in range(3):
        assert request_once(srv.http_port, build_request("GET", "/ready")).status == 200
    assert value(srv.http_port, "avr_http_requests_total", route="/ready", status="200") == 3
    assert "other" not in {k for k in samples(scrape(srv.http_port)) if 'route="other"' in k}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing: make deps")
def test_process_metrics_and_build_info(avr_server, calls):
    metrics_port = free_port()
    srv = avr_server(METRICS_PORT=str(metrics_port))
    version = re.search(r"^avr-core (\S+)$", run_cli("--version").stdout.decode(), re.M).group(1)
    for port in (srv.http_port, metrics_port):
        text = scrape(port)
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert check.returncode == 0, (check.stdout + check.stderr).decode() + "\n" + text[-2000:]
        for family, kind in (("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
                             ("process_open_fds", "gauge"), ("process_max_fds", "gauge"),
                             ("process_start_time_seconds", "gauge"), ("avr_build_info", "gauge")):
            assert f"# TYPE {family} {kind}\n" in text, family
    got = samples(scrape(srv.http_port))
    assert got[f'avr_build_info{{version="{version}"}}'] == 1
    with open(f"/proc/{srv.pid}/status") as f:
        rss_kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    assert abs(got["process_resident_memory_bytes"] / 1024 - rss_kib) < max(rss_kib * 0.5, 4096), (got, rss_kib)
    fds = len(os.listdir(f"/proc/{srv.pid}/fd"))
    assert abs(got["process_open_fds"] - fds) <= 2, (got["process_open_fds"], fds)
    assert 0 < got["process_open_fds"] <= got["process_max_fds"]
    assert abs(got["process_start_time_seconds"] - time.time()) < 120 and got["process_start_time_seconds"] <= time.time()
    assert got["process_cpu_seconds_total"] >= 0
    # Open descriptors follow real connections: ten calls held open add ten.
    before = value(srv.http_port, "process_open_fds")
    held = [calls(srv) for _ in range(10)]
    wait_until(lambda: value(srv.http_port, "process_open_fds") >= before + 10, timeout=5,
               message="process_open_fds counts the calls' sockets")
    for call in held:
        call.hangup()
    wait_until(lambda: value(srv.http_port, "process_open_fds") <= before, timeout=5,
               message="process_open_fds falls back")


# ----------------------------------------------------------------- quality line, pipeline mode
@pytest.fixture
def pipeline_services():
    """(ASR, LLM, TTS) test services, stopped at teardown."""
    from pipeline_services import AsrService, LlmService, TtsService  # noqa: PLC0415
    started = [kind().start() for kind in (AsrService, LlmService, TtsService)]
    yield started
    for service in started:
        service.stop()


def test_pipeline_quality_line_names_the_asr_connect_not_an_sts_one(avr_server, calls, pipeline_services):
    asr, llm, tts = pipeline_services
    srv = avr_server(ASR_URL=asr.url, LLM_URL=llm.url, TTS_URL=tts.url)
    call = calls(srv)
    call.start_streaming(sine_frame)
    asr.wait_request()
    call.wait_frames(5)
    call.stop_streaming()
    call.hangup()
    m = srv.wait_for_log(r"^\[INFO\]: \[" + call.uuid + r"\] Call quality (.*)$")
    fields = dict(kv.split("=", 1) for kv in m.group(1).split())
    assert "sts_connect_ms" not in fields and 0 <= int(fields["asr_connect_ms"]) < 5000, fields
    # No STS connection was made: the connect histogram has the ASR stream's set-up, under
    # the pipeline's label only.
    assert value(srv.http_port, "avr_sts_connect_seconds_count", backend="pipeline") == 1
    assert value(srv.http_port, "avr_sts_connect_seconds_count", backend="sts-websocket") == 0
    assert value(srv.http_port, "avr_sts_connect_seconds_count", backend="sts-http") == 0
