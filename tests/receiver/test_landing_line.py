"""What lands for a body: the bytes as received, raw line breaks made spaces.

NDJSON is one event per line, so a body with a raw line break (pretty-printed JSON; CR
counts too, as many readers split on it) must not split; in valid JSON a raw line break
is only whitespace, so a space in its place changes nothing else.
"""

from __future__ import annotations

import pytest

from scripts.receiver.server import landing_line, parse_event


@pytest.mark.parametrize(
    ("body", "landed"),
    [
        pytest.param(b'{"a": 1}', b'{"a": 1}', id="one-line-kept-byte-for-byte"),
        pytest.param(
            b'{\n  "a": 1,\n  "b": [1, 2]\n}', b'{   "a": 1,   "b": [1, 2] }', id="LF"
        ),
        pytest.param(b'{"a": 1}\r', b'{"a": 1} ', id="CR-only"),
        pytest.param(
            '{\r\n "note": "café ☕"\n}'.encode(), '{   "note": "café ☕" }'.encode(),
            id="non-ascii-kept-raw",
        ),
        # Re-encoding the parsed body raised on this (a lone surrogate escape, valid
        # JSON text): the request got no answer.
        pytest.param(
            b'{\n "note": "\\ud800"\n}', b'{  "note": "\\ud800" }', id="lone-surrogate"
        ),
    ],
)  # fmt: skip
def test_landing_line(body, landed):
    assert parse_event(body) is not None
    assert landing_line(body) == landed


def test_a_valid_number_python_would_not_convert_is_still_one_json_object():
    """An integer of 5,000 digits is valid JSON; Python refuses to convert more than
    4,300 digits. The receiver checks the shape only: the loader judges the value."""
    body = b'{"event_id": "01BIG", "n": ' + b"9" * 5000 + b"}"
    assert parse_event(body) is not None
