"""`verify()` at its edges: malformed headers and the replay window (`--max-skew`).

The known-answer signatures live in test_signature_known_answers.py; here the signature is
always right (the documented HMAC, built with the standard library), so a rejection can only
come from the header checks or the skew limit. Found by mutation testing
(benchmarks/mutation.md): a non-ASCII header being accepted, and the skew comparison at the
limit, were reached by no test.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from scripts.receiver.signature import verify

KEY = b"edge-key"
BODY = b'{"event_id":"01EDGE","object_type":"email","metric":"sent"}'
SENT_AT = 1_700_000_000
LIMIT = 300


def documented(timestamp: str, body: bytes = BODY) -> str:
    return hmac.new(
        KEY, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        # The digest of the same bytes, but a header that is not ASCII: HTTP headers are
        # ASCII, and anything else is refused rather than normalised.
        pytest.param("1700000000", documented("1700000000")[:-1] + "é", id="signature"),
        pytest.param("1700000000é", documented("1700000000é"), id="timestamp"),
    ],
)
def test_verify__non_ascii_headers_are_refused(timestamp, signature):
    assert not verify(KEY, timestamp, signature, BODY)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        pytest.param(SENT_AT + LIMIT - 1, True, id="one-second-inside"),
        pytest.param(SENT_AT + LIMIT, True, id="exactly-at-the-limit"),
        pytest.param(SENT_AT + LIMIT + 1, False, id="one-second-too-old"),
        pytest.param(SENT_AT - LIMIT, True, id="exactly-at-the-limit-in-the-future"),
        pytest.param(SENT_AT - LIMIT - 1, False, id="one-second-too-far-ahead"),
        pytest.param(SENT_AT, True, id="same-second"),
    ],
)
def test_verify__max_skew_boundaries(now, accepted):
    timestamp = str(SENT_AT)
    assert (
        verify(
            KEY, timestamp, documented(timestamp), BODY, max_skew_seconds=LIMIT, now=now
        )
        is accepted
    )


def test_verify__max_skew_uses_the_clock_when_no_now_is_given():
    fresh = str(int(time.time()))
    stale = str(int(time.time()) - 10 * LIMIT)
    assert verify(KEY, fresh, documented(fresh), BODY, max_skew_seconds=LIMIT)
    assert not verify(KEY, stale, documented(stale), BODY, max_skew_seconds=LIMIT)


def test_verify__max_skew_refuses_a_timestamp_that_is_not_a_number():
    # Signed correctly, but the window cannot be checked, so the request is not trusted.
    timestamp = "yesterday"
    assert verify(KEY, timestamp, documented(timestamp), BODY)
    assert not verify(
        KEY, timestamp, documented(timestamp), BODY, max_skew_seconds=LIMIT, now=SENT_AT
    )


def test_verify__surrounding_whitespace_in_headers_is_ignored():
    timestamp = str(SENT_AT)
    assert verify(
        KEY, f" {timestamp} ", f" {documented(timestamp)} ", BODY,
        max_skew_seconds=LIMIT, now=SENT_AT,
    )  # fmt: skip
