"""stage_lines copies clean blocks of lines as they are and goes line by line only where
a block has a problem. Whatever the block size, line N of the staged file must be record
N of the source (or blank), and every problem record a reject on its own line number.

The expectation is computed here line by line, the way the loader defined staging before
blocks existed, so a block boundary that shifts a line number, drops a line or lets a bad
record through fails the comparison.
"""

from __future__ import annotations

import gzip
import random

import pytest

from scripts.loaders import files
from scripts.loaders.files import BOM, inspect, stage_lines

MAX_RECORD_BYTES = 200


def _expected(content: bytes) -> tuple[dict[int, bytes], list[tuple[int, str]]]:
    """Line number -> staged bytes for the non-blank records, and the rejects."""
    kept: dict[int, bytes] = {}
    rejects: list[tuple[int, str]] = []
    for number, line in enumerate(content.split(b"\n"), start=1):
        if number == 1:
            line = line.removeprefix(BOM)
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_BYTES:
            rejects.append((number, "record_too_large"))
        elif b"\x1f" in line:
            rejects.append((number, "invalid_json"))
        else:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                rejects.append((number, "invalid_utf8"))
                continue
            kept[number] = line.replace(b"\r", b" ")
    return kept, rejects


def _record(rng: random.Random, number: int) -> bytes:
    body = b'{"event_id":"e%d","n":%d}' % (number, rng.randint(0, 10**6))
    kind = rng.random()
    if kind < 0.04:
        return body[:10] + b"\xff\xfe" + body[10:]  # invalid UTF-8
    if kind < 0.06:
        return b'{"pad":"' + b"x" * (MAX_RECORD_BYTES + 5) + b'"}'  # too large
    if kind < 0.08:
        return body + b"\r"  # a CRLF line ending
    if kind < 0.10:
        return b'{"a":1,\r"b":2}'  # a CR inside the record
    if kind < 0.12:
        return b""  # a blank line
    if kind < 0.13:
        return b" \t "  # whitespace only
    if kind < 0.14:
        return b"\x0c"  # form feed only: blank to bytes.strip()
    if kind < 0.15:
        return b'{"a":"\x1f"}'  # our delimiter's first byte
    return body


def _content(seed: int, lines: int, bom: bool, trailing_newline: bool) -> bytes:
    rng = random.Random(seed)
    content = b"\n".join(_record(rng, n) for n in range(1, lines + 1))
    if trailing_newline:
        content += b"\n"
    return (BOM if bom else b"") + content


def _staged(tmp_path, content: bytes, gzipped: bool):
    path = tmp_path / ("in.ndjson.gz" if gzipped else "in.ndjson")
    path.write_bytes(gzip.compress(content) if gzipped else content)
    staged = stage_lines(inspect(path), tmp_path, MAX_RECORD_BYTES)
    lines = staged.path.read_bytes().split(b"\n")
    # Blank as the SQL that reads the staged file sees it (stage.nonblank_lines_sql):
    # empty, or only spaces and tabs.
    got = {n: line for n, line in enumerate(lines, start=1) if line.strip(b" \t")}
    rejects = [(reject.line, reject.reason) for reject in staged.rejects]
    return got, rejects


@pytest.mark.parametrize("block_bytes", [7, 64, 1000, 256 << 10])
@pytest.mark.parametrize(
    ("seed", "bom", "trailing_newline", "gzipped"),
    [(1, False, True, False), (2, True, False, False), (3, False, False, True)],
)
def test_staged_lines_match_the_line_by_line_definition(
    tmp_path, monkeypatch, block_bytes, seed, bom, trailing_newline, gzipped
):
    monkeypatch.setattr(files, "STAGE_BLOCK_BYTES", block_bytes)
    content = _content(seed, 400, bom, trailing_newline)
    kept, expected_rejects = _expected(content)
    got, rejects = _staged(tmp_path, content, gzipped)
    assert expected_rejects, "the sample must contain bad records"
    assert got == kept
    assert rejects == expected_rejects


def test_a_clean_block_is_copied_byte_for_byte(tmp_path):
    content = b"".join(b'{"event_id":"e%d"}\n' % n for n in range(5000))
    got, rejects = _staged(tmp_path, content, gzipped=False)
    assert rejects == []
    assert len(got) == 5000
    assert got[5000] == b'{"event_id":"e4999"}'


def test_a_line_longer_than_a_block_keeps_its_number(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "STAGE_BLOCK_BYTES", 16)
    long_ok = b'{"k":"' + b"y" * 150 + b'"}'
    content = b'{"a":1}\n' + long_ok + b'\n{"b":\xff}\n{"c":3}'
    got, rejects = _staged(tmp_path, content, gzipped=False)
    assert got == {1: b'{"a":1}', 2: long_ok, 4: b'{"c":3}'}
    assert rejects == [(3, "invalid_utf8")]
