"""kill -9 in the middle of `audiences load webhooks`: only whole files, then a clean rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

FILES = 6
EVENTS_PER_FILE = 40_000
TEMPLATE = (
    '{"event_id":"01K%02d%021d","object_type":"email","metric":"opened",'
    '"timestamp":%d,"data":{"delivery_id":"RM%d","identifiers":{"id":"u_%d",'
    '"email":"p%d@example.org","cio_id":"c%d"},"recipient":"p%d@example.org",'
    '"subject":"Launch day","proxied":true,"prefetched":false,"synthetic":false}}'
)


def _generate(folder: Path, shape: str = "ndjson") -> list[Path]:
    """FILES files of EVENTS_PER_FILE good events plus one broken record each: NDJSON
    (which loads in batches), or JSON arrays (each loads alone, in its own transaction)."""
    folder.mkdir()
    paths = []
    for f in range(FILES):
        lines = [
            TEMPLATE % (f, i, 1727712000 + i, i, i % 977, i % 977, i % 977, i % 977)
            for i in range(EVENTS_PER_FILE)
        ]
        if shape == "ndjson":
            text = "\n".join([*lines, '{"event_id": "broken']) + "\n"
        else:  # an array must parse whole: its broken record lacks its fields instead
            text = "[" + ",\n".join([*lines, '{"event_id": "broken"}']) + "]\n"
        path = folder / f"part-{f:02d}.{shape}"
        path.write_text(text, encoding="utf-8")
        paths.append(path.resolve())
    return paths


def _open_inputs(pid: int, paths: list[Path]) -> set[int]:
    """Indexes of input files the process has open right now."""
    wanted = {str(p): i for i, p in enumerate(paths)}
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                found.add(wanted[target])
    except FileNotFoundError:
        pass
    return found


def _audiences() -> str:
    return str(Path(sys.executable).parent / "audiences")


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["ndjson", "json"])
def test_webhooks__sigkill_mid_load_leaves_whole_files_and_rerun_completes(
    tmp_path: Path, shape: str
) -> None:
    paths = _generate(tmp_path / "in", shape)
    db = tmp_path / "kill.duckdb"
    # NDJSON files this size load in batches (batch.py); two files a batch make the
    # commits come where the arrays' one-file transactions make them, two files apart.
    temporary = tmp_path / "tmp"  # the loaders' work folders go here (TMPDIR)
    temporary.mkdir()
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(db),
        "AUDIENCES_LOADER_BATCH_FILES": "2",
        "TMPDIR": str(temporary),
    }
    env.pop("AUDIENCES_TARGET", None)

    proc = subprocess.Popen(
        [_audiences(), "load", "webhooks", str(tmp_path / "in"), "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    # Kill once the sixth file is open: the loader fingerprints at most one batch (two
    # files) ahead of those it has taken, so it has taken the fourth by then, and the
    # first two files, loaded before the third is taken, are committed; the last batch
    # (or file) cannot be, its last file being still open.
    while not any(i >= FILES - 1 for i in _open_inputs(proc.pid, paths)):
        assert proc.poll() is None, "loader finished before it could be killed"
        assert time.monotonic() < deadline, "loader never reached the last file"
        time.sleep(0.002)  # polling interval, not synchronisation
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # kill -9 runs no cleanup: the work folder stays, until the next load's start.
    assert list(temporary.glob(f"audiences-load-{proc.pid}-*"))

    with duckdb.connect(str(db)) as con:
        files = con.execute(
            "select source_file, records_read, records_loaded, records_rejected "
            "from raw_loader.loaded_files order by source_file"
        ).fetchall()
        # One transaction stamps its files with one time.
        transactions = con.execute(
            "select count(distinct loaded_at) from raw_loader.loaded_files"
        ).fetchone()[0]
        per_file = dict(
            con.execute(
                "select _source_file, count(*) from raw_customerio.webhook_events "
                "group by 1"
            ).fetchall()
        )
        rejects = con.execute("select count(*) from raw_loader.rejects").fetchone()[0]
    assert 2 <= len(files) < FILES
    assert transactions == (len(files) if shape == "json" else -(-len(files) // 2))
    assert [f[0] for f in files] == [str(p) for p in paths[: len(files)]]
    assert all(f[1:] == (EVENTS_PER_FILE + 1, EVENTS_PER_FILE, 1) for f in files)
    # Rows exist only for recorded files, and each of those is complete.
    assert per_file == {f[0]: EVENTS_PER_FILE for f in files}
    assert rejects == len(files)

    rerun = subprocess.run(
        [_audiences(), "load", "webhooks", str(tmp_path / "in"), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert rerun.returncode == 0, rerun.stderr
    assert list(temporary.iterdir()) == []  # the killed load's folder removed
    remaining = FILES - len(files)
    assert (
        f"read {remaining * (EVENTS_PER_FILE + 1)} = loaded {remaining * EVENTS_PER_FILE}"
        f" + duplicate 0 + rejected {remaining}" in rerun.stdout
    )
    assert f"files: {remaining} loaded, {len(files)} skipped unchanged" in rerun.stdout
    with duckdb.connect(str(db)) as con:
        totals = con.execute(
            "select count(*), count(distinct event_id) from raw_customerio.webhook_events"
        ).fetchone()
        ledger = con.execute("select count(*) from raw_loader.loaded_files").fetchone()
        rejects = con.execute("select count(*) from raw_loader.rejects").fetchone()[0]
    assert totals == (FILES * EVENTS_PER_FILE, FILES * EVENTS_PER_FILE)
    assert ledger == (FILES,)
    assert rejects == FILES


BATCH_FILES = 4
SMALL_FILES = 40
EVENTS_PER_SMALL_FILE = 4_000


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_webhooks__sigkill_mid_batch_leaves_whole_files_and_rerun_completes(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Small files load BATCH_FILES per transaction; a kill keeps whole batches only.
    SIGTERM stops the load the same way, but says so and removes its work folder
    (before, it died as of kill -9, exit 143, and left the folder behind)."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for f in range(SMALL_FILES):
        lines = [
            TEMPLATE % (f, i, 1727712000 + i, i, i % 977, i % 977, i % 977, i % 977)
            for i in range(EVENTS_PER_SMALL_FILE)
        ]
        lines.append('{"event_id": "broken')
        path = folder / f"minute-{f:02d}.ndjson"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path.resolve())
    db = tmp_path / "kill.duckdb"
    temporary = tmp_path / "tmp"  # the loaders' work folders go here (TMPDIR)
    temporary.mkdir()
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(db),
        "AUDIENCES_LOADER_BATCH_FILES": str(BATCH_FILES),
        "TMPDIR": str(temporary),
    }
    env.pop("AUDIENCES_TARGET", None)
    command = [_audiences(), "load", "webhooks", str(folder), "--no-progress"]

    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    # Files are fingerprinted at most one batch (four files) ahead of those taken, and
    # a full batch is committed before the next file is taken: file 24 opens when file
    # 20 is taken, so files 0-19, five batches, are committed by then.
    while not any(i >= 24 for i in _open_inputs(proc.pid, paths)):
        assert proc.poll() is None, "loader finished before it could be killed"
        assert time.monotonic() < deadline, "loader never reached file 24"
        time.sleep(0.002)  # polling interval, not synchronisation
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=30)
    if stop == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert list(temporary.glob(f"audiences-load-{proc.pid}-*"))  # left behind
    else:
        assert proc.returncode == 5, stderr
        assert b"webhooks: stopped by SIGTERM after the files in hand: each file" in (
            stderr
        )
        assert list(temporary.iterdir()) == []

    with duckdb.connect(str(db)) as con:
        files = con.execute(
            "select source_file, records_read, records_loaded, records_rejected "
            "from raw_loader.loaded_files order by source_file"
        ).fetchall()
        per_file = dict(
            con.execute(
                "select _source_file, count(*) from raw_customerio.webhook_events "
                "group by 1"
            ).fetchall()
        )
        rejects = con.execute("select count(*) from raw_loader.rejects").fetchone()[0]
    # Whole batches, in order: every recorded file complete, nothing of any other.
    assert 2 * BATCH_FILES <= len(files) < SMALL_FILES
    assert len(files) % BATCH_FILES == 0
    assert [f[0] for f in files] == [str(p) for p in paths[: len(files)]]
    expected = (EVENTS_PER_SMALL_FILE + 1, EVENTS_PER_SMALL_FILE, 1)
    assert all(f[1:] == expected for f in files)
    assert per_file == {f[0]: EVENTS_PER_SMALL_FILE for f in files}
    assert rejects == len(files)

    rerun = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )

    assert rerun.returncode == 0, rerun.stderr
    assert list(temporary.iterdir()) == []
    remaining = SMALL_FILES - len(files)
    assert (
        f"read {remaining * (EVENTS_PER_SMALL_FILE + 1)} = loaded "
        f"{remaining * EVENTS_PER_SMALL_FILE} + duplicate 0 + rejected {remaining}"
        in rerun.stdout
    )
    assert f"files: {remaining} loaded, {len(files)} skipped unchanged" in rerun.stdout
    with duckdb.connect(str(db)) as con:
        totals = con.execute(
            "select count(*), count(distinct event_id) from raw_customerio.webhook_events"
        ).fetchone()
        ledger = con.execute("select count(*) from raw_loader.loaded_files").fetchone()
        rejects = con.execute("select count(*) from raw_loader.rejects").fetchone()[0]
    assert totals == (SMALL_FILES * EVENTS_PER_SMALL_FILE,) * 2
    assert ledger == (SMALL_FILES,)
    assert rejects == SMALL_FILES
