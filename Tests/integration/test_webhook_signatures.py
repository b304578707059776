"""Signed webhooks (docs/PROTOCOLS.md, "Signed webhooks"): with WEBHOOK_SECRET every request
carries `X-AVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

The signatures are checked two ways against the exact bytes an aiohttp receiver got: with
Python's own `hmac`, computed here, and with the receiver example printed in
docs/PROTOCOLS.md, which is read from the document and run, so the example cannot drift
from what the server sends. That example must refuse a tampered body, a stale timestamp and
another secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid as uuidlib

import pytest

from audio import sine_frame
from conftest import stop_server
from helpers import call_request, request_once
from webhook_helpers import header, of_call, scripted_sts, types_of  # noqa: F401  (fixtures by name)
from webhook_receiver import fail

pytestmark = pytest.mark.webhooks

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "PROTOCOLS.md")
SIGNATURE_RE = re.compile(r"^t=(\d+),v1=([0-9a-f]{64})$")
SECRET = "wh-s3cr3t_Clé"  # non-ASCII on purpose: the key is the secret's UTF-8 bytes


def documented_verifier():
    """`verify_avr_signature` from the Python example in docs/PROTOCOLS.md, executed."""
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next((b for b in blocks if "def verify_avr_signature" in b), None)
    assert code is not None, "docs/PROTOCOLS.md has no Python block defining verify_avr_signature"
    namespace: dict = {}
    exec(compile(code, "docs/PROTOCOLS.md", "exec"), namespace)
    return namespace["verify_avr_signature"]


def independent_hmac(secret: str, stamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), stamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def check_signed(entry: dict, verify, secret: str = SECRET) -> int:
    """Asserts the request's signature over its raw body; returns its timestamp."""
    value = header(entry, "X-AVR-Signature")
    assert value is not None, f"no X-AVR-Signature with WEBHOOK_SECRET set: {entry['headers']}"
    m = SIGNATURE_RE.match(value)
    assert m, f"X-AVR-Signature {value!r} is not t=<seconds>,v1=<64 hex digits>"
    stamp, code = m.group(1), m.group(2)
    body = entry["raw"]
    assert code == independent_hmac(secret, stamp, body), f"v1 is not HMAC-SHA256 of '<t>.<body>' for {body!r}"
    now = time.time()
    assert abs(now - int(stamp)) <= 5, f"signature timestamp {stamp} is {now - int(stamp):.1f} s from now"
    # The documented receiver accepts it ...
    assert verify(secret, value, body, now=now) is True
    # ... and refuses a tampered body, a stale or future timestamp, another secret.
    tampered = body.replace(b'"uuid":"', b'"uuid":"0', 1)
    assert tampered != body
    assert verify(secret, value, tampered, now=now) is False, "tampered body accepted"
    assert verify(secret, value, body + b" ", now=now) is False, "body with a byte appended accepted"
    assert verify(secret, value, body, now=int(stamp) + 301) is False, "stale timestamp accepted"
    assert verify(secret, value, body, now=int(stamp) - 301) is False, "timestamp from the future accepted"
    assert verify(secret + "x", value, body, now=now) is False, "another secret accepted"
    moved = value.replace(f"t={stamp}", f"t={int(stamp) + 1}")
    assert verify(secret, moved, body, now=now) is False, "a signature moved to another timestamp accepted"
    assert verify(secret, "v1=" + code, body, now=now) is False, "a header without t accepted"
    return int(stamp)


def test_every_event_is_signed_over_the_exact_bytes_sent(avr, webhook_receiver, scripted_sts, calls):
    verify = documented_verifier()
    hooks = webhook_receiver()
    sts = scripted_sts([
        {"type": "transcript", "role": "user", "text": "héllo \"there\" \\ \u2028"},
        {"type": "interruption"},
    ])
    srv = avr(STS_URL=sts.url, WEBHOOK_URL=hooks.url, WEBHOOK_SECRET=SECRET)
    uuid = str(uuidlib.uuid4())
    resp = request_once(srv.http_port, call_request(uuid))
    assert resp.status == 200, resp.body
    call = calls(srv, uuid)
    call.start_streaming(sine_frame)
    hooks.wait_for_events("interruption")
    call.send_dtmf("#")
    hooks.wait_for_events("dtmf_digit")
    call.hangup()
    hooks.wait_for_events("call_ended")
    stop_server(srv)

    events = of_call(hooks.events(), uuid)
    assert types_of(events) == ["call_initiated", "call_started", "transcription", "interruption",
                                "dtmf_digit", "call_ended"], types_of(events)
    for entry in events:
        check_signed(entry, verify)
        # The static header stays, for receivers that check only it.
        assert header(entry, "X-AVR-WEBHOOK-SECRET") == SECRET, entry["headers"]


def test_each_retry_sends_the_same_bytes_signed_at_its_own_time(avr, webhook_receiver, calls):
    """Three failed attempts (backoff 250 + 500 + 1000 ms) put the fourth over a second after
    the first: the bytes are the same, the timestamps differ and every signature holds."""
    verify = documented_verifier()
    hooks = webhook_receiver()
    hooks.respond("call_started", *fail(3))
    srv = avr(WEBHOOK_URL=hooks.url, WEBHOOK_SECRET=SECRET, WEBHOOK_RETRY="3", WEBHOOK_TIMEOUT="1000")
    call = calls(srv)
    hooks.wait_for_events("call_started", count=4, timeout=6.0)
    call.hangup()
    hooks.wait_for_events("call_ended")
    stop_server(srv)

    tries = hooks.events("call_started")
    assert [t["replied"] for t in tries] == [500, 500, 500, 200], [t["replied"] for t in tries]
    assert len({t["raw"] for t in tries}) == 1, "a retry must send the bytes of the first attempt"
    stamps = [check_signed(t, verify) for t in tries]
    assert tries[-1]["t"] - tries[0]["t"] >= 1.0, "the attempts were not a second apart"
    assert stamps[-1] > stamps[0], f"the retry was not signed anew: timestamps {stamps}"
    assert stamps == sorted(stamps), stamps


def test_a_secret_signs_call_initiated_and_its_answer_still_routes(avr, webhook_receiver):
    verify = documented_verifier()
    hooks = webhook_receiver()
    srv = avr(STS_URL="ws://127.0.0.1:6030", WEBHOOK_URL=hooks.url, WEBHOOK_SECRET="x")
    resp = request_once(srv.http_port, call_request(str(uuidlib.uuid4())))
    assert resp.status == 200, resp.body
    (entry,) = hooks.wait_for_events("call_initiated")
    check_signed(entry, verify, secret="x")


def test_the_documented_example_signature_verifies():
    """The `call_ended` example and the header shown for it in docs/PROTOCOLS.md agree
    (secret `s3cr3t`), so the document's worked example can be checked by a reader."""
    verify = documented_verifier()
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    body = re.search(r'^    (\{"uuid":"[0-9a-f-]+","type":"call_ended".*\})$', text, re.M).group(1).encode()
    value = re.search(r"^    X-AVR-Signature: (t=\d+,v1=[0-9a-f]{64})$", text, re.M).group(1)
    stamp = int(SIGNATURE_RE.match(value).group(1))
    assert verify("s3cr3t", value, body, now=stamp) is True
    assert verify("s3cr3t", value, body.replace(b'"caller_closed"', b'"caller_hangup"', 1), now=stamp) is False
