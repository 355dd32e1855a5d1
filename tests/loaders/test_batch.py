"""Small files load in batches with exactly the outcome of loading them one by one.

The reference is the same files loaded by one `audiences load` per file (a lone file
never forms a batch), into a second DuckDB file; every row, reject and ledger row must
match, line numbers and conflict details included.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.cli import main
from scripts.loaders import batch

ROWS = (
    "select event_id, object_type, metric, occurred_at, payload::varchar, "
    "_source_file, _source_line from raw_customerio.webhook_events order by all"
)
REJECTS = (
    "select loader, source_file, source_line, reason, raw_text, detail, file_sha256 "
    "from raw_loader.rejects order by all"
)
BOM = b"\xef\xbb\xbf"
LEDGER = (
    "select loader, file_sha256, source_file, file_bytes, records_read, "
    "records_loaded, records_duplicate, records_rejected, records_conflicting "
    "from raw_loader.loaded_files order by all"
)


def _event(event_id: str, metric: str = "opened", ts: int = 1727712000) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "object_type": "email",
            "metric": metric,
            "timestamp": ts,
            "data": {"identifiers": {"id": f"u_{event_id}"}},
        }
    )


def _landing(folder: Path) -> list[Path]:
    """Receiver-like files with every case a batch must keep apart per file."""
    folder.mkdir()
    files: dict[str, list[bytes]] = {}
    for f in range(12):  # varied sizes so a shifted line number would show
        files[f"m{f:02d}.ndjson"] = [_event(f"e{f}-{i}") for i in range(f * 3 + 1)]
    files["m03.ndjson"] += [b"", b"   ", _event("e3-0")]  # blanks, in-file duplicate
    files["m04.ndjson"] += [_event("e4-1", metric="clicked")]  # in-file conflict
    files["m05.ndjson"] += [_event("e2-1"), _event("e2-2", metric="clicked")]  # across
    files["m06.ndjson"] += [b'{"event_id": "torn', b"[1, 2]", _event("", "x")]
    files["m07.ndjson"] += [_event("late", ts=4102444800)]  # in the future
    # Files DuckDB cannot read as they are: Python stages them, and they still batch.
    files["m09.ndjson"] += [b'{"event_id": "\xff\xfe"}']  # invalid UTF-8
    files["m10.ndjson"] = [line + b"\r" for line in files["m10.ndjson"]]  # CRLF
    files["m10.ndjson"] += [b'{"event_id": "cr\rinside"}']  # a lone CR in a record
    files["m11.ndjson"][0] = BOM + files["m11.ndjson"][0]
    files["m02.ndjson"] += [b'{"event_id": "unit\x1fsep"}']  # the delimiter byte
    for name, lines in files.items():
        (folder / name).write_bytes(b"\n".join(lines) + b"\n")
    cut = gzip.compress(b"\n".join([_event("gzcut-1"), _event("gzcut-2"), b"x" * 500]))
    (folder / "m97.ndjson.gz").write_bytes(cut[: len(cut) // 2])  # a .gz cut short
    # ... and one cut before its first line ends: no line at all to read
    first = gzip.compress(b'{"event_id": "cut-' + bytes(range(65, 91)) * 300)
    (folder / "m96.ndjson.gz").write_bytes(first[: len(first) * 4 // 5])
    (folder / "m08.ndjson").write_bytes((folder / "m08.ndjson").read_bytes()[:-1])
    (folder / "m99.ndjson.gz").write_bytes(
        gzip.compress(_event("gz-1") + b"\n" + _event("e1-0", "clicked") + b"\n")
    )
    (folder / "m98.ndjson").write_bytes((folder / "m01.ndjson").read_bytes())  # copy
    return sorted(folder.iterdir())


def _load(db: Path, paths: list[Path], monkeypatch: pytest.MonkeyPatch, *extra: str):
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(db))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    result = CliRunner().invoke(
        main,
        ["load", "webhooks", *map(str, paths), "--no-progress", *extra],
        catch_exceptions=False,
    )
    return result.stdout.strip().splitlines()[-1]


def _tables(db: Path) -> list[list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [con.execute(sql).fetchall() for sql in (ROWS, REJECTS, LEDGER)]


@pytest.mark.parametrize("max_record_bytes", [None, "300"])
def test_batch__same_rows_rejects_and_ledger_as_one_file_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_record_bytes: str | None
) -> None:
    """With a 300-byte limit one line is too long for DuckDB's read of the batch,
    which then falls back to loading its files one by one."""
    paths = _landing(tmp_path / "in")
    extra = ("--max-record-bytes", max_record_bytes) if max_record_bytes else ()
    long_line = _event("long-1")[:-1] + b', "pad": "' + b"x" * 400 + b'"}'
    if max_record_bytes:
        with paths[2].open("ab") as handle:
            handle.write(long_line + b"\n")
    batched = tmp_path / "batched.duckdb"
    summary = _load(batched, [tmp_path / "in"], monkeypatch, *extra)
    single = tmp_path / "single.duckdb"
    for path in paths:
        _load(single, [path], monkeypatch, *extra)

    expected = _tables(single)
    assert _tables(batched) == expected
    rows, rejects, ledger = expected
    assert len(ledger) == len(paths) - 1  # the byte-identical copy is skipped
    with duckdb.connect(str(batched), read_only=True) as con:
        # One transaction stamps its files with one time: without the long line, the
        # files Python had to stage joined the batch instead of splitting it.
        batches = con.execute(
            "select count(distinct loaded_at) from raw_loader.loaded_files"
        ).fetchone()[0]
    assert batches == (1 if max_record_bytes is None else batches)
    assert "in halves" not in summary  # Python staged what DuckDB would refuse
    assert "1 skipped unchanged" in summary
    # read = loaded + duplicate + rejected in every ledger row and in the summary.
    assert all(r[4] == r[5] + r[6] + r[7] for r in ledger)
    read = sum(r[4] for r in ledger)
    loaded = sum(r[5] for r in ledger)
    assert f"read {read} = loaded {loaded} + " in summary
    assert {r[3] for r in rejects} >= {
        "invalid_json",
        "not_an_object",
        "timestamp_in_future",
        "duplicate_key_different_body",
        "invalid_utf8",
        "truncated_gzip",
    }
    details = [r[5] for r in rejects if r[3] == "duplicate_key_different_body"]
    assert any("also on line 2 of this file" in d for d in details)
    assert any("already loaded from " + str(paths[2]) in d for d in details)
    # Every loaded row points at the line of its file that holds it.
    for event_id, *_, source_file, source_line in rows[:50]:
        line = Path(source_file).read_bytes().split(b"\n")[source_line - 1]
        assert orjson.loads(line.removeprefix(BOM))["event_id"] == event_id


def test_batch__rerun_of_a_changed_file_resolves_its_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with an open torn-line reject leaves the batch so the reject is resolved."""
    paths = _landing(tmp_path / "in")
    db = tmp_path / "w.duckdb"
    _load(db, [tmp_path / "in"], monkeypatch)
    torn = tmp_path / "in" / "m06.ndjson"
    lines = torn.read_bytes().split(b"\n")
    index = lines.index(b'{"event_id": "torn')
    lines[index] = _event("torn")
    torn.write_bytes(b"\n".join(lines))
    summary = _load(db, paths, monkeypatch)

    assert "files: 1 loaded" in summary
    with duckdb.connect(str(db), read_only=True) as con:
        open_torn = con.execute(
            "select count(*) from raw_loader.rejects where reason = 'invalid_json' "
            "and resolved_at is null and source_file = ?",
            [str(torn)],
        ).fetchone()[0]
        fixed = con.execute(
            "select count(*) from raw_customerio.webhook_events where event_id = 'torn'"
        ).fetchone()[0]
    assert (open_torn, fixed) == (0, 1)


def test_batch__a_batch_is_bounded_by_content_not_by_stored_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four .gz files of 100 events each: small on disk, not in memory. Counted by their
    content, three fill a batch and the fourth starts the next transaction; counted by
    their stored size, all four would share one."""
    from scripts.loaders import batch

    folder = tmp_path / "in"
    folder.mkdir()
    for f in range(4):
        lines = [_event(f"gz{f}-{i}") for i in range(100)]
        (folder / f"part-{f}.ndjson.gz").write_bytes(gzip.compress(b"\n".join(lines)))
    content = len(b"\n".join(_event(f"gz0-{i}") for i in range(100)))
    stored = max(path.stat().st_size for path in folder.iterdir())
    assert 4 * stored < 2.5 * content
    monkeypatch.setattr(batch, "MAX_BATCH_BYTES", int(2.5 * content))
    db = tmp_path / "w.duckdb"
    summary = _load(db, [folder], monkeypatch)
    assert "read 400 = loaded 400 + duplicate 0 + rejected 0" in summary
    with duckdb.connect(str(db), read_only=True) as con:
        stamps = con.execute(
            "select source_file, loaded_at from raw_loader.loaded_files "
            "order by source_file"
        ).fetchall()
    assert len({stamp for _, stamp in stamps[:3]}) == 1
    assert stamps[3][1] != stamps[0][1]


def _batched_and_single(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, list[bytes]],
    pre: list[bytes] = (),
) -> tuple[list[list[tuple]], list[list[tuple]]]:
    """`files` written to a folder and loaded as one folder, and one file at a time, each
    into a warehouse that already holds `pre` (a file loaded alone first)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, lines in files.items():
        (folder / name).write_bytes(b"".join(line + b"\n" for line in lines))
    before = tmp_path / "pre.ndjson"
    before.write_bytes(b"".join(line + b"\n" for line in pre))
    batched, single = tmp_path / "batched.duckdb", tmp_path / "single.duckdb"
    for db in (batched, single):
        if pre:
            _load(db, [before], monkeypatch)
    _load(batched, [folder], monkeypatch)
    for path in sorted(folder.iterdir()):
        _load(single, [path], monkeypatch)
    return _tables(batched), _tables(single)


def _conflicts(tables: list[list[tuple]], root: Path) -> list[tuple[str, int, str]]:
    """(file, line, detail) of each conflict reject, paths relative to `root`."""
    _rows, rejects, _ledger = tables
    return [
        (str(Path(r[1]).relative_to(root)), r[2], r[5].replace(f"{root}/", ""))
        for r in rejects
        if r[3] == "duplicate_key_different_body"
    ]


@pytest.mark.parametrize("batch_files", [500, 2])
def test_batch__a_key_loaded_before_is_compared_with_the_loaded_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_files: int
) -> None:
    """K is in the table before the batch (from another load, or from an earlier batch
    with two files a batch); c.ndjson sends it again with the loaded body. One file at a
    time, c's copy meets the loaded row and is no conflict; compared with b's copy (the
    batch's first, never loaded), it was one."""
    from scripts.loaders import batch

    monkeypatch.setattr(batch, "MAX_BATCH_FILES", batch_files)
    pre = [_event("K")] if batch_files == 500 else []
    files = {
        "a.ndjson": [_event("A")] if pre else [_event("K")],
        "a2.ndjson": [_event("A2")],  # with two files a batch, b and c share one
        "b.ndjson": [_event("K", metric="clicked")],
        "c.ndjson": [_event("K"), _event("C")],
    }
    batched, single = _batched_and_single(tmp_path, monkeypatch, files, pre)

    assert batched == single
    loaded_from = "pre.ndjson" if pre else "in/a.ndjson"
    assert _conflicts(batched, tmp_path) == [
        (
            "in/b.ndjson",
            1,
            f"event_id K already loaded from {loaded_from} line 1 with a different "
            "body; the loaded copy wins",
        )
    ]
    conflicting = {Path(r[2]).name: r[8] for r in batched[2]}
    assert (conflicting["b.ndjson"], conflicting["c.ndjson"]) == (1, 0)


def test_batch__a_repeat_inside_a_file_is_compared_with_that_files_first_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file at a time, b.ndjson's second K is compared with b's own first copy (the
    one its load keeps), and that first copy with the row loaded from a.ndjson: two
    conflicts. Compared with the batch's first copy, only the first one was seen."""
    files = {
        "a.ndjson": [_event("K")],
        "b.ndjson": [_event("K", metric="clicked"), _event("K"), _event("B")],
    }
    batched, single = _batched_and_single(tmp_path, monkeypatch, files)

    assert batched == single
    assert _conflicts(batched, tmp_path) == [
        (
            "in/b.ndjson",
            1,
            "event_id K already loaded from in/a.ndjson line 1 with a different body; "
            "the loaded copy wins",
        ),
        (
            "in/b.ndjson",
            2,
            "event_id K also on line 1 of this file with a different body; the kept "
            "copy wins",
        ),
    ]
    conflicting = {Path(r[2]).name: r[8] for r in batched[2]}
    assert conflicting == {"a.ndjson": 0, "b.ndjson": 2}


# Few keys and two bodies each, so that keys repeat inside a file, across files, across
# batches and over rows loaded before, with the same body or another.
COPY = st.tuples(st.sampled_from("KLM"), st.sampled_from(["opened", "clicked"]))


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pre=st.lists(COPY, max_size=2),
    files=st.lists(st.lists(COPY, max_size=4), min_size=2, max_size=4),
    batch_files=st.sampled_from([2, 500]),
)
def test_batch__any_repeated_keys_load_as_one_file_at_a_time(
    monkeypatch: pytest.MonkeyPatch, pre, files, batch_files
) -> None:
    from scripts.loaders import batch

    monkeypatch.setattr(batch, "MAX_BATCH_FILES", batch_files)
    with tempfile.TemporaryDirectory() as folder:
        batched, single = _batched_and_single(
            Path(folder),
            monkeypatch,
            {
                f"f{number}.ndjson": [_event(key, metric) for key, metric in copies]
                for number, copies in enumerate(files)
            },
            [_event(key, metric) for key, metric in pre],
        )
    assert batched == single


def test_batch__torn_lines_beside_repeated_and_loaded_keys_keep_the_batch_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torn line that still shows a key the batch repeats, and that the table holds,
    must not reach the JSON comparison of conflicting copies. When it did, DuckDB's
    error split the batch in halves down to single files: the same tables, but a year
    of daily files loaded in 182 s instead of 77 s, and no test saw it."""
    torn = _event("K", "clicked")[:40]  # '{"event_id":"K","object_type":"email","m'
    files = {
        "a.ndjson": [_event("K", "clicked"), torn, _event("A")],
        "b.ndjson": [_event("K", "clicked"), torn, _event("K"), _event("B")],
    }
    batched, single = _batched_and_single(tmp_path, monkeypatch, files, [_event("K")])

    assert batched == single
    assert len(_conflicts(batched, tmp_path)) == 3  # a:1, b:1 and b:3 against the table
    with duckdb.connect(str(tmp_path / "batched.duckdb"), read_only=True) as con:
        stamps = con.execute(
            "select count(distinct loaded_at) from raw_loader.loaded_files "
            "where source_file like '%/in/%'"
        ).fetchone()[0]
    assert stamps == 1  # one transaction: the batch was not split


def test_batch__a_batch_duckdb_fails_is_split_and_each_split_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file deleted after it was hashed makes DuckDB fail its batch as a whole. The
    halves load, the file is named as vanished, and each split is said on stderr with
    DuckDB's reason and counted in the summary: an error in our own SQL takes the same
    path, and without this would show only as a slow load."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in "abcd":
        (folder / f"{name}.ndjson").write_bytes(_event(name) + b"\n")
    doomed = (folder / "b.ndjson").resolve()
    real_stage = batch.stage

    def stage_after_deleting_b(*args, **kwargs):
        # A cleanup job removes b.ndjson between its hashing and the batch's read.
        doomed.unlink(missing_ok=True)
        return real_stage(*args, **kwargs)

    monkeypatch.setattr(batch, "stage", stage_after_deleting_b)
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    result = CliRunner().invoke(
        main, ["load", "webhooks", str(folder), "--no-progress"], catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    # [a b c d] fails, then [a b]; a loads alone, b is found gone, [c d] loads.
    splits = [line for line in result.stderr.splitlines() if "in halves" in line]
    assert len(splits) == 2, result.stderr
    assert "a batch of 4 files (" in splits[0]
    assert "a.ndjson to " in splits[0]
    assert "d.ndjson) failed as a whole (" in splits[0]
    assert "Exception: " in splits[0]  # DuckDB's error class and first line
    assert "a batch of 2 files (" in splits[1]
    summary = result.stdout.strip().splitlines()[-1]
    assert "2 batches failed as a whole and were loaded again in halves" in summary
    assert "1 vanished during the run" in summary
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        loaded = con.execute(
            "select event_id from raw_customerio.webhook_events order by 1"
        ).fetchall()
    assert loaded == [("a",), ("c",), ("d",)]


def test_batch__two_copies_of_a_file_python_stages_load_once_without_a_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with a line DuckDB refuses is staged by Python ahead of its batch, in the
    prefetch thread, under a name of its own. Of two files with the same bytes the
    second is skipped and its copy removed; that must leave the first's copy in place,
    or the batch fails as a whole and loads again in halves (said on stderr)."""
    folder = tmp_path / "in"
    folder.mkdir()
    dirty = _event("a") + b"\n" + b'{"event_id": "\xff"}\n'
    (folder / "a.ndjson").write_bytes(dirty)
    (folder / "b.ndjson").write_bytes(dirty)
    (folder / "c.ndjson").write_bytes(_event("c") + b"\n")
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    result = CliRunner().invoke(
        main,
        ["load", "webhooks", str(folder), "--no-progress", "--max-reject-pct", "100"],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert "in halves" not in result.stderr, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert "files: 2 loaded, 1 skipped unchanged" in summary, summary
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        loaded = con.execute(
            "select event_id, _source_file, _source_line "
            "from raw_customerio.webhook_events order by 1"
        ).fetchall()
        rejects = con.execute(
            "select source_file, source_line, reason from raw_loader.rejects"
        ).fetchall()
    assert loaded == [
        ("a", str((folder / "a.ndjson").resolve()), 1),
        ("c", str((folder / "c.ndjson").resolve()), 1),
    ]
    assert rejects == [(str((folder / "a.ndjson").resolve()), 2, "invalid_utf8")]
