"""scripts/bench/tick_compare.py on a tiny brand, so that the side-by-side tick benchmark
cannot rot: HEAD against itself (an A/A run), one round. Both sides must prepare their own
worktree and warehouse, run a tick that writes the held-back day, and be reported. The base
runs the dbt of another bin/ folder (`--base-bin`, for comparing interpreters; here links
to this environment's), which its row must name, over a longer history of the same brand
(`--base-data`, for how the tick grows with the history). Each side's kept state is
reused only for the data it was built from (checked on the kept states, without a second
run: that would build the base again, about 30 s). With `--loop`, the head's tick on its
kept state is timed as the loop of `audiences run --every` builds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from scripts.bench import tick_compare

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _demo_data(out: Path, days: int) -> Path:
    made = subprocess.run(
        [str(Path(sys.executable).parent / "audiences"), "demo-data", "--out", str(out),
         "--people", "300", "--days", str(days), "--seed", "1",
         "--end-date", "2026-06-30"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


def _remove_worktrees(root: Path) -> None:
    """The worktrees tick_compare checked out under `root`, removed from the repository."""
    for worktree in root.glob("*/project"):
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)],
            cwd=REPO_ROOT, check=False, capture_output=True,
        )  # fmt: skip


def test_tick_compare__head_against_itself_on_a_tiny_brand(tmp_path: Path) -> None:
    data = _demo_data(tmp_path / "data", days=20)
    longer = _demo_data(tmp_path / "data-longer", days=40)  # the same brand, longer
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
    compare = [
        sys.executable, "-m", "scripts.bench.tick_compare", "--data", str(data),
        "--base", "HEAD", "--head", "HEAD", "--root", str(root),
        "--base-bin", str(other_bin), "--base-data", str(longer),
    ]  # fmt: skip
    try:
        run = subprocess.run(
            [*compare, "--rounds", "1"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        (base_home,) = root.glob("base-*")
        (head_home,) = root.glob("head-*")
        # Each side's tick wrote the held-back day on its kept state, from its own data.
        events = {}
        for side, home in (("base", base_home), ("head", head_home)):
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:
                newest, events[side] = db.execute(
                    "select max(deduplicated_at) > min(deduplicated_at), count(*) "
                    "from analytics.int_message_events_deduplicated"
                ).fetchone()
            assert newest, side
        assert events["base"] > events["head"], events
        # `--loop` reaches both sides (checked with no round: the kept states are
        # reused, nothing is built), and the head's tick as the loop builds it, forked
        # by the revision's own warm_build, not run by the dbt executable.
        prepared = subprocess.run(
            [*compare, "--rounds", "0", "--loop"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert prepared.returncode == 0, (
            prepared.stdout[-4000:] + prepared.stderr[-4000:]
        )
        assert prepared.stdout.count(", forked as the loop builds") == 2, (
            prepared.stdout
        )
        looped = tick_compare.Version("HEAD", root, "head", loop=True)

        def dbt_command(*args: object, **kwargs: object) -> None:
            pytest.fail(f"the loop's tick ran the dbt command: {args}")

        looped.dbt = dbt_command  # the loop's tick never runs it
        forked = looped.tick()
        assert 0 < forked["wall"] < 120, forked
        assert forked["cpu"] > 0, forked
        assert "int_message_events_deduplicated" in forked["nodes"], forked
    finally:
        _remove_worktrees(root)
    rows = [line for line in run.stdout.splitlines() if line.startswith("| HEAD")]
    assert len(rows) == 2, run.stdout
    assert [f"dbt of {other_bin}" in row for row in rows] == [True, False], rows
    assert [f"on {longer} |" in row for row in rows] == [True, False], rows
    assert [f"on {data} |" in row for row in rows] == [False, True], rows
    # The base's full build, its no-change tick, its parse and its timed tick; the loop's
    # run built nothing through the dbt executable.
    assert marks.read_text().split() == ["build", "build", "parse", "build"]
    assert "Nodes whose median time moved" in run.stdout
    assert not any("forked" in row for row in rows), rows
    # Each side keeps its state for the data it was built from, and only for that.
    base = tick_compare.Version("HEAD", root, "base")
    head = tick_compare.Version("HEAD", root, "head")
    assert (base.home, head.home) == (base_home, head_home)
    assert [base.kept_state_is_from(d) for d in (longer, data)] == [True, False]
    assert [head.kept_state_is_from(d) for d in (longer, data)] == [False, True]
    head.marks.unlink()  # a state without its key-check mark is not whole: made again
    assert not head.kept_state_is_from(data)


def test_tick_compare_refuses_a_folder_that_is_not_demo_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "webhooks").mkdir(parents=True)
    not_data = tmp_path / "elsewhere"
    not_data.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "scripts.bench.tick_compare", "--data", str(data),
         "--base", "HEAD", "--base-data", str(not_data), "--root", str(tmp_path / "c")],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert f"{not_data} is not `audiences demo-data` output" in refused.stderr
    assert not (tmp_path / "c").exists()  # refused before any worktree or warehouse


def test_tick_compare_loop_refuses_a_revision_without_warm_build(
    tmp_path: Path,
) -> None:
    """`--loop` on a revision older than scripts/bench/warm_build.py (added in ab7fb02):
    refused before any warehouse is built."""
    data = tmp_path / "data"
    (data / "webhooks").mkdir(parents=True)
    root = tmp_path / "c"
    try:
        refused = subprocess.run(
            [sys.executable, "-m", "scripts.bench.tick_compare", "--data", str(data),
             "--base", "ab7fb02~1", "--loop", "--root", str(root)],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        _remove_worktrees(root)
    assert refused.returncode == 2, refused.stderr
    assert "has no scripts/bench/warm_build.py" in refused.stderr
    assert not list(root.glob("*/warehouse.duckdb"))
    assert "preparing" not in refused.stdout
