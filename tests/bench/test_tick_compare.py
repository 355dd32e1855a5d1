"""scripts/bench/tick_compare.py on a tiny brand, so that the side-by-side tick benchmark
cannot rot: HEAD against itself (an A/A run), one round. Both sides must prepare their own
worktree and warehouse, run a tick that writes the held-back day, and be reported. The base
runs the dbt of another bin/ folder (`--base-bin`, for comparing interpreters; here links
to this environment's), which its row must name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_tick_compare__head_against_itself_on_a_tiny_brand(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = subprocess.run(
        [str(Path(sys.executable).parent / "audiences"), "demo-data", "--out", str(data),
         "--people", "300", "--days", "20", "--seed", "1", "--end-date", "2026-06-30"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    root = tmp_path / "compare"
    other_bin = tmp_path / "other-bin"
    other_bin.mkdir()
    (other_bin / "python").symlink_to(Path(sys.executable))
    # A dbt that leaves a mark, so that the test sees the base's builds go through it.
    marks = tmp_path / "other-dbt-ran"
    wrapper = other_bin / "dbt"
    wrapper.write_text(
        f'#!/bin/sh\necho "$1" >> {marks}\n'
        f'exec {Path(sys.executable).parent / "dbt"} "$@"\n'
    )
    wrapper.chmod(0o755)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "scripts.bench.tick_compare", "--data", str(data),
             "--base", "HEAD", "--head", "HEAD", "--rounds", "1", "--root", str(root),
             "--base-bin", str(other_bin)],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        for worktree in root.glob("*/project"):
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)],
                cwd=REPO_ROOT, check=False, capture_output=True,
            )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| HEAD")]
    assert len(rows) == 2, run.stdout
    assert [f"dbt of {other_bin}" in row for row in rows] == [True, False], rows
    # The base's full build, its no-change tick, its parse and its timed tick.
    assert marks.read_text().split() == ["build", "build", "parse", "build"]
    assert "Nodes whose median time moved" in run.stdout
    # Each side's tick wrote the held-back day on top of its kept state.
    for side in ("base", "head"):
        (home,) = root.glob(f"{side}-*")
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:
            newest = db.execute(
                "select max(deduplicated_at) > min(deduplicated_at) "
                "from analytics.int_message_events_deduplicated"
            ).fetchone()[0]
        assert newest, side
