"""The deployment files in deploy/ and the Dockerfile, checked without a service manager or a
container engine: the systemd unit passes `systemd-analyze verify` (when systemd-analyze is
installed) and keeps the promises the README makes about it; the container image declares its
HTTP port and a health check on /ready; compose builds the image once."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import AVR_CORE_BIN, REPO

UNIT = REPO / "deploy" / "avr-core.service"
ENV_FILE = REPO / "deploy" / "avr-core.env"


def unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> every value it is given, in order (systemd allows repeated keys)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def verify(unit_text: str, tmp_path: Path) -> tuple[int, str]:
    """`systemd-analyze verify` on the unit with ExecStart pointing at the binary under test."""
    if not AVR_CORE_BIN.exists():
        pytest.fail(f"server binary not found: {AVR_CORE_BIN}")
    path = tmp_path / "avr-core.service"
    path.write_text(unit_text.replace("/usr/local/bin/avr-core", str(AVR_CORE_BIN)))
    out = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    return out.returncode, (out.stdout + out.stderr).strip()


needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze not installed (Debian package systemd)")


@needs_systemd_analyze
def test_systemd_unit_verifies_without_a_message(tmp_path):
    """verify exits 0 even for a line it ignores, so any message at all is a failure."""
    code, output = verify(UNIT.read_text(), tmp_path)
    assert code == 0 and output == "", f"systemd-analyze verify: exit {code}: {output}"


@needs_systemd_analyze
def test_systemd_unit_check_reports_a_bad_line(tmp_path):
    """The check above can fail: a misspelt value in the same unit is reported."""
    bad = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter")
    code, output = verify(bad, tmp_path)
    assert "ProtectSystem" in output or "protect system" in output.lower(), (code, output)


def test_systemd_unit_stops_by_draining_and_is_hardened():
    settings = unit_settings(UNIT.read_text())
    one = {k: v[-1] for k, v in settings.items()}
    env = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines()
               if line.strip() and not line.startswith("#"))
    drain = int(env.get("DRAIN_TIMEOUT", "300"))
    assert one["KillSignal"] == "SIGTERM"
    stop = re.fullmatch(r"(\d+)s?", one["TimeoutStopSec"])
    assert stop and int(stop.group(1)) > drain, f"TimeoutStopSec {one['TimeoutStopSec']} <= DRAIN_TIMEOUT {drain}"
    assert int(one["LimitNOFILE"]) >= 65536, "thousands of calls need tens of thousands of descriptors"
    assert one["EnvironmentFile"].lstrip("-") == "/etc/avr-core/avr-core.env"
    for key, value in {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
        assert one.get(key) == value, f"{key}={one.get(key)}"
    families = set(one["RestrictAddressFamilies"].split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    assert one["ExecStartPre"] == "/usr/local/bin/avr-core --check-config"


def test_environment_file_passes_check_config():
    """The example environment file is a valid configuration (what ExecStartPre runs)."""
    env = {"PATH": "/usr/bin:/bin"}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    out = subprocess.run([str(AVR_CORE_BIN), "--check-config"], env=env, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_declares_http_port_and_a_ready_health_check():
    runtime = (REPO / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert re.search(r"^ENV .*\bHTTP_PORT=6001\b", runtime, re.M), "the image exposes 6001 but sets no HTTP_PORT"
    health = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*$", runtime, re.M)  # with its continued lines
    assert health and "/ready" in health.group(0), "no HEALTHCHECK on /ready"


def test_compose_builds_the_image_once():
    text = (REPO / "deploy" / "docker-compose.yml").read_text()
    assert len(re.findall(r"^\s+build:", text, re.M)) == 1, "more than one service builds the image"
    images = re.findall(r"^\s+image:\s*(avr-core\S*)", text, re.M)
    assert len(images) == 2 and len(set(images)) == 1, images
