"""Reading avr-core's GET /metrics in tests: the Prometheus text samples, and one family's value."""

from __future__ import annotations

import re

from helpers import build_request, request_once

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(port: int, path: str = "/metrics") -> str:
    resp = request_once(port, build_request("GET", path))
    assert resp.status == 200, resp
    assert resp.header("Content-Type").startswith("text/plain; version=0.0.4"), resp.headers
    return resp.body.decode()


def samples(text: str) -> dict[str, float]:
    """`name{labels}` → value (labels as printed, sorted by the server's order)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"unparsable sample line {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def value(port: int, name: str, **labels) -> float:
    """Sum of every series of `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for key, v in samples(scrape(port)).items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(have.get(k) == str(want) for k, want in labels.items()):
            total += v
    return total
