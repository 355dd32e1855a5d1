"""A disk that fills up mid-load: one clear line, exit 4, and nothing lost.

The disks are real: a small tmpfs mounted for the test (root only; skipped elsewhere,
unless AUDIENCES_REQUIRE_TMPFS is set, as .ci/run does where it can mount, which makes a
skip a failure). Three places can fill: the temporary folder, where Python stages a file
DuckDB cannot read as it is (here CRLF line ends); the disk of the DuckDB warehouse, at a
commit (its write-ahead log) or at a checkpoint (after which DuckDB refuses every
statement until reopened); and DuckDB's temp_directory, where a batch larger than the
memory limit spills. Each way the run stops at the file that did not fit instead of
counting every later file as unreadable, splitting batches or crashing, keeps what it
loaded before, and a rerun once there is space loads exactly the rest.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scripts.loaders import batch, ledger
from scripts.loaders.command import EXIT_FILE_FAILED
from scripts.loaders.disk_full import first_line, is_disk_full
from scripts.loaders.stage import sql_literal
from scripts.warehouse import connect
from tests.conftest import REPO_ROOT
from tests.loaders.conftest import event, ndjson, query, run_load, write

T0 = 1727712000


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
    assert ", writing in " in full.output  # Python's own write names no file: we do
    # Stopped there: the file after it was not tried, so not reported as unreadable.
    assert "c.ndjson" not in full.output
    assert "not loaded:" not in full.output
    # Nothing of the failed file was kept. On DuckDB a.ndjson shares its batch, so it
    # is not kept either; PostgreSQL loads files one by one, so a.ndjson went first.
    before = [] if alone or target == "dev" else ["01A"]
    assert f"the {len(before)} file(s) loaded before it stay loaded" in full.output
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


def _days(folder: Path, days: int, per_day: int) -> None:
    for day in range(days):
        records = (
            event(f"01D{day:02d}{i:05d}", timestamp=T0 + i) for i in range(per_day)
        )
        write(folder / f"d{day:03d}.ndjson", ndjson(*records))


@pytest.mark.parametrize("when", ["commit", "checkpoint"])
def test_a_full_warehouse_disk_keeps_what_loaded_before_and_a_rerun_loads_the_rest(
    tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    disk = small_disk("4m" if when == "commit" else "3m")
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(disk / "warehouse.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    first = tmp_path / "first"
    write(first / "a.ndjson", ndjson(event("01A")))
    assert run_load("webhooks", [first], "dev").exit_code == 0
    # More than the disk holds, in batches of two files: some batches fit first.
    more = tmp_path / "more"
    days, per_day = (30, 200) if when == "commit" else (100, 500)
    _days(more, days, per_day)
    monkeypatch.setattr(batch, "MAX_BATCH_FILES", 2)
    holder = connect("dev")
    if when == "checkpoint":
        # The loader's connection opens this same database (one per file in a process),
        # which then checkpoints at every commit: the blocks, not the log, fill the disk.
        holder.execute("set checkpoint_threshold = '1kB'")

    full = run_load("webhooks", [first, more], "dev")
    holder.close()

    assert full.exit_code == EXIT_FILE_FAILED, full.output
    assert "a disk is full" in full.output
    assert "No space left on device" in full.output
    assert ("Failed to create checkpoint" in full.output) == (when == "checkpoint")
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
    assert 1 + 2 <= files_recorded < 1 + days  # this run loaded a batch, then stopped
    assert (
        f"the {files_recorded - 1} file(s) loaded before it stay loaded" in full.output
    )

    again = run_load("webhooks", [first, more], "dev")

    assert again.exit_code == 0, again.output
    assert again.counts["files_skipped"] == files_recorded
    assert again.counts["loaded"] + len(kept) == 1 + days * per_day
    assert len(_event_ids("dev")) == 1 + days * per_day


def test_a_full_duckdb_temp_directory_stops_the_run_without_splitting_batches(
    tmp_path: Path, duckdb_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB reports this one as out of memory ("failed to offload data block"),
    # without the OS's words; split in halves, the batch would fail file by file.
    monkeypatch.setenv("AUDIENCES_DUCKDB_TEMP_DIRECTORY", str(small_disk("1m")))
    # Enough memory for the loader's small queries, not for the batch's lines. It is
    # the profile's limit: a loader on DuckDB that set its own would not spill here.
    monkeypatch.setenv("AUDIENCES_DUCKDB_MEMORY_LIMIT", "32MB")
    folder = tmp_path / "in"
    _days(folder, 60, 1000)  # about 40 MB: one batch, past the memory limit

    full = run_load("webhooks", [folder], "dev")

    assert full.exit_code == EXIT_FILE_FAILED, full.output
    assert "a disk is full" in full.output
    assert "failed to offload data block" in full.output
    assert "spilling to DuckDB's temp_directory" in full.output  # says which disk
    assert "loading it in halves" not in full.output
    assert query("dev", "select count(*) from raw_loader.loaded_files") == [(0,)]
    monkeypatch.delenv("AUDIENCES_DUCKDB_TEMP_DIRECTORY")
    monkeypatch.delenv("AUDIENCES_DUCKDB_MEMORY_LIMIT")
    again = run_load("webhooks", [folder], "dev")
    assert again.exit_code == 0, again.output
    assert again.counts["loaded"] == 60 * 1000


def test_what_counts_as_a_full_disk() -> None:
    import errno

    import duckdb

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(FileNotFoundError(errno.ENOENT, "gone"))
    assert is_disk_full(
        duckdb.IOException(
            'IO Error: Could not write file "w.duckdb": No space left on device'
        )
    )
    # A record's text, quoted by DuckDB after the first line, says nothing of the disk.
    assert not is_disk_full(
        duckdb.InvalidInputException(
            "Invalid Input Error: Malformed JSON in line 3\nNo space left on device"
        )
    )
    # A block DuckDB could not spill to its temp_directory: no OS words in its message.
    assert is_disk_full(
        duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to offload data block of size 256.0 KiB "
            "(800.0 KiB/921.5 KiB used)."
        )
    )
    assert not is_disk_full(
        duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
    )
    assert not is_disk_full(RuntimeError("No space left on device"))
    assert first_line(duckdb.IOException("first\nsecond")) == "first"
    assert first_line(RuntimeError()) == "RuntimeError"


@pytest.mark.postgres
def test_a_postgresql_error_quoting_the_words_is_not_a_full_disk(postgres_env) -> None:
    import psycopg2

    wh = connect("postgres")
    try:
        with pytest.raises(psycopg2.Error) as caught:
            wh.query("select cast('No space left on device' as integer)")
    finally:
        wh.close()
    assert "No space left on device" in str(caught.value).splitlines()[0]
    assert caught.value.pgcode == "22P02"
    assert not is_disk_full(caught.value)


def test_a_warehouse_out_of_memory_outside_a_file_is_one_line_not_a_traceback(
    tmp_path: Path, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Too little memory for even the loader's own lookups (the ledger's): DuckDB's
    # error there is not a file's, and ends the run with its first line and exit 4.
    monkeypatch.setenv("AUDIENCES_DUCKDB_MEMORY_LIMIT", "1MB")
    folder = tmp_path / "in"
    _days(folder, 30, 1000)

    starved = run_load("webhooks", [folder], "dev")

    assert starved.exit_code == EXIT_FILE_FAILED, starved.output
    assert "Out of Memory Error" in starved.output
    assert "rerun" in starved.output
    monkeypatch.delenv("AUDIENCES_DUCKDB_MEMORY_LIMIT")
    again = run_load("webhooks", [folder], "dev")
    assert again.exit_code == 0, again.output
    assert again.counts["loaded"] == 30 * 1000


@pytest.mark.postgres
def test_a_full_postgresql_disk_stops_the_run_and_a_rerun_loads_the_rest(
    tmp_path: Path, postgres_env: dict[str, str], small_disk
) -> None:
    # The server's own disk fills: the database's tables live in a tablespace on a
    # small tmpfs, so PostgreSQL fails with SQLSTATE 53100 ("could not extend file").
    import psycopg2

    disk = small_disk("1m", owner="postgres")
    tablespace = f"small_{postgres_env['PGDATABASE']}"
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create tablespace {tablespace} location '{disk}'")
        cursor.execute(
            f"alter database {postgres_env['PGDATABASE']} "
            f"set default_tablespace = {tablespace}"
        )
    folder = tmp_path / "in"
    _days(folder, 20, 200)  # about 1.3 MB of events, one file at a time

    try:
        full = run_load("webhooks", [folder], "postgres")

        assert full.exit_code == EXIT_FILE_FAILED, full.output
        assert "a disk is full" in full.output
        assert "No space left on device" in full.output
        recorded = query("postgres", "select count(*) from raw_loader.loaded_files")
        files_before = recorded[0][0]
        assert 0 < files_before < 20
        assert f"the {files_before} file(s) loaded before it stay loaded" in full.output
        assert len(_event_ids("postgres")) == files_before * 200
        # Space freed in place (the operator grows the disk), the rerun loads the rest.
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        again = run_load("webhooks", [folder], "postgres")
        assert again.exit_code == 0, again.output
        assert again.counts["files_skipped"] == files_before
        assert len(_event_ids("postgres")) == 20 * 200
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"drop database if exists {postgres_env['PGDATABASE']}")
            cursor.execute(f"drop tablespace if exists {tablespace}")
        admin.close()


def test_a_full_disk_while_upgrading_an_older_raw_table_stops_the_load_the_same_way(
    tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier version's raw table (no payload columns) on a disk that then fills:
    # the upgrade's rewrite fails for want of space, not because of the table.
    from tests.loaders.test_payload_columns import OLD_PAYLOAD, OLD_WEBHOOK_TABLE

    disk = small_disk("8m")
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(disk / "warehouse.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    wh = connect("dev")
    try:
        ledger.ensure_ledger(wh)  # so that the upgrade is the load's first write
        wh.execute("create schema raw_customerio")
        wh.execute(OLD_WEBHOOK_TABLE.format(payload="json", key=""))
        wh.execute(
            "insert into raw_customerio.webhook_events select 'old' || i, 'email', "
            "'opened', timestamp '2026-11-30 10:00:00', "
            f"{sql_literal(OLD_PAYLOAD)}, 'old.ndjson', i, "
            "timestamp '2026-11-30 10:05:00' from range(20000) as r(i)"
        )
    finally:
        wh.close()
    filler = _fill(disk)
    path = write(tmp_path / "new.ndjson", ndjson(event("01NEW")))

    full = run_load("webhooks", [path], "dev")

    assert full.exit_code == EXIT_FILE_FAILED, full.output
    assert "adding the payload columns" in full.output  # the upgrade began
    assert "a disk is full" in full.output
    assert "could not add the payload columns" not in full.output  # not the table's
    filler.unlink()
    again = run_load("webhooks", [path], "dev")
    assert again.exit_code == 0, again.output
    assert query("dev", "select count(*) from raw_customerio.webhook_events") == [
        (20001,)
    ]


def _fill(disk: Path) -> Path:
    """Takes every free block of `disk`, as another file on a full disk does."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 4096)
    return filler


def _below_file_size_limit(limit: int):
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def test_a_file_size_limit_stops_the_run_as_a_full_disk_does(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """EFBIG (`ulimit -f`, or the largest file a filesystem allows: 4 GB on FAT32) fails
    every later write alike. Before, each failing batch was split again and again,
    files were reported "not loaded: File too large", and DuckDB ended "invalidated";
    now the run stops at once, saying which limit, and a rerun loads the rest. The
    limit is real: the load runs in a process whose RLIMIT_FSIZE is set (Python ignores
    SIGXFSZ, so the writes fail with EFBIG)."""
    write(tmp_path / "first" / "a.ndjson", ndjson(event("01A")))
    assert run_load("webhooks", [tmp_path / "first"], "dev").exit_code == 0
    more = tmp_path / "more"
    _days(more, 30, 400)  # about 8 MB of events
    limit = duckdb_path.stat().st_size + (1 << 20)
    command = [sys.executable, "-m", "scripts", "load", "webhooks", str(more),
               "--no-progress"]  # fmt: skip

    limited = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False, preexec_fn=_below_file_size_limit(limit),
    )  # fmt: skip

    assert limited.returncode == EXIT_FILE_FAILED, limited.stdout + limited.stderr
    assert "a file reached its size limit (ulimit -f" in limited.stderr
    assert "File too large" in limited.stderr
    assert "loading it in halves" not in limited.stderr
    assert "not loaded:" not in limited.stderr
    again = run_load("webhooks", [tmp_path / "first", more], "dev")
    assert again.exit_code == 0, again.output
    assert len(_event_ids("dev")) == 1 + 30 * 400
