"""How far runner._Prefetcher fingerprints ahead of the load: one batch, at least a file.

Less would leave the next batch to be fingerprinted after this one commits (a year of
daily files: 115 s against 90 s); more would hold first bytes of files long before use.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.loaders import batch
from scripts.loaders.runner import _Prefetcher

SIZE = 100  # bytes per file


def _files(folder: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = folder / f"f{n}.ndjson"
        path.write_bytes(b"x" * (SIZE - 1) + b"\n")
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    ("batch_files", "batch_bytes", "ahead"),
    [
        (2, 10 * SIZE, 2),  # bounded by the batch's files
        (9, 2 * SIZE, 2),  # by its bytes: a third file would reach the limit
        (9, 2 * SIZE + 1, 3),  # ... and one byte more lets it in
        (9, 1, 1),  # at least one file, whatever its size
    ],
)
def test_prefetcher__runs_one_batch_ahead(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_files: int,
    batch_bytes: int,
    ahead: int,
) -> None:
    monkeypatch.setattr(batch, "MAX_BATCH_FILES", batch_files)
    monkeypatch.setattr(batch, "MAX_BATCH_BYTES", batch_bytes)
    paths = _files(tmp_path, 6)
    with _Prefetcher(paths) as prefetcher:
        assert list(prefetcher.pending) == paths[:ahead]
        assert prefetcher.take(paths[0]).size == SIZE
        # taking one file lets exactly one more in
        assert list(prefetcher.pending) == paths[1 : ahead + 1]


@contextlib.contextmanager
def _webhooks_loop(workdir: Path) -> Iterator[object]:
    """The webhooks loader's file loop on the warehouse AUDIENCES_DUCKDB_PATH names, as
    runner.run builds it; its ledger cursor and the warehouse are closed after."""
    from scripts.loaders import webhooks
    from scripts.loaders.command import WEBHOOK_STAGER
    from scripts.loaders.ledger import RunSummary
    from scripts.loaders.runner import Options, _ensure_tables, _Loop
    from scripts.warehouse import connect

    workdir.mkdir()
    wh = connect()
    try:
        _ensure_tables(wh, webhooks.SPEC)
        loop = _Loop(
            wh, wh.raw_connection, webhooks.SPEC, WEBHOOK_STAGER, workdir,
            Options(), RunSummary(loader="webhooks"),
        )  # fmt: skip
        yield loop
        loop.close()
    finally:
        wh.close()


def test_prestage__stages_ahead_only_what_a_batch_will_read_from_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_Loop.prestage (run by the prefetch thread) writes Python's copy of a file
    DuckDB cannot read as it is, so that the batch finds it made. Not for a clean file
    (DuckDB reads it), nor for one the ledger already holds (it will be skipped: a
    rerun over a loaded folder must not copy its files again), and a file gone since
    it was hashed is left to the main thread, which reports it."""
    from click.testing import CliRunner

    from scripts.cli import main
    from scripts.loaders.files import inspect

    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    good = b'{"event_id": "e1", "object_type": "email", "metric": "sent", '
    good += b'"timestamp": 1727712000, "data": {}}\n'
    folder = tmp_path / "in"
    folder.mkdir()
    clean = folder / "clean.ndjson"
    clean.write_bytes(good)
    loaded = folder / "loaded.ndjson"
    loaded.write_bytes(good + b'{"event_id": "\xff"}\n')
    fresh = folder / "fresh.ndjson"
    fresh.write_bytes(good + b'{"event_id": "\xfe"}\n' + good)
    gone = folder / "gone.ndjson"
    gone.write_bytes(good + b'{"event_id": "\xfd"}\n')
    result = CliRunner().invoke(
        main,
        ["load", "webhooks", str(loaded), "--no-progress", "--max-reject-pct", "100"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output

    workdir = tmp_path / "work"
    with _webhooks_loop(workdir) as loop:
        sources = {path.name: inspect(path) for path in (clean, loaded, fresh, gone)}
        gone.unlink()
        for source in sources.values():
            loop.prestage(source)

    staged = sources["fresh.ndjson"].staged
    assert staged is not None
    assert staged.path.parent == workdir
    assert staged.path.read_bytes() == good + b" \n" + good  # line 2 left blank
    assert [(r.line, r.reason) for r in staged.rejects] == [(2, "invalid_utf8")]
    assert sources["clean.ndjson"].staged is None
    assert sources["loaded.ndjson"].staged is None
    assert sources["gone.ndjson"].staged is None
    assert sorted(workdir.iterdir()) == [staged.path]


def test_prestage__waits_when_a_batch_worth_of_copies_is_staged_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefetcher's window counts stored bytes, and a .gz expands: the copies
    staged ahead are bounded by their own content, one batch's worth
    (batch.MAX_BATCH_BYTES), so the work folder never holds more than the loading
    batch's copies plus that, exactly: two copies fill it. A copy the batch takes
    frees its share."""
    from scripts.loaders.files import inspect

    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    record = b'{"event_id": "e", "x": "' + b"y" * 72 + b'"}\r\n'  # 100 bytes, CRLF
    paths = []
    for n in range(3):
        path = tmp_path / f"f{n}.ndjson.gz"
        path.write_bytes(gzip.compress(record * 10))  # 1,000 bytes of content
        paths.append(path)
    sources = [inspect(path) for path in paths]
    monkeypatch.setattr(batch, "MAX_BATCH_BYTES", 2 * sources[0].content_bytes)
    with _webhooks_loop(tmp_path / "work") as loop:
        for source in sources:
            loop.prestage(source)
        staged = [source.staged is not None for source in sources]
        taken = loop.take_staged(sources[0])
        loop.prestage(sources[2])  # room again
        third = sources[2].staged is not None

    assert staged == [True, True, False]
    assert taken is not None
    assert sources[0].staged is None
    assert third
    assert (
        loop.staged_ahead_bytes == sources[1].content_bytes + sources[2].content_bytes
    )
