"""A failed write whose file then cannot be finalised either: the writer logs it, forgets
that file (left as `.part` for `recover()`), and the next append starts a fresh one.

The write is cut off by the file-size limit (EFBIG, as a full disk does); the rename into
the landing directory fails because the directory was moved away and a file put in its
place. test_landing_partial_write.py covers the failed write whose finalising works."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.receiver.landing import LandingError, LandingWriter
from tests.receiver.test_landing_partial_write import file_size_limit

FIRST = b'{"event_id":"01FIRST"}'
SECOND = b'{"event_id":"02SECOND","note":"' + b"x" * 200 + b'"}'
THIRD = b'{"event_id":"03THIRD"}'


def test_append__a_failed_write_that_cannot_be_finalised_starts_afresh(
    tmp_path: Path,
):
    landing = tmp_path / "landing"
    lines: list[str] = []
    writer = LandingWriter(
        landing, rotate_bytes=1 << 20, rotate_seconds=3600, log=lines.append
    )
    writer.append(FIRST)
    moved = tmp_path / "moved"
    landing.rename(moved)
    landing.write_text("")

    with (
        file_size_limit(len(FIRST) + 1 + 10),
        pytest.raises(LandingError, match=r"^landing write failed: \[Errno 27\] File"),
    ):
        writer.append(SECOND)

    assert len(lines) == 1
    (part,) = (moved / ".incoming").glob("*.part")
    assert lines[0] == f"error: {part.name} is no longer at {landing / '.incoming'}"
    assert writer.status()["current_file_bytes"] == 0  # no file open any more
    landing.unlink()
    moved.rename(landing)
    writer.append(THIRD)  # a new file, not the forgotten one
    writer.close()
    assert [p.read_bytes() for p in landing.glob("*.ndjson")] == [THIRD + b"\n"]
    (left,) = (landing / ".incoming").glob("*.part")
    assert left.read_bytes() == FIRST + b"\n"  # the torn tail was cut before
    assert writer.status()["events"] == 2
