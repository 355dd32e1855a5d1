"""How `make bench` runs a step several times and reports it (beside its floor, where it
has one)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest

from scripts.bench.end_to_end import (
    Rounds,
    Step,
    _build_rounds_note,
    _counts_of,
    full_build_rounds,
    main,
    remove_database,
    render,
)


def test_rounds__the_row_shows_medians_and_the_largest_peak_and_the_note_every_round():
    timed = Rounds(
        step=[(3.0, 10), (1.0, 30), (2.0, 20)],
        floor=[(1.5, 5), (0.5, 7), (1.0, 6)],
    )

    step = timed.as_step("load", "≤ 2x floor", "webhooks: read 3 = loaded 3")

    assert (step.seconds, step.floor_seconds) == (2.0, 1.0)  # neither first nor last
    assert (step.peak_rss, step.floor_rss) == (30, 7)
    assert step.goal == "≤ 2x floor"
    assert step.note == (
        "3 rounds, each the step vs its floor: 3.00 s vs 1.50 s (2.00x), "
        "1.00 s vs 0.50 s (2.00x), 2.00 s vs 1.00 s (2.00x); webhooks: read 3 = loaded 3"
    )


def test_rounds__an_even_number_of_rounds_reports_the_mean_of_the_middle_two():
    step = Rounds(step=[(4.0, 1), (2.0, 1)], floor=[(1.0, 1), (3.0, 1)]).as_step(
        "tick", "", ""
    )
    assert (step.seconds, step.floor_seconds) == (3.0, 2.0)


def test_rounds__the_ratio_is_the_median_of_the_rounds_own_ratios():
    # The machine slows down in the second round: both sides take longer together, and
    # the step's median (3.0, round 1) and the floor's (2.0, round 3) come from
    # different rounds, whose quotient 1.5 no round measured.
    step = Rounds(
        step=[(3.0, 1), (7.0, 1), (2.5, 1)],
        floor=[(1.5, 1), (3.0, 1), (2.0, 1)],
    ).as_step("load", "≤ 2x floor", "")

    assert (step.seconds, step.floor_seconds) == (3.0, 2.0)
    assert step.ratio == pytest.approx(2.0)  # the rounds: 2.0, 2.33, 1.25


def test_render__a_row_shows_its_rounds_ratio_and_a_single_run_time_over_floor():
    rounds = Rounds(
        step=[(3.0, 1), (7.0, 1), (2.5, 1)], floor=[(1.5, 1), (3.0, 1), (2.0, 1)]
    )
    single = Step("sync", 4.0, 1, floor_seconds=1.0)
    no_floor = Step("orders", 9.0, 1)

    table = render(
        [rounds.as_step("load", "≤ 2x floor", ""), single, no_floor], 300, 20, "here"
    )

    rows = {
        line.split(" | ")[0]: line
        for line in table.splitlines()
        if line.startswith("| ")
    }
    assert "| 3.00 s | " in rows["| load"]
    assert "| 2.00x |" in rows["| load"]
    assert "| 4.00x |" in rows["| sync"]
    assert rows["| orders"].endswith("|  |  |  |  |")


def test_counts_of__rounds_compare_a_load_summary_without_its_time():
    first = "webhooks: read 10 = loaded 9 + duplicate 0 + rejected 1 (files: 2 loaded) in 3.2s"
    again = "webhooks: read 10 = loaded 9 + duplicate 0 + rejected 1 (files: 2 loaded) in 12.75s"
    other = "webhooks: read 10 = loaded 8 + duplicate 1 + rejected 1 (files: 2 loaded) in 3.2s"
    assert _counts_of(first) == _counts_of(again)
    assert _counts_of(first) != _counts_of(other)


def test_bench__refuses_fewer_than_one_round(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--rounds", "0", "--no-results"])
    assert stopped.value.code == 2
    assert "--rounds 0: at least 1" in capsys.readouterr().err


def test_remove_database__takes_the_file_its_log_and_its_spill_folder(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    other = tmp_path / "warehouse.duckdb.bak"
    for path in (db, db.with_name(db.name + ".wal"), other):
        path.write_bytes(b"x")
    (tmp_path / "warehouse.duckdb.tmp").mkdir()
    (tmp_path / "warehouse.duckdb.tmp" / "spill.block").write_bytes(b"x")

    remove_database(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb.bak"]
    remove_database(db)  # nothing left to remove: no error


def test_rounds__one_round_is_said_so() -> None:
    step = Rounds(step=[(2.0, 10)], floor=[(1.0, 5)]).as_step("tick", "", "built")
    assert (step.seconds, step.floor_seconds) == (2.0, 1.0)
    assert (
        step.note == "one round, the step vs its floor: 2.00 s vs 1.00 s (2.00x); built"
    )


# A stand-in for the full build, run as a process as the build is: it records when it ran
# and what it found (the warehouse's content, whether a saved parse was there), then
# changes both as a build does.
_BUILD = (
    "import datetime, os, pathlib\n"
    "db = pathlib.Path(os.environ['AUDIENCES_DUCKDB_PATH'])\n"
    "target = pathlib.Path(os.environ['DBT_TARGET_PATH'])\n"
    "saved_parse = target / 'partial_parse.msgpack'\n"
    "with open(os.environ['SEEN'], 'a') as seen:\n"
    "    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)\n"
    "    seen.write(f'{db.read_text()} {saved_parse.exists()} {now.isoformat()}\\n')\n"
    "db.write_text(db.read_text() + '+built')\n"
    "target.mkdir(exist_ok=True)\n"
    "saved_parse.write_text('parsed')\n"
    "raise SystemExit(int(os.environ.get('EXIT', '0')))\n"
)


def _build_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "SEEN": str(tmp_path / "seen.txt"),
        **extra,
    }


def test_full_build_rounds__each_round_builds_the_loaded_warehouse_with_no_saved_parse(
    tmp_path: Path,
) -> None:
    db = tmp_path / "warehouse.duckdb"
    db.write_text("loaded")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "partial_parse.msgpack").write_text("from an earlier run")
    builds, last_started = full_build_rounds(
        [sys.executable, "-c", _BUILD], db, tmp_path / "target", _build_env(tmp_path),
        3, lambda code: code == 0,
    )  # fmt: skip

    # Every round started from the loads' warehouse and parsed the project whole.
    seen = [line.split() for line in (tmp_path / "seen.txt").read_text().splitlines()]
    assert [found for *found, _ in seen] == [["loaded", "False"]] * 3
    assert len(builds) == 3
    assert all(seconds > 0 and rss > 0 for seconds, rss in builds)
    # The later steps read the last round's warehouse; the copy behind it is gone.
    assert db.read_text() == "loaded+built"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "seen.txt", "target", "warehouse.duckdb",
    ]  # fmt: skip
    # The later key checks count from the last round's start: after the second round
    # ran, before the last one did.
    ran = [datetime.fromisoformat(at) for *_, at in seen]
    assert ran[1] < last_started <= ran[2]


def test_full_build_rounds__a_failed_build_ends_the_bench_and_leaves_no_copy(
    tmp_path: Path,
) -> None:
    db = tmp_path / "warehouse.duckdb"
    db.write_text("loaded")

    with pytest.raises(SystemExit, match="failed"):
        full_build_rounds(
            [sys.executable, "-c", _BUILD], db, tmp_path / "target",
            _build_env(tmp_path, EXIT="3"), 2, lambda code: code == 0,
        )  # fmt: skip

    assert not db.with_name("before-build-" + db.name).exists()


def test_build_rounds_note__lists_every_round_and_none_for_one() -> None:
    assert _build_rounds_note([(63.4, 1), (61.0, 2), (70.25, 3)]) == (
        "3 rounds from the same loaded warehouse, each a first build (the whole "
        "project parsed): 63.40 s, 61.00 s, 70.25 s; "
    )
    assert _build_rounds_note([(63.4, 1)]) == ""
