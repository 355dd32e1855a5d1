"""`LandingWriter.recover()` on `.part` files a crash left behind, in-process.

A `.part` holds only acknowledged lines plus, possibly, one torn line that was never
acknowledged (its 200 is sent only after the fsync). Recovery must keep every complete line
and cut only the torn tail, however far back the last newline is: it is searched for in
64 KiB chunks from the end, so the cases sit on and around a chunk boundary.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from scripts.receiver.landing import INCOMING, LandingWriter, describe_os_error

CHUNK = 64 * 1024


def recovered(tmp_path: Path, content: bytes) -> tuple[list[bytes], list[str]]:
    """Write one `.part` with `content`, recover; (contents of the landed files, log)."""
    landing = tmp_path / "landing"
    (landing / INCOMING).mkdir(parents=True)
    (landing / INCOMING / "webhooks-crash.ndjson.part").write_bytes(content)
    lines: list[str] = []
    writer = LandingWriter(
        landing, rotate_bytes=1 << 30, rotate_seconds=3600, log=lines.append
    )
    try:
        finalized = writer.recover()
    finally:
        writer.close()
    assert list((landing / INCOMING).glob("*.part")) == []
    assert sorted(landing.glob("*.ndjson")) == sorted(finalized)
    return [path.read_bytes() for path in finalized], lines


def test_recover__complete_file_is_kept_whole(tmp_path):
    content = b'{"a":1}\n{"b":2}\n'
    files, log = recovered(tmp_path, content)
    assert files == [content]
    assert log == [f"recovery: finalized webhooks-crash.ndjson ({len(content)} bytes)"]


def test_recover__torn_last_line_is_cut(tmp_path):
    files, log = recovered(tmp_path, b'{"a":1}\n{"b":2}\n{"c":')
    assert files == [b'{"a":1}\n{"b":2}\n']
    assert log == [
        "recovery: cut a torn last line of 5 bytes from webhooks-crash.ndjson.part",
        "recovery: finalized webhooks-crash.ndjson (16 bytes)",
    ]


@pytest.mark.parametrize("content", [b"", b'{"torn":', b"x" * (CHUNK + 10)])
def test_recover__no_complete_line_removes_the_file(tmp_path, content):
    files, log = recovered(tmp_path, content)
    assert files == []
    assert log == ["recovery: removed webhooks-crash.ndjson.part (no complete line)"]


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param(CHUNK - 1, id="newline-one-byte-inside-the-last-chunk"),
        pytest.param(CHUNK, id="newline-just-before-the-last-chunk"),
        pytest.param(CHUNK + 1, id="newline-one-byte-before-that"),
        pytest.param(3 * CHUNK + 7, id="newline-three-chunks-back"),
    ],
)
def test_recover__last_newline_found_across_chunk_boundaries(tmp_path, torn):
    kept = b'{"first":1}\n' + b'{"second":"' + b"y" * 100 + b'"}\n'
    files, _ = recovered(tmp_path, kept + b"z" * torn)
    assert files == [kept]


def test_recover__newline_as_the_first_byte_of_a_chunk(tmp_path):
    # The only newline sits exactly where a 64 KiB chunk starts (counted from the end).
    head = b"h" * 10
    content = head + b"\n" + b"t" * (CHUNK - 1)
    files, _ = recovered(tmp_path, content)
    assert files == [head + b"\n"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\n", id="a-lone-newline"),
        pytest.param(b"\n" + b"t" * (CHUNK + 5), id="newline-at-byte-0-of-a-long-file"),
    ],
)
def test_recover__a_newline_at_the_very_start_is_a_complete_line(tmp_path, content):
    files, _ = recovered(tmp_path, content)
    assert files == [b"\n"]


def _recover_parts(landing, parts: dict[str, bytes]):
    """Leave these `.part` files as a crash would, then run recovery once."""
    (landing / INCOMING).mkdir(parents=True)
    for name, body in parts.items():
        (landing / INCOMING / f"webhooks-{name}.ndjson.part").write_bytes(body)
    writer = LandingWriter(landing, rotate_bytes=1 << 30, rotate_seconds=3600)
    try:
        return writer.recover()
    finally:
        writer.close()


def test_recover__every_part_file_is_recovered_in_order(tmp_path):
    finalized = _recover_parts(
        tmp_path / "landing", {"b": b"2\n", "a": b"1\n", "c": b"torn"}
    )
    assert [path.name for path in finalized] == [
        "webhooks-a.ndjson",
        "webhooks-b.ndjson",
    ]


def test_recover__a_file_without_a_line_does_not_stop_the_others(tmp_path):
    landing = tmp_path / "landing"
    finalized = _recover_parts(landing, {"a": b"torn", "b": b"2\n"})
    assert [path.name for path in finalized] == ["webhooks-b.ndjson"]
    assert list((landing / INCOMING).glob("*.part")) == []


@pytest.mark.parametrize(
    ("error", "described"),
    [
        pytest.param(OSError(errno.ENOSPC, "No space left on device", "/x"),
                     "ENOSPC No space left on device", id="with-errno"),
        pytest.param(OSError(errno.EFBIG, "File too large"), "EFBIG File too large",
                     id="no-path"),
        pytest.param(OSError("plain message"), "plain message", id="no-errno"),
    ],
)  # fmt: skip
def test_describe_os_error__names_errno_and_text_never_the_path(error, described):
    assert describe_os_error(error) == described
    assert "/x" not in describe_os_error(error)
