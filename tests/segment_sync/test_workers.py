"""Several sending processes: a killed worker loses nothing and the rerun sends exactly
what it had not confirmed; a killed parent leaves no worker sending; --max-rps holds for
all workers combined."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.segment_sync import workers
from tests.segment_sync.conftest import Sync, expected_enters, transitions

AUDIENCE = "lapsed_buyers"
PARTIAL = 5
TWO_WORKERS = ["--workers", "2", "--batch-size", "20", "--group-size", "400"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _sending_children(parent: int) -> list[int]:
    """Live sending processes started by `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if (
            int(fields[1]) == parent
            and fields[0] != "Z"
            and b"scripts.segment_sync.workers" in cmdline
        ):
            found.append(int(entry))
    return sorted(found)


def _poll(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)  # polling interval of a condition with a deadline
    return condition()


def _held_with_two_workers(sync_cli: Sync, accept: bool) -> tuple[object, list[int]]:
    """Start a two-worker sync; return once the receiver parks a request of each."""
    sync_cli.receiver.set_faults(hold_after_batches=3, hold_accepts=accept)
    proc = sync_cli.popen(*TWO_WORKERS)
    # Both workers parked, each on its own request.
    assert sync_cli.receiver.wait_until(lambda s: s["held"] >= 2, 60)
    children = _sending_children(proc.pid)
    assert len(children) == 2
    return proc, children


def test_workers__auto_choice_by_plan_size():
    assert workers.choose_workers(None, 10) == 1
    assert workers.choose_workers(None, workers.AUTO_WORKERS_FROM - 1) == 1
    assert workers.choose_workers(None, 10**6) == min(2, os.cpu_count() or 1)
    assert workers.choose_workers(3, 10) == 3


def test_sync_segment__worker_killed_then_rerun_sends_exactly_the_missing(
    engine: str, sync_cli: Sync
):
    pairs = [(AUDIENCE, f"u{i:03d}") for i in range(200)]  # 400 messages, one group
    sync_cli.members(pairs)
    proc, (victim, _) = _held_with_two_workers(sync_cli, accept=True)
    try:
        os.kill(victim, signal.SIGKILL)
        assert _poll(lambda: not _alive(victim))
        sync_cli.receiver.release()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == PARTIAL, stderr
    assert "died" in stderr
    pending = {
        mid
        for (mid,) in sync_cli.query(
            "select message_id from segment_sync.outbox where status = 'pending'"
        )
    }
    sent = sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'sent'"
    )[0][0]
    assert pending
    assert sent
    assert len(pending) + sent == 400
    # Only whole transitions advance state: the survivor's people are in it.
    assert len(sync_cli.state()) == sent // 2
    first_ids = sync_cli.receiver.message_ids()
    # The killed worker's parked batch was accepted but never confirmed to us.
    assert pending & first_ids
    sync_cli.receiver.reset()

    rerun = sync_cli.run("--workers", "2", "--force")

    assert rerun.code == 0, rerun.stderr
    assert sync_cli.receiver.message_ids() == pending
    assert sync_cli.state() == set(pairs)
    everything = {
        mid for (mid,) in sync_cli.query("select message_id from segment_sync.outbox")
    }
    assert first_ids | pending == everything


def test_sync_segment__parent_killed_leaves_no_worker_sending(
    duck: str, sync_cli: Sync
):
    pairs = [(AUDIENCE, f"u{i:03d}") for i in range(200)]
    sync_cli.members(pairs)
    proc, children = _held_with_two_workers(sync_cli, accept=False)
    try:
        proc.kill()
        proc.wait(timeout=30)
        assert _poll(lambda: not any(_alive(pid) for pid in children))
    finally:
        sync_cli.receiver.release()
    requests = sync_cli.receiver.stats()["requests"]
    assert sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'sent'"
    ) == [(0,)]

    rerun = sync_cli.run("--workers", "2", "--force")

    assert rerun.code == 0, rerun.stderr
    assert sync_cli.receiver.stats()["requests"] > requests
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)


def test_sync_segment__max_rps_holds_across_workers(duck: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, f"u{i:02d}") for i in range(60)])  # 120 messages

    out = sync_cli.run("--workers", "2", "--batch-size", "10", "--max-rps", "8")

    assert out.code == 0, out.stderr
    assert "sending with 2 processes" in out.stdout
    times = sync_cli.receiver.request_times()
    assert len(times) >= 12
    # Each worker paces at 4/s, so any 9 consecutive requests span at least 1 s; two
    # workers at the full 8/s each would fit 9 into about half a second.
    spans = [b - a for a, b in zip(times, times[8:], strict=False)]
    assert min(spans) >= 0.9
    assert all(b >= a for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("count", ["1", "2"])
def test_sync_segment__sigterm_with_workers_drains_and_rerun_completes(
    duck: str, sync_cli: Sync, count: str
):
    pairs = [(AUDIENCE, f"u{i:03d}") for i in range(100)]
    sync_cli.members(pairs)
    sync_cli.receiver.set_faults(hold_after_batches=2, hold_accepts=False)
    proc = sync_cli.popen(
        "--workers", count, "--batch-size", "20", "--group-size", "40"
    )
    try:
        assert sync_cli.receiver.wait_holding(60)
        proc.send_signal(signal.SIGTERM)
        sync_cli.receiver.release()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == PARTIAL, stderr
    sent = sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'sent'"
    )[0][0]
    assert 0 < sent < 200
    assert len(sync_cli.state()) == sent // 2
    assert _sending_children(proc.pid) == []

    assert sync_cli.run("--workers", count, "--force").code == 0
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)
