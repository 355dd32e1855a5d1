"""A write the disk stops half-way: the unacknowledged bytes never reach a landed file.

The file-size limit (RLIMIT_FSIZE) lets the first bytes of a line through and then
refuses the rest with EFBIG, as a disk that fills mid-write does. The caller gets a
LandingError (so no 200 is sent), and the landed file holds exactly the lines acknowledged
before it: the torn tail is cut, not left for the loader to trip over.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingError, LandingWriter

FIRST = b'{"event_id":"01FIRST"}'
SECOND = b'{"event_id":"01SECOND","note":"' + b"x" * 200 + b'"}'


@contextmanager
def file_size_limit(max_bytes: int) -> Iterator[None]:
    """Files this process writes may not grow past max_bytes (EFBIG), until the block ends."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)


def test_append__a_write_cut_short_is_refused_and_cut_from_the_file(tmp_path: Path):
    landing = tmp_path / "landing"
    writer = LandingWriter(landing, rotate_bytes=1 << 20, rotate_seconds=3600)
    writer.append(FIRST)
    # Room for the first line and a few bytes of the second, not all of it.
    with file_size_limit(len(FIRST) + 1 + 10), pytest.raises(LandingError):
        writer.append(SECOND)
    writer.close()
    landed = sorted(landing.glob("*.ndjson"))
    assert [path.read_bytes() for path in landed] == [FIRST + b"\n"]
    assert writer.status()["events"] == 1


def test_append__a_first_write_refused_outright_leaves_no_empty_file(tmp_path: Path):
    landing = tmp_path / "landing"
    writer = LandingWriter(landing, rotate_bytes=1 << 20, rotate_seconds=3600)
    with file_size_limit(0), pytest.raises(LandingError):
        writer.append(FIRST)
    writer.close()
    assert list(landing.glob("*.ndjson")) == []
    assert list((landing / ".incoming").glob("*.part")) == []


def test_append__after_close_is_refused_saying_so(tmp_path: Path):
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )
    writer.close()
    with pytest.raises(LandingError) as refused:
        writer.append(FIRST)
    assert str(refused.value) == "the landing writer is closed"
