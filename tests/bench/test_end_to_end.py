"""`make bench` end to end on a tiny brand, so the benchmark cannot rot between runs.

The real benchmark takes about ten minutes at 200,000 people; nothing else runs its code
(the loads, the floors, the hand-written audience queries, the tick, the sync against the
receiver). A smaller brand exercises every step, and the benchmark's own checks still
hold: each audience model must return the same people as its hand-written query, and the
sync must deliver exactly the messages the floor posts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench import audience_queries
from scripts.bench.end_to_end import AS_OF_FULL

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every audience the benchmark has a hand-written query for must appear, matched.
AUDIENCES = tuple(audience_queries.queries(AS_OF_FULL))
TINY_BRAND = ("--people", "300", "--days", "20")
COUNTS = re.compile(r"read (\d+) = loaded (\d+) \+ duplicate (\d+) \+ rejected (\d+)")
ROUND = re.compile(r"([\d.]+) s vs ([\d.]+) s \([\d.]+x\)")


def test_bench__every_step_runs_on_a_tiny_brand(tmp_path: Path) -> None:
    results = REPO_ROOT / "benchmarks" / "results.md"
    before = results.read_bytes()
    # 300 people over 20 days: the demo's deliberate bad records are then above the
    # loaders' default 1 % reject threshold, which the benchmark must not stop at.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench.end_to_end",
            *TINY_BRAND,
            "--no-results",
            # One round: how rounds combine (medians, peaks, every round in the
            # note) is tests/bench/test_rounds.py's; a second round here cost some
            # 30 s of `make test`'s 10 minutes.
            "--rounds",
            "1",
            "--keep",
            str(tmp_path / "bench"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = run.stdout

    # A new audience version needs its hand-written query before the bench can judge it.
    shipped = {path.stem for path in (REPO_ROOT / "models" / "audiences").glob("*.sql")}
    assert set(AUDIENCES) == shipped
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    labels = [row.split("|")[1].strip() for row in rows]
    for expected in (
        "load webhooks, daily layout",
        "load webhooks, receiver-like layout (1,440 files",
        "load segment-events (daily layout)",
        "load orders",
        "full `dbt build`",
        "incremental `dbt build` after one more day",
        "the same, as the loop of `audiences run --every` runs it",
        "first sync of every audience",
        "no-change sync over every member",
    ):
        assert any(label.startswith(expected) for label in labels), expected
    for name in AUDIENCES:
        assert any(
            label.startswith(f"audience `{name}`") and "same as the query" in label
            for label in labels
        ), name

    # The loads' own reconciliation, as the notes quote it.
    loads = COUNTS.findall(report)
    assert len(loads) == 2  # the two webhook layouts
    for read, loaded, duplicate, rejected in loads:
        assert int(read) == int(loaded) + int(duplicate) + int(rejected)
        assert int(loaded) > 0
    assert any(int(rejected) > 0 for *_, rejected in loads)

    # Where each build's time went, from dbt's own run results.
    for step in ("full `dbt build`", "incremental `dbt build`"):
        note = next(
            line for line in report.splitlines() if line.startswith(f"- {step}")
        )
        assert re.search(r"dbt's elapsed time [\d.]+ s for \d+ nodes", note), note
        assert re.search(r"slowest: [\w.]+ [\d.]+ s, \w", note), note

    # The tick beside its floor, the same command over an empty warehouse.
    tick = next(row for row in rows if "incremental `dbt build`" in row).split("|")
    assert tick[4].strip().endswith(" s"), tick  # the floor's time
    assert tick[6].strip().endswith("x"), tick  # the ratio

    # The loads and the tick (one-shot and forked from the loop) ran beside their
    # floors; their rows show the round their notes list.
    for step in (
        "load webhooks, daily layout",
        "load webhooks, receiver-like layout",
        "incremental `dbt build`",
        "the same, as the loop",
    ):
        note = next(
            line for line in report.splitlines() if line.startswith(f"- {step}")
        )
        ((timed_step, timed_floor),) = (
            (float(s), float(f)) for s, f in ROUND.findall(note)
        )
        row = next(row for row in rows if step in row).split("|")
        seconds, floor = (float(row[i].strip().removesuffix(" s")) for i in (2, 4))
        assert abs(seconds - timed_step) <= 0.011, (row, note)  # both to 0.01 s
        assert abs(floor - timed_floor) <= 0.011, (row, note)

    sync = next(row for row in rows if "first sync of every audience" in row)
    messages = int(re.search(r"\(([\d,]+) messages", sync).group(1).replace(",", ""))
    assert messages > 0
    # --no-results: the committed table is the real benchmark's, never a tiny run's.
    assert results.read_bytes() == before
