"""What lands for a body: the bytes as received, or one compact line if they would split.

NDJSON is one event per line, so a body with a raw line break (pretty-printed JSON; CR
counts too, as many readers split on it) is re-serialised compactly, non-ASCII kept as is.
"""

from __future__ import annotations

import pytest

from scripts.receiver.server import landing_line, parse_event


@pytest.mark.parametrize(
    ("body", "landed"),
    [
        pytest.param(b'{"a": 1}', b'{"a": 1}', id="one-line-kept-byte-for-byte"),
        pytest.param(b'{\n  "a": 1,\n  "b": [1, 2]\n}', b'{"a":1,"b":[1,2]}', id="LF"),
        pytest.param(b'{"a": 1}\r', b'{"a":1}', id="CR-only"),
        pytest.param(
            '{\n "note": "café ☕"\n}'.encode(), '{"note":"café ☕"}'.encode(),
            id="non-ascii-kept-raw",
        ),
    ],
)  # fmt: skip
def test_landing_line(body, landed):
    event = parse_event(body)
    assert event is not None
    assert landing_line(body, event) == landed
