"""X-CIO-Signature checked against Customer.io's documented format, not our own `sign()`.

Customer.io signs `v0:<X-CIO-Timestamp>:<raw body>` with HMAC-SHA256 and the webhook
signing key and sends the lowercase hex digest (docs/customerio-webhooks.md). Every
expected value here comes from that sentence: a literal digest computed outside Python
(`printf 'v0:1700000000:<body>' | openssl dgst -sha256 -hmac known-answer-test`), or the
standard library's `hmac` applied to the documented string.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import requests

from scripts.receiver.signature import verify
from tests.receiver.conftest import SIGNING_KEY

KNOWN_KEY = b"known-answer-test"
KNOWN_TIMESTAMP = "1700000000"
KNOWN_BODY = (
    b'{"event_id":"01KNOWNANSWER","object_type":"email","metric":"sent",'
    b'"timestamp":1700000000}'
)
KNOWN_SIGNATURE = "71cc713c7b22c1c7610b362da82c68309c8fd3c2f2f82ed8282b92af4e7a8c2c"


def documented_signature(key: str, timestamp: str, body: bytes) -> str:
    """The digest exactly as Customer.io documents it, built here, not by the receiver."""
    signed = b"v0:" + timestamp.encode() + b":" + body
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def test_verify__accepts_the_openssl_known_answer():
    assert verify(KNOWN_KEY, KNOWN_TIMESTAMP, KNOWN_SIGNATURE, KNOWN_BODY)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="blank"),
        pytest.param(" ", id="space"),
        pytest.param(KNOWN_SIGNATURE[:1], id="one-char"),
        pytest.param(KNOWN_SIGNATURE[:63], id="truncated-by-one"),
        pytest.param(KNOWN_SIGNATURE[:32], id="truncated-to-half"),
        pytest.param(KNOWN_SIGNATURE + "0", id="one-char-too-long"),
        pytest.param(KNOWN_SIGNATURE[:-1] + "d", id="last-char-wrong"),
        pytest.param(
            hmac.new(KNOWN_KEY, KNOWN_BODY, hashlib.sha256).hexdigest(),
            id="body-only-no-v0-prefix",
        ),
        pytest.param(
            hmac.new(
                KNOWN_KEY, KNOWN_TIMESTAMP.encode() + b":" + KNOWN_BODY, hashlib.sha256
            ).hexdigest(),
            id="without-v0",
        ),
    ],
)
def test_verify__rejects_near_misses_of_the_known_answer(signature):
    assert not verify(KNOWN_KEY, KNOWN_TIMESTAMP, signature, KNOWN_BODY)


@pytest.mark.parametrize("timestamp", ["1700000001", "1699999999", "", "v0"])
def test_verify__rejects_the_known_answer_under_another_timestamp(timestamp):
    assert not verify(KNOWN_KEY, timestamp, KNOWN_SIGNATURE, KNOWN_BODY)


def test_verify__hex_case_does_not_matter():
    """Hex is case-insensitive; senders that upper-case it are still Customer.io."""
    assert verify(KNOWN_KEY, KNOWN_TIMESTAMP, KNOWN_SIGNATURE.upper(), KNOWN_BODY)


def _post(receiver, body: bytes, timestamp: str, signature: str) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-CIO-Timestamp": timestamp,
        "X-CIO-Signature": signature,
    }
    return requests.post(
        receiver.url, data=body, headers=headers, timeout=10
    ).status_code


def test_serve_webhooks__accepts_a_signature_built_from_the_documented_format(
    make_receiver,
):
    receiver = make_receiver()
    body = b'{"event_id":"01DOCFORMAT","object_type":"email","metric":"opened"}'
    timestamp = str(int(time.time()))
    assert (
        _post(
            receiver,
            body,
            timestamp,
            documented_signature(SIGNING_KEY, timestamp, body),
        )
        == 200
    )
    assert receiver.stop() == 0
    assert receiver.landed_lines() == [body]


def test_serve_webhooks__near_miss_signatures_get_401_and_land_nothing(make_receiver):
    receiver = make_receiver()
    body = b'{"event_id":"01NEARMISS","object_type":"email","metric":"opened"}'
    timestamp = str(int(time.time()))
    good = documented_signature(SIGNING_KEY, timestamp, body)
    near_misses = {
        "blank": (timestamp, ""),
        "one-char": (timestamp, good[:1]),
        "truncated": (timestamp, good[:63]),
        "wrong-timestamp": (str(int(timestamp) + 1), good),
        "upper-case-of-another-body": (
            timestamp,
            documented_signature(SIGNING_KEY, timestamp, body + b" ").upper(),
        ),
    }
    statuses = {
        name: _post(receiver, body, ts, signature)
        for name, (ts, signature) in near_misses.items()
    }
    assert statuses == dict.fromkeys(near_misses, 401)
    # The upper-case form of the right digest is the same signature.
    assert _post(receiver, body, timestamp, good.upper()) == 200
    assert receiver.stop() == 0
    assert receiver.landed_lines() == [body]
