"""scripts/bench/tick_compare.py on a tiny brand, so that the side-by-side tick benchmark
cannot rot: HEAD against itself (an A/A run), one round. Both sides must prepare their own
worktree and warehouse, run a tick that writes the held-back day, and be reported."""

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
    try:
        run = subprocess.run(
            [sys.executable, "-m", "scripts.bench.tick_compare", "--data", str(data),
             "--base", "HEAD", "--head", "HEAD", "--rounds", "1", "--root", str(root)],
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
