"""One sync at a time, stale locks recovered, SIGTERM drains cleanly, and kill -9 at many
points followed by reruns delivers every transition exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from scripts.segment_sync import outbox
from tests.segment_sync import inputs
from tests.segment_sync.conftest import Sync, expected_enters, transitions

AUDIENCE = "lapsed_buyers"
LOCKED, PARTIAL = 4, 5
SMALL_BATCHES = ["--batch-size", "20", "--group-size", "40"]


def _insert_lock(
    sync_cli: Sync, pid: int, hostname: str, heartbeat_age: timedelta
) -> None:
    now = outbox.now_utc()
    with sync_cli.wh() as wh:
        wh.execute(
            "insert into segment_sync.lock values (%s, %s, %s, %s, %s, %s, %s)",
            (
                "segment_sync",
                "other-token",
                "other-run",
                pid,
                hostname,
                now,
                now - heartbeat_age,
            ),
        )


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_sync_segment__live_lock_blocks_second_sync(engine: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, "a")])
    assert sync_cli.run().code == 0
    sync_cli.members([(AUDIENCE, "a"), (AUDIENCE, "b")])
    _insert_lock(sync_cli, os.getpid(), os.uname().nodename, timedelta(0))

    out = sync_cli.run()

    assert out.code == LOCKED
    assert "another sync is running" in out.stderr
    assert sync_cli.state() == {(AUDIENCE, "a")}
    assert sync_cli.query(
        "select status from segment_sync.runs order by started_at desc limit 1"
    ) == [("lock_held",)]


@pytest.mark.parametrize(
    ("where", "heartbeat_age", "recovered"),
    [
        ("dead pid on this host", timedelta(0), True),
        ("other host, old heartbeat", timedelta(hours=2), True),
        ("other host, fresh heartbeat", timedelta(minutes=1), False),
    ],
)
def test_sync_segment__stale_lock_recovered(
    duck: str, sync_cli: Sync, where: str, heartbeat_age: timedelta, recovered: bool
):
    sync_cli.members([(AUDIENCE, "a")])
    assert sync_cli.run().code == 0
    sync_cli.members([(AUDIENCE, "a"), (AUDIENCE, "b")])
    host = os.uname().nodename if where.startswith("dead") else "elsewhere.example"
    _insert_lock(
        sync_cli, _dead_pid() if where.startswith("dead") else 4242, host, heartbeat_age
    )

    out = sync_cli.run()

    if recovered:
        assert out.code == 0, out.stderr
        assert sync_cli.state() == {(AUDIENCE, "a"), (AUDIENCE, "b")}
        assert sync_cli.query("select count(*) from segment_sync.lock") == [(0,)]
    else:
        assert out.code == LOCKED
        assert "elsewhere.example" in out.stderr


def test_sync_segment__duckdb_file_in_use_is_lock_held(
    duck: str, sync_cli: Sync, duckdb_path
):
    sync_cli.members([(AUDIENCE, "a")])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(duckdb_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        out = sync_cli.run()
    finally:
        holder.communicate("")
    assert out.code == LOCKED
    assert "another process holds the warehouse file" in out.stderr


def test_sync_segment__sigterm_finishes_group_and_rerun_completes(
    duck: str, sync_cli: Sync
):
    pairs = [(AUDIENCE, f"u{i:03d}") for i in range(100)]
    sync_cli.members(pairs)
    sync_cli.receiver.set_faults(hold_after_batches=2, hold_accepts=False)
    proc = sync_cli.popen(*SMALL_BATCHES)
    try:
        assert sync_cli.receiver.wait_holding(60)
        proc.send_signal(signal.SIGTERM)
        sync_cli.receiver.release()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == PARTIAL, stderr
    assert "received signal" in stderr
    assert sync_cli.query("select status from segment_sync.runs") == [("interrupted",)]
    sent = sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'sent'"
    )[0][0]
    assert 0 < sent < 200
    assert len(sync_cli.state()) == sent // 2
    assert sync_cli.query("select count(*) from segment_sync.lock") == [(0,)]

    assert sync_cli.run().code == 0
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)


def _kill_at(sync_cli: Sync, batches: int, accept: bool) -> bool:
    """Start a real sync and SIGKILL it while its request number `batches`+1 is in flight
    (the receiver parks it; `accept` decides whether Segment "got" that batch first).

    Returns False when the sync finished before reaching that request."""
    rec = sync_cli.receiver
    rec.set_faults(
        hold_after_batches=rec.stats()["accepted_batches"] + batches,
        hold_accepts=accept,
    )
    proc = sync_cli.popen("--force", *SMALL_BATCHES)
    try:
        while not rec.wait_holding(0.05):
            if proc.poll() is not None:
                return False
        proc.kill()
        proc.wait(timeout=30)
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        rec.release()


def test_sync_segment__killed_run_marked_abandoned_by_next_run(
    engine: str, sync_cli: Sync
):
    pairs = [(AUDIENCE, f"u{i:03d}") for i in range(60)]
    sync_cli.members(pairs)
    assert _kill_at(sync_cli, 1, accept=True)
    killed = sync_cli.query("select run_id, status from segment_sync.runs")
    assert [status for _, status in killed] == ["running"]
    assert sync_cli.query("select count(*) from segment_sync.lock") == [(1,)]

    out = sync_cli.run()

    assert out.code == 0, out.stderr
    assert "marked 1 earlier run(s) that never finished abandoned" in out.stdout
    runs = dict(sync_cli.query("select run_id, status from segment_sync.runs"))
    assert runs.pop(killed[0][0]) == "abandoned"
    assert list(runs.values()) == ["ok"]
    assert sync_cli.state() == set(pairs)
    # A run that finds nothing left behind marks nothing.
    again = sync_cli.run()
    assert "abandoned" not in again.stdout
    assert sync_cli.query(
        "select count(*) from segment_sync.runs where status = 'abandoned'"
    ) == [(1,)]


def _kill_repeatedly(sync_cli: Sync, rng: random.Random, count: int) -> int:
    kills = 0
    for _ in range(3 * count):
        if kills == count:
            break
        kills += _kill_at(sync_cli, rng.randrange(0, 4), rng.random() < 0.5)
    return kills


@pytest.mark.slow
def test_sync_segment__kill_9_at_ten_points_then_exactly_once(
    duck: str, sync_cli: Sync
):
    rng = random.Random(20261130)
    phase1 = [(AUDIENCE, f"u{i:03d}") for i in range(120)]  # 240 messages, 12 batches
    sync_cli.members(phase1)
    kills = _kill_repeatedly(sync_cli, rng, 5)

    # Phase 2: 40 leave (half with a reason), 60 join; five more kills.
    stay = phase1[40:]
    joiners = [(AUDIENCE, f"n{i:03d}") for i in range(60)]
    sync_cli.members(stay + joiners)
    with sync_cli.wh() as wh:
        inputs.set_exits(wh, [(AUDIENCE, u, "converted") for _, u in phase1[:20]])
    kills += _kill_repeatedly(sync_cli, rng, 5)
    assert kills >= 10

    sync_cli.receiver.set_faults(error_rate=0.2, seed=3)
    codes = [sync_cli.run("--force", *SMALL_BATCHES).code for _ in range(3)]
    assert 0 in codes

    expected = expected_enters(phase1 + joiners)
    for i, (key, user) in enumerate(phase1[:40]):
        reason = "converted" if i < 20 else "window_expired"
        expected += [
            ("identify", user, key, False),
            ("Audience Exited", user, key, reason),
        ]
    assert transitions(sync_cli.receiver) == sorted(expected, key=repr)
    stats = sync_cli.receiver.stats()
    assert stats["distinct_ids"] == len(expected)
    assert stats["deliveries"] > stats["distinct_ids"]  # crashes did cause resends
    assert sync_cli.state() == set(stay + joiners)
    sync_cli.receiver.set_faults(error_rate=0.0)
    requests = sync_cli.receiver.stats()["requests"]
    assert sync_cli.run().code == 0
    assert sync_cli.receiver.stats()["requests"] == requests
