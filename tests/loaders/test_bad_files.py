"""Whole files that go wrong: cut short, deleted mid-run, not regular, unreadable.

The rule for each: say which file in one line, lose nothing that can be read, and let
every other file load. DuckDB and PostgreSQL where the warehouse takes part.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from scripts.cli import main
from tests.conftest import REPO_ROOT
from tests.loaders.conftest import event, ndjson, query, run_load, write


def _truncated_gzip(content: bytes, keep_content_bytes: int) -> bytes:
    """A .gz whose compressed stream stops once `keep_content_bytes` are recoverable."""
    whole = gzip.compress(content, compresslevel=1)
    for cut in range(len(whole) - 1, 0, -1):
        try:
            gzip.decompress(whole[:cut])
        except EOFError:
            pass
        else:  # pragma: no cover - a proper prefix never decompresses fully
            continue
        recovered = _recoverable(whole[:cut])
        if len(recovered) <= keep_content_bytes:
            return whole[:cut]
    raise AssertionError("no cut point found")


def _recoverable(data: bytes) -> bytes:
    out = b""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        try:
            while chunk := stream.read(1):
                out += chunk
        except EOFError:
            pass
    return out


FIVE_EVENTS = ndjson(*(event(f"01GZ{i}", timestamp=1727712000 + i) for i in range(5)))
# Three complete lines and part of the fourth survive the cut.
THREE_AND_A_HALF = len(b"".join(FIVE_EVENTS.splitlines(keepends=True)[:3])) + 40


def test_truncated_gzip__complete_lines_load_the_cut_is_one_reject(
    tmp_path: Path, target: str
) -> None:
    folder = tmp_path / "in"
    write(folder / "a.ndjson", ndjson(event("01A")))
    cut = write(folder / "b.ndjson.gz", _truncated_gzip(FIVE_EVENTS, THREE_AND_A_HALF))
    write(folder / "c.ndjson", ndjson(event("01C")))

    result = run_load("webhooks", [folder], target)

    # 1 of 6 records rejected: above the default 1 %, so the run says so (exit 3).
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert result.counts["read"] == 6
    assert result.counts["loaded"] == 5
    assert result.counts["rejected"] == 1
    landed = query(
        target, "select event_id from raw_customerio.webhook_events order by event_id"
    )
    assert [row[0] for row in landed] == ["01A", "01C", "01GZ0", "01GZ1", "01GZ2"]
    rejects = query(
        target,
        "select source_file, source_line, reason, raw_text from raw_loader.rejects",
    )
    assert [row[:3] for row in rejects] == [(str(cut.resolve()), 4, "truncated_gzip")]
    assert FIVE_EVENTS.splitlines()[3].decode().startswith(rejects[0][3])

    # The complete copy arrives later: the missing lines load, nothing twice.
    write(cut, FIVE_EVENTS, gz=True)
    complete = run_load("webhooks", [folder], target)

    assert complete.exit_code == 0, complete.output
    assert complete.counts["loaded"] == 2
    assert complete.counts["duplicate"] == 3
    assert query(target, "select count(*) from raw_customerio.webhook_events") == [(7,)]
    # The cut is history now: kept, and marked fixed by the complete copy's load.
    assert query(
        target,
        "select r.reason, r.resolved_at is not null, r.resolved_by_sha256 = f.file_sha256 "
        "from raw_loader.rejects as r cross join raw_loader.loaded_files as f "
        "where f.source_file = r.source_file and f.records_rejected = 0",
    ) == [("truncated_gzip", True, True)]


def test_truncated_gzip__within_the_threshold_exits_0(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """The cut counts toward --max-reject-pct like any reject."""
    cut = write(
        tmp_path / "b.ndjson.gz", _truncated_gzip(FIVE_EVENTS, THREE_AND_A_HALF)
    )

    at_limit = run_load("webhooks", [cut], "dev", "--max-reject-pct", "25")

    assert at_limit.exit_code == 0, at_limit.output  # 1 of 4 is exactly 25 %


def test_truncated_gzip__orders_csv_loads_its_complete_rows(
    tmp_path: Path, target: str
) -> None:
    header = b"order_id,status,total_cents,ordered_at\n"
    rows = b"".join(
        f"G{i},completed,100,2026-11-01T00:00:00Z\n".encode() for i in range(5)
    )
    cut = write(
        tmp_path / "o.csv.gz",
        _truncated_gzip(header + rows, len(header) + 2 * 38 + 10),
    )

    result = run_load("orders", [cut], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    assert query(target, "select order_id from raw_shop.orders order by 1") == [
        ("G0",),
        ("G1",),
    ]
    assert query(target, "select reason from raw_loader.rejects") == [
        ("truncated_gzip",)
    ]


def test_path__fifo_is_not_a_regular_file(tmp_path: Path, duckdb_path: Path) -> None:
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)

    result = CliRunner().invoke(main, ["load", "webhooks", str(fifo)])

    assert result.exit_code == 2
    assert f"not a regular file (a named pipe): {fifo}" in result.stderr
    assert "no such file" not in result.stderr


def test_path__file_deleted_during_the_run_is_named_and_the_others_load(
    tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    write(folder / "a.ndjson", ndjson(event("01A")))
    doomed = write(folder / "b.ndjson", ndjson(event("01B")))
    write(folder / "c.ndjson", ndjson(event("01C")))
    real_open = Path.open

    def open_after_deleting_b(self: Path, *args, **kwargs):
        # A cleanup job removes b.ndjson just as the loader reaches it: a real deletion.
        if self == doomed.resolve() and self.exists():
            self.unlink()
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_after_deleting_b)

    result = run_load("webhooks", [folder], target)

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    named = [line for line in result.output.splitlines() if "b.ndjson" in line]
    assert named == [
        f"webhooks: not loaded: {doomed.resolve()}: it was deleted or moved during "
        "the run (other files go on; rerun to retry)"
    ]
    assert "1 vanished during the run" in result.output
    assert query(
        target, "select event_id from raw_customerio.webhook_events order by 1"
    ) == [("01A",), ("01C",)]


def test_path__file_that_cannot_be_read_is_named_others_load_exit_4(
    tmp_path: Path, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    write(folder / "a.ndjson", ndjson(event("01A")))
    broken = write(folder / "b.ndjson", ndjson(event("01B")))
    write(folder / "c.ndjson", ndjson(event("01C")))
    real_open = Path.open

    def open_after_replacing_b(self: Path, *args, **kwargs):
        # b.ndjson becomes a folder just as the loader reaches it (chmod would not
        # stop root): reading it is a real IsADirectoryError, not a missing file.
        if self == broken.resolve() and self.is_file():
            self.unlink()
            self.mkdir()
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_after_replacing_b)

    result = run_load("webhooks", [folder], "dev")

    assert result.exit_code == 4
    assert "Traceback" not in result.output
    assert f"not loaded: {broken.resolve()}: Is a directory" in result.output
    assert "1 file(s) could not be read (named above); the others are loaded" in (
        result.output
    )
    assert query("dev", "select count(*) from raw_customerio.webhook_events") == [(2,)]


def test_path__file_named_in_bytes_that_are_not_utf8_is_named_others_load_exit_4(
    tmp_path: Path, target: str
) -> None:
    """The warehouse records every file's path as text; a name that is not UTF-8 has no
    such spelling. That file alone is left out, named with its odd byte escaped."""
    folder = tmp_path / "in"
    write(folder / "a.ndjson", ndjson(event("01A")))
    odd = write(folder / os.fsdecode(b"b\xff.ndjson"), ndjson(event("01B")))
    write(folder / "c.ndjson", ndjson(event("01C")))

    result = run_load("webhooks", [folder], target)
    alone = run_load("webhooks", [odd], target)  # named on the command line

    assert (result.exit_code, alone.exit_code) == (4, 4), result.output
    assert "Traceback" not in result.output + alone.output
    named = (
        f"webhooks: not loaded: {folder.resolve()}/b\\xff.ndjson: its name is not "
        "valid UTF-8, which the warehouse cannot record (other files go on; rename it "
        "to load it)"
    )
    assert [line for line in result.output.splitlines() if "b\\xff" in line] == [named]
    assert named in alone.output
    assert "1 file(s) could not be read (named above); the others are loaded" in (
        result.output
    )
    assert query(
        target, "select event_id from raw_customerio.webhook_events order by 1"
    ) == [("01A",), ("01C",)]
    assert query(target, "select count(*) from raw_loader.loaded_files") == [(2,)]


@pytest.mark.postgres
def test_postgres__role_without_create_gets_one_line_naming_the_right(
    tmp_path: Path, postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    admin = psycopg2.connect(
        host=postgres_env["PGHOST"],
        port=postgres_env["PGPORT"],
        user=postgres_env["PGUSER"],
        dbname=postgres_env["PGDATABASE"],
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("drop role if exists loader_without_create")
        cur.execute("create role loader_without_create login")
    admin.close()
    monkeypatch.setenv("PGUSER", "loader_without_create")
    path = write(tmp_path / "a.ndjson", ndjson(event("01A")))

    result = CliRunner().invoke(
        main, ["load", "webhooks", str(path), "--target", "postgres"]
    )

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    database = postgres_env["PGDATABASE"]
    # The first DDL a loader runs is `create schema` (scripts/warehouse.py names the
    # right); a role that may create schemas but not tables in them gets the loaders'
    # own line (scripts/loaders/runner.py ensure_rights).
    assert "loader_without_create" in result.stderr
    assert f"CREATE on database {database}" in result.stderr
    help_text = CliRunner().invoke(main, ["load", "--help"]).output
    assert "lacks CREATE on the" in help_text


def test_torn_last_line__marked_resolved_when_the_writer_finishes_it(
    tmp_path: Path, target: str
) -> None:
    lines = [orjson.dumps(event(f"01T{i}", timestamp=1727712000 + i)) for i in range(3)]
    broken_for_good = b'{"event_id": "01BROKEN", "metric": '
    path = tmp_path / "landing.ndjson"
    # The receiver is mid-write: line 4 is torn; line 2 is simply broken.
    write(path, b"\n".join([lines[0], broken_for_good, lines[1], lines[2][:25]]))
    first = run_load("webhooks", [path], target, "--max-reject-pct", "100")

    write(path, b"\n".join([lines[0], broken_for_good, lines[1], lines[2]]) + b"\n")
    second = run_load("webhooks", [path], target, "--max-reject-pct", "100")

    assert first.counts["rejected"] == 2
    assert second.counts["loaded"] == 1
    second_sha = query(
        target,
        "select file_sha256 from raw_loader.loaded_files order by loaded_at desc "
        "limit 1",
    )[0][0]
    rejects = query(
        target,
        "select source_line, reason, resolved_at is not null, resolved_by_sha256 "
        "from raw_loader.rejects order by source_line, rejected_at",
    )
    assert rejects == [
        (2, "invalid_json", False, None),  # first load: still broken
        (2, "invalid_json", False, None),  # second load: still broken
        (4, "invalid_json", True, second_sha),  # torn, then finished by the writer
    ]


# Past DuckDB's line buffer (about 32 MB): its reader leaves such a last line out
# without an error.
BEYOND_THE_READER = 33 << 20


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_a_last_line_longer_than_the_reader_s_buffer_is_a_reject_not_lost(
    tmp_path: Path, duckdb_path: Path, gz: bool
) -> None:
    """DuckDB's line reader returned the other lines and no error: the file counted as
    loaded, its long record neither loaded nor rejected, and every rerun skipped it.
    Each read is now checked against the file's line count: the batch splits, and the
    file alone is read from Python's copy, which rejects the record."""
    folder = tmp_path / "in"
    write(folder / "a.ndjson", ndjson(event("01A")))
    long_line = b'{"event_id": "01HUGE", "pad": "' + b"x" * BEYOND_THE_READER + b'"}\n'
    name = "b.ndjson.gz" if gz else "b.ndjson"
    write(folder / name, ndjson(event("01B1"), event("01B2")) + long_line, gz=gz)

    result = run_load("webhooks", [folder], "dev", "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    assert (result.counts["read"], result.counts["loaded"]) == (4, 3)
    assert (result.counts["rejected"], result.counts["files_loaded"]) == (1, 2)
    assert "returned 2 of its 3 lines" in result.output  # the batch's split, said
    assert query("dev", "select source_line, reason from raw_loader.rejects") == [
        (3, "record_too_large")
    ]


def test_blank_lines_before_a_record_near_the_limit_load(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """DuckDB's reader counts a run of empty lines into the size of the line after
    them: 20 before a record just under --max-record-bytes failed the file's read, and
    its staged copy's, so the run stopped (exit 4) at that file on every rerun. A staged
    copy now holds a space on such lines."""
    folder = tmp_path / "in"
    near = event("01NEAR", pad="")
    near["pad"] = "x" * (395 - len(orjson.dumps(near)))
    assert len(orjson.dumps(near)) == 395
    write(
        folder / "a.ndjson",
        ndjson(event("01A1")) + b"\n" * 20 + ndjson(near, event("01A2")),
    )
    write(folder / "b.ndjson", ndjson(event("01B")))

    result = run_load("webhooks", [folder], "dev", "--max-record-bytes", "400")

    assert result.exit_code == 0, result.output
    assert (result.counts["read"], result.counts["loaded"]) == (4, 4)
    assert result.counts["files_loaded"] == 2


@pytest.mark.parametrize("limit", ["9223372036854775807", str((256 << 20) + 1)])
def test_a_record_limit_past_the_ceiling_is_a_usage_error(
    tmp_path: Path, duckdb_path: Path, limit: str
) -> None:
    """9223372036854775807 passed the option and then failed every file's read (DuckDB
    takes the limit as a BIGINT, plus two). The ceiling itself loads."""
    write(tmp_path / "a.ndjson", ndjson(event("01A")))
    result = run_load("webhooks", [tmp_path], "dev", "--max-record-bytes", limit)
    assert result.exit_code == 2
    assert "is not in the range 1<=x<=268435456" in result.output
    at_ceiling = run_load(
        "webhooks", [tmp_path], "dev", "--max-record-bytes", str(256 << 20)
    )
    assert at_ceiling.exit_code == 0, at_ceiling.output
    assert at_ceiling.counts["loaded"] == 1


def test_a_subfolder_that_cannot_be_listed_is_said_and_fails_the_run() -> None:
    """pathlib's rglob passed over a folder it may not list: its files were never
    loaded, and the run exited 0 without a word. Run as a user who may not list it
    (nobody, when the tests run as root, as CI's do)."""
    root = Path(tempfile.mkdtemp(prefix="audiences-unlisted-"))
    try:
        root.chmod(0o777)
        write(root / "in" / "a.ndjson", ndjson(event("01A")))
        secret = root / "in" / "secret"
        write(secret / "b.ndjson", ndjson(event("01B")))
        for folder in (root / "in", secret):
            folder.chmod(0o755)
        secret.chmod(0o700 if os.geteuid() == 0 else 0o000)
        as_nobody = {"user": 65534, "group": 65534, "extra_groups": []}
        env = {**os.environ, "AUDIENCES_DUCKDB_PATH": str(root / "wh.duckdb")}
        env.pop("AUDIENCES_TARGET", None)
        # The folder, and a file inside it named directly (click said "does not
        # exist" of that one, and the run stopped with exit 2).
        result = subprocess.run(
            [sys.executable, "-m", "scripts", "load", "webhooks", str(root / "in"),
             str(secret / "b.ndjson"), "--no-progress"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
            check=False, **(as_nobody if os.geteuid() == 0 else {}),
        )  # fmt: skip
    finally:
        secret.chmod(0o755)
        shutil.rmtree(root)
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"webhooks: not loaded: {secret}: Permission denied" in result.stderr
    assert (
        f"webhooks: not loaded: {secret / 'b.ndjson'}: Permission denied"
        in result.stderr
    )
    assert "read 1 = loaded 1" in result.stdout


def test_a_path_that_does_not_exist_is_a_usage_error_and_opens_no_warehouse(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """Said before the warehouse is opened: a typo must not create an empty DuckDB
    file (or, on PostgreSQL, the loader's schemas)."""
    write(tmp_path / "in" / "a.ndjson", ndjson(event("01A")))

    result = run_load("webhooks", [tmp_path / "in", tmp_path / "nope.ndjson"], "dev")

    assert result.exit_code == 2, result.output
    assert f"no such file or folder: {tmp_path / 'nope.ndjson'}" in result.output
    assert not duckdb_path.exists()


def test_a_folder_of_files_with_other_extensions_is_said(
    tmp_path: Path, duckdb_path: Path
) -> None:
    write(tmp_path / "in" / "2026-12-01.ndjson.zst", b"(zstd)")
    result = run_load("webhooks", [tmp_path / "in"], "dev")
    assert result.exit_code == 0, result.output
    assert (
        f"webhooks: {tmp_path / 'in'}: no file to load: its 1 file(s) have other "
        "extensions than .ndjson, .jsonl, .json (each optionally .gz)"
    ) in result.output


@pytest.mark.postgres
def test_postgres__a_second_run_of_a_loader_is_refused_in_one_line(
    tmp_path: Path, postgres_env: dict[str, str]
) -> None:
    """Two runs at once kept the data whole, but the second failed in the database's
    words (a race on the tables' creation, or on the ledger's key). A run holding the
    loader's lock is simulated by holding it from another session."""
    import psycopg2

    from scripts.loaders.runner import LOAD_LOCK_CLASS

    path = write(tmp_path / "a.ndjson", ndjson(event("01A")))
    other = psycopg2.connect(
        host=postgres_env["PGHOST"],
        port=postgres_env["PGPORT"],
        user=postgres_env["PGUSER"],
        dbname=postgres_env["PGDATABASE"],
    )
    try:
        with other.cursor() as cur:
            cur.execute(
                "select pg_advisory_lock(%s, hashtext('webhooks'))", (LOAD_LOCK_CLASS,)
            )
        refused = run_load("webhooks", [path], "postgres")
        orders_csv = write(
            tmp_path / "orders.csv",
            b"order_id,customer_id,email,status,total_cents,currency,ordered_at,"
            b"updated_at\no1,c1,,completed,100,USD,2026-11-01T00:00:00Z,\n",
        )
        orders = run_load("orders", [orders_csv], "postgres")  # another loader
    finally:
        other.close()  # the lock goes with the session
    assert refused.exit_code == 2, refused.output
    assert "another `audiences load webhooks` is running on" in refused.output
    assert "Traceback" not in refused.output
    assert orders.exit_code == 0, orders.output  # not held up by webhooks' lock

    loaded = run_load("webhooks", [path], "postgres")
    assert loaded.exit_code == 0, loaded.output
    assert loaded.counts["loaded"] == 1


def test_bytes_after_a_whole_gzip_stream_are_one_reject_the_records_load(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """A valid stream with bytes after it (a copy that appended junk) was one
    `invalid_gzip` reject for the whole file: its records were lost. A stream whose own
    checksum fails stays one reject: its content cannot be trusted."""
    stream = gzip.compress(FIVE_EVENTS)
    write(tmp_path / "in" / "a.ndjson.gz", stream + b"garbage!")
    crc = bytearray(stream)
    crc[-8] ^= 0xFF  # the stream's CRC-32
    write(tmp_path / "in" / "b.ndjson.gz", bytes(crc))

    result = run_load("webhooks", [tmp_path / "in"], "dev", "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    assert (result.counts["read"], result.counts["loaded"]) == (7, 5)
    rejects = query(
        "dev", "select source_file, reason, detail from raw_loader.rejects order by 1"
    )
    assert [(Path(f).name, reason) for f, reason, _ in rejects] == [
        ("a.ndjson.gz", "invalid_gzip"),
        ("b.ndjson.gz", "invalid_gzip"),
    ]
    assert rejects[0][2].startswith("the bytes after the gzip stream are not gzip")
    assert "CRC check failed" in rejects[1][2]


def test_a_misnamed_file_renamed_loads_and_its_reject_is_resolved(
    tmp_path: Path, target: str
) -> None:
    """Plain NDJSON named `.gz` is one `invalid_gzip` reject. Renamed, the same bytes
    used to be "skipped unchanged" on every rerun (the ledger is keyed on the content's
    sha256): they load now, as the reject says, and the reject is resolved. Bytes that
    landed are never read twice, whatever they are renamed to."""
    write(tmp_path / "in" / "other.ndjson", ndjson(event("01OTHER")))
    misnamed = tmp_path / "in" / "a.ndjson.gz"
    write(misnamed, FIVE_EVENTS)
    first = run_load("webhooks", [tmp_path / "in"], target, "--max-reject-pct", "100")
    assert (first.counts["loaded"], first.counts["rejected"]) == (1, 1), first.output

    renamed = misnamed.rename(tmp_path / "in" / "a.ndjson")
    second = run_load("webhooks", [tmp_path / "in"], target)

    assert second.exit_code == 0, second.output
    assert (second.counts["read"], second.counts["loaded"]) == (5, 5), second.output
    assert (second.counts["files_loaded"], second.counts["files_skipped"]) == (1, 1)
    assert query(
        target,
        "select source_file, records_loaded from raw_loader.loaded_files "
        "where source_file like %s",
        ("%a.ndjson%",),
    ) == [(str(renamed), 5)]
    assert query(
        target,
        "select reason, resolved_at is not null from raw_loader.rejects",
    ) == [("invalid_gzip", True)]

    renamed.rename(misnamed)
    third = run_load("webhooks", [tmp_path / "in"], target)
    assert (third.counts["read"], third.counts["files_skipped"]) == (0, 2), third.output


def test_gzip_content_under_a_plain_name_is_one_reject_saying_rename(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """Gzip bytes named `.ndjson` read as a few invalid_utf8 "records" of binary noise;
    they are one reject that names the fix, and the fix loads them."""
    misnamed = tmp_path / "in" / "b.ndjson"
    write(misnamed, gzip.compress(FIVE_EVENTS))
    first = run_load("webhooks", [misnamed], "dev", "--max-reject-pct", "100")
    assert (first.counts["read"], first.counts["rejected"]) == (1, 1), first.output
    [(reason, detail)] = query("dev", "select reason, detail from raw_loader.rejects")
    assert reason == "unreadable_file"
    assert "rename it to b.ndjson.gz" in detail

    second = run_load(
        "webhooks", [misnamed.rename(tmp_path / "in" / "b.ndjson.gz")], "dev"
    )
    assert (second.counts["read"], second.counts["loaded"]) == (5, 5), second.output


def test_orders_csv_named_json_renamed_loads(tmp_path: Path, duckdb_path: Path) -> None:
    csv = tmp_path / "in" / "orders.json"
    write(
        csv,
        b"order_id,status,total_cents,ordered_at\n"
        b"o1,completed,100,2024-09-30T12:00:00Z\no2,completed,200,2024-09-30T12:01:00Z\n",
    )
    first = run_load("orders", [csv], "dev", "--max-reject-pct", "100")
    assert first.counts["loaded"] == 0, first.output

    second = run_load("orders", [csv.rename(tmp_path / "in" / "orders.csv")], "dev")
    assert (second.counts["loaded"], second.counts["files_loaded"]) == (2, 1), (
        second.output
    )
