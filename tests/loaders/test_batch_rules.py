"""batch.py's staging rules called directly on real files and an in-memory DuckDB.

The end-to-end equivalence (a batch loads exactly as its files one by one) is in
test_batch.py; this pins the line-to-file mapping, which must hold even where files have
no line at all (a .gz cut before its first line end is staged as an empty copy).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from scripts.loaders import batch
from scripts.loaders.files import Reject, inspect
from scripts.loaders.stage import CLASSIFIED, PY_REJECTS, nonblank_lines_sql


def _classify(duck, carry) -> None:
    """A stand-in classifier: every line valid, with the columns the batch asks to carry."""
    carried = "".join(f"{name}, " for name in carry)
    duck.execute(
        f"create or replace temp table {CLASSIFIED} as select line_no, {carried}"
        f"null::varchar as reason, line as payload from ({nonblank_lines_sql(carry)})"
    )


def _as_read(paths: list[Path]) -> tuple[list, list[Path], list[int]]:
    """The files as the loader hands them to batch.stage: read as they are."""
    sources = [inspect(path) for path in paths]
    return sources, paths, [source.content_lines for source in sources]


def test_stage__each_line_belongs_to_its_file_with_empty_files_between(
    tmp_path: Path,
) -> None:
    paths = []
    for number in range(12):
        path = tmp_path / f"f{number:02d}.ndjson"
        # every other file has no line: it starts where the next one does
        lines = [] if number % 2 else [b'{"n": %d}\n' % (number * 100 + i)
                                        for i in range(number + 1)]  # fmt: skip
        path.write_bytes(b"".join(lines))
        paths.append(path)
    duck = duckdb.connect()
    batch.stage(duck, *_as_read(paths), 1000,
                lambda carry: _classify(duck, carry), tmp_path)  # fmt: skip
    got = duck.execute(
        f"select file_no, file_line, payload from {batch.BATCH_CLASS} order by all"
    ).fetchall()
    expected = [
        (number, i + 1, f'{{"n": {number * 100 + i}}}')
        for number in range(0, 12, 2)
        for i in range(number + 1)
    ]
    assert got == expected


def test_stage__python_rejects_keep_their_file_and_line(tmp_path: Path) -> None:
    paths = [tmp_path / "a.ndjson", tmp_path / "b.ndjson"]
    for path in paths:
        path.write_bytes(b'{"n": 1}\n\n{"n": 3}\n')
    duck = duckdb.connect()
    rejects = [
        (1, Reject(2, "invalid_utf8", "bad byte", "x\x00y")),
        (1, Reject(None, "truncated_gzip", "cut", "")),
        (0, Reject(2, "record_too_large", "big", "r")),
    ]
    batch.stage(duck, *_as_read(paths), 1000,
                lambda carry: _classify(duck, carry), tmp_path, rejects)  # fmt: skip
    assert duck.execute(
        f"select * from {batch.BATCH_PY_REJECTS} order by all"
    ).fetchall() == [
        (0, 2, "record_too_large", "big", "r"),
        (1, 2, "invalid_utf8", "bad byte", "x\x00y"),
        (1, None, "truncated_gzip", "cut", ""),
    ]
    # the per-file table is left empty for the classification that follows
    assert duck.execute(f"select count(*) from {PY_REJECTS}").fetchone() == (0,)
    assert list(tmp_path.glob("pyrejects-*")) == []


def test_fits__a_file_joins_by_its_content_size_not_its_stored_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holds content: a .gz that compresses well is as big as its content."""
    content = b'{"event_id":"e1","data":{}}\n' * 400  # repeats: gzip shrinks it a lot
    plain = tmp_path / "plain.ndjson"
    plain.write_bytes(content)
    packed = tmp_path / "packed.ndjson.gz"
    packed.write_bytes(gzip.compress(content))
    assert packed.stat().st_size < len(content) // 10
    monkeypatch.setattr(batch, "MAX_FILE_BYTES", len(content))
    assert batch.fits(inspect(plain))
    assert batch.fits(inspect(packed))
    monkeypatch.setattr(batch, "MAX_FILE_BYTES", len(content) - 1)
    assert not batch.fits(inspect(plain))
    assert not batch.fits(inspect(packed))


def test_stage__lines_from_a_file_not_of_the_batch_stop_it(tmp_path: Path) -> None:
    """The runner never hands DuckDB a glob-like name (test_glob_names.py); if a name
    still reached it, the lines DuckDB read would belong to no file of the batch, and
    every count would silently miss them."""
    (tmp_path / "a1.ndjson").write_bytes(b'{"n": 1}\n')
    paths = [tmp_path / "a[1].ndjson", tmp_path / "b.ndjson"]
    for path in paths:
        path.write_bytes(b'{"n": 2}\n')
    duck = duckdb.connect()
    with pytest.raises(RuntimeError, match=r"a1\.ndjson.*not a file of this batch"):
        batch.stage(duck, *_as_read(paths), 1000,
                    lambda carry: _classify(duck, carry), tmp_path)  # fmt: skip
