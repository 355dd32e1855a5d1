"""An orders CSV read while its writer is mid-row: a cut row must never load.

A CSV row cut short often still reads as a row: `...,12999` cut after `129` is a valid
total. Loaded, it would win over the finished row (equal versions: the first loaded
wins) and the real total would be counted as a duplicate with a different body. So a
CSV file whose last line has no line break and that changed within `--settle-seconds`
is left for a later run, unrecorded; once settled, such a last line is a finished row
(RFC 4180 allows a last record without a line break). Times are set on the files
(os.utime), never waited for.
"""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from scripts.loaders.files import inspect, open_content, still_being_written
from tests.loaders.conftest import query, run_load, write

FINISHED = (
    b"order_id,customer_id,email,status,currency,ordered_at,updated_at,total_cents\n"
    b"o1,c1,a@x.example,completed,USD,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z,10400\n"
    b"o2,c2,b@x.example,completed,USD,2026-11-01T00:05:00Z,2026-11-01T00:05:00Z,12999\n"
)
CUT = FINISHED[: -len(b"99\n")]  # the writer was mid-row: o2's total reads "129"


def _aged(path: Path, seconds: float) -> Path:
    """Mark a file as last modified `seconds` ago (negative: in the future)."""
    moment = time.time() - seconds
    os.utime(path, (moment, moment))
    return path


def _totals(target: str) -> list[tuple]:
    return query(target, "select order_id, total_cents from raw_shop.orders order by 1")


def test_a_fresh_file_ending_mid_row_waits_and_then_loads_finished(
    tmp_path: Path, target: str
) -> None:
    path = write(tmp_path / "orders.csv", CUT)
    waiting = run_load("orders", [tmp_path], target)
    assert waiting.exit_code == 0, waiting.output
    assert waiting.counts["read"] == 0, waiting.output
    assert "1 may still be being written" in waiting.output
    assert f"not loaded yet: {path}" in waiting.output
    assert "within --settle-seconds 60" in waiting.output
    # Nothing of it is recorded: not the cut row, not the file.
    loaded = query(target, "select count(*) from raw_loader.loaded_files")
    assert loaded == [(0,)]

    write(path, FINISHED)  # the writer finishes the row and the file
    done = run_load("orders", [tmp_path], target)
    assert done.exit_code == 0, done.output
    assert done.counts["loaded"] == 2, done.output
    assert _totals(target) == [("o1", 10400), ("o2", 12999)]
    rejects = query(target, "select count(*) from raw_loader.rejects")
    assert rejects == [(0,)]


def test_a_settled_file_without_a_last_line_break_loads_whole(
    tmp_path: Path, target: str
) -> None:
    _aged(write(tmp_path / "orders.csv", FINISHED.rstrip(b"\n")), 61)
    result = run_load("orders", [tmp_path], target)
    assert result.exit_code == 0, result.output
    assert result.counts["loaded"] == 2, result.output
    assert "may still be being written" not in result.output
    assert _totals(target) == [("o1", 10400), ("o2", 12999)]


def test_the_settle_time_is_the_operators_to_choose(
    tmp_path: Path, target: str
) -> None:
    _aged(write(tmp_path / "orders.csv", FINISHED.rstrip(b"\n")), 61)
    longer = run_load("orders", [tmp_path], target, "--settle-seconds", "300")
    assert longer.counts["read"] == 0, longer.output
    assert "within --settle-seconds 300" in longer.output
    none = run_load("orders", [tmp_path], target, "--settle-seconds", "0")
    assert none.counts["loaded"] == 2, none.output


def test_a_modification_time_a_little_in_the_future_waits(
    tmp_path: Path, target: str
) -> None:
    """A clock slightly behind the file system's: not settled until it has been."""
    _aged(write(tmp_path / "orders.csv", CUT), -30)
    result = run_load("orders", [tmp_path], target)
    assert result.counts["read"] == 0, result.output
    assert "s in the future, within --settle-seconds 60" in result.output


def test_a_modification_time_far_in_the_future_loads_and_says_so(
    tmp_path: Path, target: str
) -> None:
    """An hour ahead, the clocks disagree and time cannot tell: waiting for it would
    hold the file for that hour, or for ever; it loads, as one whose writer died."""
    _aged(write(tmp_path / "orders.csv", FINISHED.rstrip(b"\n")), -3600)
    result = run_load("orders", [tmp_path], target)
    assert result.counts["loaded"] == 2, result.output
    assert "in the future by this machine's clock" in result.output
    assert "loading it" in result.output


def test_a_quoted_field_still_open_waits_though_the_line_ends(
    tmp_path: Path, target: str
) -> None:
    """A line break inside quotes is data (an extra `note` column, kept in the payload):
    a file cut there ends with a break but mid-row. It waits, then loads whole."""
    header = FINISHED.splitlines()[0] + b",note\n"
    first = FINISHED.splitlines()[1] + b',"fragile"\n'
    second = FINISHED.splitlines()[2] + b',"leave at\nthe door"\n'
    path = write(
        tmp_path / "orders.csv", header + first + second[: -len(b'the door"\n')]
    )
    waiting = run_load("orders", [tmp_path], target)
    assert waiting.counts["read"] == 0, waiting.output
    assert "a quoted field still open" in waiting.output

    write(path, header + first + second)
    done = run_load("orders", [tmp_path], target)
    assert done.exit_code == 0, done.output
    assert _totals(target) == [("o1", 10400), ("o2", 12999)]
    assert query(target, "select count(*) from raw_loader.rejects") == [(0,)]


def test_a_gzipped_csv_whole_but_ending_mid_row_waits(
    tmp_path: Path, target: str
) -> None:
    """A writer that appends gzip members leaves a valid .gz between two of them, whose
    content can end mid-row; the same rule reads the content (any case of extension)."""
    path = write(tmp_path / "ORDERS.CSV.GZ", CUT, gz=True)
    waiting = run_load("orders", [tmp_path], target)
    assert waiting.counts["read"] == 0, waiting.output
    _aged(write(path, FINISHED.rstrip(b"\n"), gz=True), 61)
    done = run_load("orders", [tmp_path], target)
    assert done.counts["loaded"] == 2, done.output


def test_what_a_writer_appends_after_the_file_was_judged_is_not_read(
    tmp_path: Path,
) -> None:
    """The check and the load read the same bytes: the loader reads only what
    `inspect` hashed and judged, so a row a writer starts in between (after a finished
    line) waits for the next run, which sees a new file."""
    path = write(tmp_path / "orders.csv", FINISHED)
    judged = inspect(path)
    with path.open("ab") as writer:
        writer.write(b"o3,c3,c@x.example,completed,USD,2026-11-01T00:09:00Z,20")
    with open_content(judged) as content:
        assert content.read() == FINISHED
    gz = write(tmp_path / "orders.csv.gz", FINISHED, gz=True)
    judged_gz = inspect(gz)
    with gz.open("ab") as writer:
        writer.write(gzip.compress(b"o3,c3,c@x.example,completed,USD,2026-11-01T00:0"))
    with open_content(judged_gz) as content:
        assert content.read() == FINISHED


def test_fresh_files_that_end_with_a_line_break_load_at_once(
    tmp_path: Path, target: str
) -> None:
    """Whatever a writer has finished loads now: LF, CRLF, CR and a trailing space
    after the break; NDJSON, whose cut line can never parse, is not held either."""
    write(tmp_path / "lf.csv", FINISHED)
    write(tmp_path / "crlf.csv", FINISHED.replace(b"o1", b"o3").replace(b"o2", b"o4")
          .replace(b"\n", b"\r\n") + b" ")  # fmt: skip
    # Old Mac line breaks: a lone CR ends the last line too.
    write(tmp_path / "cr.csv", FINISHED.replace(b"o1", b"o7").replace(b"o2", b"o8")
          .replace(b"\n", b"\r"))  # fmt: skip
    write(
        tmp_path / "cut.ndjson",
        b'{"order_id": "o5", "status": "completed", "total_cents": 1, '
        b'"ordered_at": "2026-11-01T00:00:00Z"}\n{"order_id": "o6", "tot',
    )
    result = run_load("orders", [tmp_path], target, "--max-reject-pct", "100")
    assert "may still be being written" not in result.output
    assert result.counts["loaded"] == 7, result.output
    assert [row[0] for row in _totals(target)] == [
        "o1", "o2", "o3", "o4", "o5", "o7", "o8"
    ]  # fmt: skip
    # The cut JSON line is a reject a later load of the finished file resolves.
    assert query(target, "select reason from raw_loader.rejects") == [("invalid_json",)]


class _WriterAppendsAfterFirstRead:
    """The real file, read through its real handle; right after the first read returns,
    a writer appends a finished row, as one that starts a row while the loader reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "rb")  # noqa: SIM115 (closed in __exit__)
        self.appended = False

    def __enter__(self) -> _WriterAppendsAfterFirstRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def fileno(self) -> int:
        return self.handle.fileno()

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        if not self.appended:
            self.appended = True
            with open(self.path, "ab") as writer:
                writer.write(
                    b"o3,c3,c@x.example,completed,USD,2026-11-01T00:10:00Z,"
                    b"2026-11-01T00:10:00Z,500\n"
                )
        return chunk


class _PathWithAWriter(type(Path())):  # type: ignore[misc]
    def open(self, *args: object, **kwargs: object) -> _WriterAppendsAfterFirstRead:
        return _WriterAppendsAfterFirstRead(Path(self))


def test_a_file_written_to_while_it_is_read_waits_though_it_looks_finished(
    tmp_path: Path,
) -> None:
    # Settled for a minute and ending with a line break: on its own it would load.
    path = _aged(write(tmp_path / "orders.csv", FINISHED), 61)
    source = inspect(_PathWithAWriter(path))
    assert source.changed_while_read
    assert not source.ends_unfinished
    assert still_being_written(source, time.time(), 60)
    # Read again once the writer has stopped: nothing holds it back any more.
    again = inspect(path)
    assert not again.changed_while_read
    assert not still_being_written(again, time.time(), 60)


def test_the_settle_window_at_its_edges(tmp_path: Path) -> None:
    """A file ending mid-row waits while it was modified less than the settle time ago,
    and also while it was modified less than that in the future (a clock a little
    behind); from the settle time on either side it loads (settled, or clocks that
    disagree)."""
    source = inspect(write(tmp_path / "orders.csv", CUT))
    modified = source.modified_at
    waits = [
        still_being_written(source, modified + offset, 60)
        for offset in (-60.0, -59.5, 0.0, 59.5, 60.0)
    ]
    assert waits == [False, True, True, True, False]
