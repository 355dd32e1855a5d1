"""A disk that fills up mid-load: one clear line, exit 4, and nothing lost.

The disks are real: a small tmpfs mounted for the test (root only; skipped elsewhere,
unless AUDIENCES_REQUIRE_TMPFS is set, as .ci/run does, which makes a skip a failure).
Two disks can fill: the temporary folder, where Python stages a file DuckDB cannot read
as it is (here CRLF line ends), and the one that holds the DuckDB warehouse. Either way
the run stops at the file that did not fit instead of counting every later file as
unreadable (or crashing on the next write), keeps what it loaded before, and a rerun
once there is space loads exactly the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.loaders import batch
from scripts.loaders.command import EXIT_FILE_FAILED
from tests.loaders.conftest import event, ndjson, query, run_load, write

REQUIRE_ENV = "AUDIENCES_REQUIRE_TMPFS"
DAYS, PER_DAY, T0 = 30, 200, 1727712000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts a tmpfs of the given size (e.g. "64k") and returns its folder."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"disk-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
            if os.environ.get(REQUIRE_ENV):
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def _crlf_events(prefix: str, count: int) -> bytes:
    # CRLF line ends: DuckDB would read the CR into the record, so Python stages a copy.
    return ndjson(*(event(f"{prefix}{i:06d}") for i in range(count))).replace(
        b"\n", b"\r\n"
    )


def _event_ids(target: str) -> list[str]:
    rows = query(target, "select event_id from raw_customerio.webhook_events")
    return sorted(row[0] for row in rows)


@pytest.mark.parametrize("alone", [True, False], ids=["file alone", "in a batch"])
def test_a_full_temporary_folder_stops_the_run_and_a_rerun_loads_everything(
    tmp_path: Path,
    target: str,
    small_disk,
    monkeypatch: pytest.MonkeyPatch,
    alone: bool,
) -> None:
    folder = tmp_path / "in"
    if not alone:
        write(folder / "a.ndjson", ndjson(event("01A")))
    write(folder / "b.ndjson", _crlf_events("01B", 400))  # about 200 kB staged
    write(folder / "c.ndjson", ndjson(event("01C")))
    # tempfile reads TMPDIR once per process; this is the folder the loader stages in.
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk("64k")))

    full = run_load("webhooks", [folder], target)

    assert full.exit_code == EXIT_FILE_FAILED, full.output
    assert "a disk is full" in full.output
    assert "No space left on device" in full.output
    assert "rerun" in full.output
    assert "Traceback" not in full.output
    # Stopped there: the file after it was not tried, so not reported as unreadable.
    assert "c.ndjson" not in full.output
    assert "not loaded:" not in full.output
    # Nothing of the failed file was kept. On DuckDB a.ndjson shares its batch, so it
    # is not kept either; PostgreSQL loads files one by one, so a.ndjson went first.
    before = [] if alone or target == "dev" else ["01A"]
    assert f"The {len(before)} file(s) loaded before it stay loaded" in full.output
    assert _event_ids(target) == before
    recorded = query(target, "select count(*) from raw_loader.loaded_files")
    assert recorded == [(len(before),)]

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    again = run_load("webhooks", [folder], target)

    # The rerun loads exactly the files not recorded, and skips the rest.
    assert again.exit_code == 0, again.output
    assert again.counts["files_skipped"] == len(before)
    expected = 400 + 1 + (0 if alone else 1)
    assert again.counts["read"] == again.counts["loaded"] == expected - len(before)
    assert len(_event_ids(target)) == expected


def test_a_full_warehouse_disk_keeps_what_loaded_before_and_a_rerun_loads_the_rest(
    tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = small_disk("4m")
    warehouse = disk / "warehouse.duckdb"
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(warehouse))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    first = tmp_path / "first"
    write(first / "a.ndjson", ndjson(event("01A")))
    assert run_load("webhooks", [first], "dev").exit_code == 0
    # More than the disk holds, in batches of two files: some batches fit first.
    more = tmp_path / "more"
    for day in range(DAYS):
        records = (
            event(f"01D{day:02d}{i:05d}", timestamp=T0 + i) for i in range(PER_DAY)
        )
        write(more / f"d{day:02d}.ndjson", ndjson(*records))
    monkeypatch.setattr(batch, "MAX_BATCH_FILES", 2)

    full = run_load("webhooks", [first, more], "dev")

    assert full.exit_code == EXIT_FILE_FAILED, full.output
    assert "a disk is full" in full.output
    assert "No space left on device" in full.output
    assert "Traceback" not in full.output
    # Moved to a disk with room, as an operator would, the warehouse holds the first
    # run's file and this run's first batches, whole, each file with its ledger row.
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    for name in os.listdir(disk):
        if name.startswith("warehouse.duckdb") and not name.endswith(".tmp"):
            shutil.copy2(disk / name, roomy / name)
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(roomy / "warehouse.duckdb"))
    kept = _event_ids("dev")
    assert "01A" in kept
    recorded = query(
        "dev", "select count(*), sum(records_loaded) from raw_loader.loaded_files"
    )
    files_recorded, rows_recorded = recorded[0]
    assert rows_recorded == len(kept)
    assert 1 + 2 <= files_recorded < 1 + DAYS  # this run loaded a batch, then stopped
    assert (
        f"The {files_recorded - 1} file(s) loaded before it stay loaded" in full.output
    )

    again = run_load("webhooks", [first, more], "dev")

    assert again.exit_code == 0, again.output
    assert again.counts["files_skipped"] == files_recorded
    assert again.counts["loaded"] + len(kept) == 1 + DAYS * PER_DAY
    assert len(_event_ids("dev")) == 1 + DAYS * PER_DAY
