"""A tick killed with -9 in the middle of a step: the step goes on, alone, and holds the
tick's lock until it ends, so the next tick does nothing instead of starting a second
writer beside it (the step is in its own process group, so the kill does not reach it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.run.lock import RunLockedError, exclusive
from tests.conftest import REPO_ROOT
from tests.segment_sync.conftest import Sync, expected_enters, transitions

AUDIENCE = "lapsed_buyers"
LOCKED = 4


def _tick(*args: str) -> list[str]:
    return [sys.executable, "-m", "scripts", "run", "--no-build", *args]


def _env(sync_cli: Sync, lock: Path) -> dict[str, str]:
    return {**os.environ, **sync_cli.env(), "AUDIENCES_RUN_LOCK": str(lock)}


def test_a_step_left_running_by_a_killed_tick_keeps_the_lock_until_it_ends(
    duck: str, sync_cli: Sync, tmp_path: Path
):
    pairs = [(AUDIENCE, f"u{i:04d}") for i in range(600)]
    sync_cli.members(pairs)
    lock = tmp_path / "run.lock"
    env = _env(sync_cli, lock)
    sync_cli.receiver.set_faults(hold_after_batches=1, hold_accepts=False)
    tick = subprocess.Popen(
        _tick(),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sync_cli.receiver.wait_holding(120)  # its sync step is sending
        tick.kill()
        tick.wait(timeout=30)

        second = subprocess.run(
            _tick("--no-sync"),
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == LOCKED, second.stderr
        assert "or a step it started" in second.stderr
    finally:
        sync_cli.receiver.release()

    deadline = time.monotonic() + 120
    while True:  # until the orphaned step ends and the kernel drops its lock
        try:
            with exclusive(lock):
                break
        except RunLockedError:
            assert time.monotonic() < deadline, "the orphaned step never ended"
            time.sleep(0.05)

    # It finished its work with nobody reading its output, and recorded what it did.
    assert sync_cli.query(
        "select status, count_sent, count_planned from segment_sync.runs"
    ) == [("ok", 2 * len(pairs), 2 * len(pairs))]
    third = subprocess.run(
        _tick(), cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert third.returncode == 0, third.stderr
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)
