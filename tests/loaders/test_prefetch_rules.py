"""How far runner._Prefetcher fingerprints ahead of the load: one batch, at least a file.

Less would leave the next batch to be fingerprinted after this one commits (a year of
daily files: 115 s against 90 s); more would hold first bytes of files long before use.
"""

from __future__ import annotations

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
