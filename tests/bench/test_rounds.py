"""How `make bench` reports a step it ran several times beside its floor."""

from __future__ import annotations

import pytest

from scripts.bench.end_to_end import Rounds, _counts_of, main, remove_database


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
