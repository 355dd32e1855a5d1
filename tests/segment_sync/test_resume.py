"""Issue 8 §3: the schedule never stalls on the sync's own leftovers.

After a `--limit` run or a SIGTERM mid-run, the next plain run resumes without `--force`:
guardrails judge the new build against what earlier accepted plans decided (pending
messages and limited-out transitions included), not against what Segment confirmed so
far. Tables written by the first, unversioned schema are upgraded in place."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

import pytest

from scripts.segment_sync import outbox
from scripts.warehouse import Warehouse, connect
from tests.segment_sync import inputs
from tests.segment_sync.conftest import Sync, expected_enters, transitions

AUDIENCE = "recent_purchasers"
REFUSED, PARTIAL = 3, 5
SMALL_BATCHES = ["--batch-size", "20", "--group-size", "40"]


def _users(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(AUDIENCE, f"{prefix}{i:03d}") for i in range(count)]


def test_sync_segment__limit_run_then_plain_run_resumes(engine: str, sync_cli: Sync):
    everyone = _users("u", 300)
    sync_cli.members(everyone)

    first = sync_cli.run("--limit", "150")

    assert first.code == 0, first.stderr
    assert len(sync_cli.state()) == 150
    # Confirmed: 150; the build decided 300. Judged against the confirmed 150 this
    # would be a 100% change and refused (the reproduction).
    resumed = sync_cli.run()

    assert resumed.code == 0, resumed.stderr
    assert "max_change" not in resumed.stderr
    assert (
        "note: recent_purchasers: earlier runs decided 300 member(s), 150 confirmed so "
        "far" in resumed.stdout
    )
    assert sync_cli.state() == set(everyone)
    assert transitions(sync_cli.receiver) == expected_enters(everyone)
    assert sync_cli.receiver.stats()["distinct_ids"] == 600

    # The guard still judges what a *new* build decides: +200 on 300 decided is 67%.
    sync_cli.members(everyone + _users("n", 200))
    grown = sync_cli.run()
    assert grown.code == REFUSED
    assert "recent_purchasers would change by 67% (200 enter, 0 exit, 300" in (
        grown.stderr
    )


def test_sync_segment__refused_build_is_not_recorded_as_decided(
    duck: str, sync_cli: Sync
):
    base = _users("u", 100)
    sync_cli.members(base)
    assert sync_cli.run().code == 0
    sync_cli.members(base + _users("n", 60))
    assert sync_cli.run().code == REFUSED

    # The refused build changed nothing: the same build is refused again, and a build
    # back within the limit passes.
    assert sync_cli.run().code == REFUSED
    sync_cli.members(base + _users("n", 50))
    assert sync_cli.run().code == 0
    assert sync_cli.state() == set(base + _users("n", 50))


def test_sync_segment__sigterm_then_plain_run_resumes(duck: str, sync_cli: Sync):
    base = _users("u", 100)
    sync_cli.members(base)
    assert sync_cli.run().code == 0
    everyone = base + _users("n", 200)
    sync_cli.members(everyone)
    sync_cli.receiver.set_faults(
        hold_after_batches=sync_cli.receiver.stats()["accepted_batches"] + 2,
        hold_accepts=False,
    )
    # 200% growth, accepted once by the operator; then SIGTERM after two batches.
    proc = sync_cli.popen("--force", *SMALL_BATCHES)
    try:
        assert sync_cli.receiver.wait_holding(60)
        proc.send_signal(signal.SIGTERM)
        sync_cli.receiver.release()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == PARTIAL, stderr
    assert sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'pending'"
    )[0][0]
    confirmed = len(sync_cli.state())
    assert 100 < confirmed < 200  # far from done: vs confirmed it looks like > 50%

    resumed = sync_cli.run()

    assert resumed.code == 0, resumed.stderr
    assert "max_change" not in resumed.stderr
    assert sync_cli.state() == set(everyone)
    assert transitions(sync_cli.receiver) == expected_enters(everyone)


# The first, unversioned layout of the sync's tables (before `schema_version`), as
# warehouses that synced before the upgrade hold them. Kept literally: the migration
# must upgrade exactly this.
V1_TABLES = [
    "create schema if not exists segment_sync",
    "create table segment_sync.installation ("
    "installation_id varchar primary key, created_at timestamp not null)",
    """create table segment_sync.audience_state (
        audience_key varchar not null, user_id varchar not null,
        audience_name varchar, audience_version integer, is_member boolean not null,
        generation integer not null, entered_at timestamp, exited_at timestamp,
        exit_reason varchar, last_transition_id varchar, last_run_id varchar,
        updated_at timestamp not null, primary key (audience_key, user_id))""",
    """create table segment_sync.outbox (
        message_id varchar not null, seq bigint not null, transition_id varchar not null,
        run_id varchar not null, audience_key varchar not null, audience_name varchar,
        audience_version integer, person_id varchar, user_id varchar not null,
        transition varchar not null, generation integer not null,
        is_member boolean not null, exit_reason varchar, occurred_at timestamp not null,
        call_type varchar not null, status varchar not null, attempts integer not null,
        last_error varchar, created_at timestamp not null, sent_at timestamp)""",
    """create table segment_sync.dead_letters (
        message_id varchar primary key, transition_id varchar not null,
        run_id varchar not null, audience_key varchar not null, user_id varchar not null,
        call_type varchar not null, reason varchar not null, attempts integer not null,
        payload {json}, dead_lettered_at timestamp not null)""",
    """create table segment_sync.runs (
        run_id varchar primary key, target_name varchar not null,
        started_at timestamp not null, finished_at timestamp, status varchar not null,
        exit_code integer, is_forced boolean not null, is_full_resync boolean not null,
        audiences varchar, count_planned bigint not null default 0,
        count_sent bigint not null default 0, count_failed bigint not null default 0,
        count_dead_lettered bigint not null default 0,
        count_skipped_missing_user_id bigint not null default 0,
        count_deferred bigint not null default 0, error varchar)""",
    """create table segment_sync.lock (
        lock_name varchar primary key, owner_token varchar not null, run_id varchar,
        pid integer not null, hostname varchar not null,
        acquired_at timestamp not null, heartbeat_at timestamp not null)""",
]


def test_sync_segment__v1_tables_upgraded_in_place(engine: str, sync_cli: Sync):
    """A warehouse synced by the unversioned code: 100 members confirmed, 60 entries
    planned and interrupted (pending). The new code upgrades the tables, keeps every
    row, resends the pending messages with their stored ids, and needs no --force."""
    base = _users("u", 100)
    joiners = _users("n", 60)
    sync_cli.members(base + joiners)
    now = outbox.now_utc()
    with sync_cli.wh() as wh:
        for statement in V1_TABLES:
            wh.execute(statement.format(json=wh.json_type))
        wh.execute(
            "insert into segment_sync.installation values (%s, %s)", ("abc123", now)
        )
        wh.executemany(
            "insert into segment_sync.audience_state values "
            "(%s, %s, %s, 1, true, 1, %s, null, null, %s, 'old-run', %s)",
            [(k, u, "Recent Purchasers", now, f"t-{u}", now) for k, u in base],
        )
        outbox_rows = []
        for number, (key, user) in enumerate(joiners):
            for offset, call in enumerate(("identify", "track")):
                outbox_rows.append(
                    (
                        f"ea-v1-{call}-{user}",
                        2 * number + offset + 1,
                        f"ea-v1-identify-{user}",
                        "old-run",
                        key,
                        "Recent Purchasers",
                        f"p-{user}",
                        user,
                        now - timedelta(hours=1),
                        call,
                        now,
                    )
                )
        wh.executemany(
            "insert into segment_sync.outbox values (%s, %s, %s, %s, %s, %s, 1, %s, "
            "%s, 'enter', 1, true, null, %s, %s, 'pending', 0, null, %s, null)",
            outbox_rows,
        )
        wh.execute(
            "insert into segment_sync.runs (run_id, target_name, started_at, "
            "finished_at, status, exit_code, is_forced, is_full_resync) values "
            "('old-run', 'dev', %s, %s, 'interrupted', 5, true, false)",
            (now - timedelta(hours=2), now - timedelta(hours=2)),
        )
        assert outbox.schema_version(wh) == 1

    out = sync_cli.run()

    assert out.code == 0, out.stderr
    with sync_cli.wh() as wh:
        assert outbox.schema_version(wh) == outbox.SCHEMA_VERSION
    assert sync_cli.query("select installation_id from segment_sync.installation") == [
        ("abc123",)
    ]
    assert sync_cli.query(
        "select status, exit_code from segment_sync.runs where run_id = 'old-run'"
    ) == [("interrupted", 5)]
    assert sync_cli.query(
        "select count(*) from segment_sync.audience_state where last_run_id = 'old-run'"
    ) == [(100,)]
    # The pending v1 rows were sent with the ids they were stored with.
    assert sync_cli.receiver.message_ids() == {row[0] for row in outbox_rows}
    assert sync_cli.state() == set(base + joiners)
    # Running the upgraded code again migrates nothing and changes nothing.
    assert sync_cli.run().code == 0
    assert sync_cli.query("select count(*) from segment_sync.schema_version") == [(1,)]
    # v3/v4: every v1 outbox row is still there, without an email or a phone (planned
    # without them); the old run's row reads zero for the counts v1 did not have, and
    # the new runs recorded theirs.
    assert sync_cli.query(
        "select count(*), count(email), count(phone) from segment_sync.outbox "
        "where run_id = 'old-run'"
    ) == [(len(outbox_rows), 0, 0)]
    assert sync_cli.query(
        "select count_skipped_missing_identifier, count_skipped_duplicate_identity "
        "from segment_sync.runs where run_id = 'old-run'"
    ) == [(0, 0)]
    assert sync_cli.query(
        "select count(*) from segment_sync.runs where run_id <> 'old-run' "
        "and count_skipped_missing_identifier = 0 "
        "and count_skipped_duplicate_identity = 0"
    ) == [(2,)]
    # The upgrade path ends with exactly the tables a first run creates.
    with sync_cli.wh() as wh:
        upgraded = _sync_columns(wh)
        wh.execute("drop schema segment_sync cascade")
        outbox.ensure(wh)
        assert _sync_columns(wh) == upgraded
    assert {"email", "phone"} <= {c[1] for c in upgraded if c[0] == "outbox"}


def _sync_columns(wh: Warehouse) -> list[tuple]:
    """(table, column, type, nullable, default) of every segment_sync column."""
    return [
        tuple(row)
        for row in wh.query(
            "select table_name, column_name, data_type, is_nullable, column_default "
            "from information_schema.columns where table_schema = 'segment_sync' "
            "order by table_name, column_name"
        )
    ]


def test_sync_segment__dry_run_on_v1_tables_migrates_nothing(duck: str, sync_cli: Sync):
    sync_cli.members(_users("u", 3))
    with sync_cli.wh() as wh:
        for statement in V1_TABLES:
            wh.execute(statement.format(json=wh.json_type))

    out = sync_cli.run("--dry-run", write_key=None)

    assert out.code == 0, out.stderr
    with sync_cli.wh() as wh:
        assert outbox.schema_version(wh) == 1
        assert not wh.table_exists("segment_sync", "decided")


def test_sync_segment__newer_tables_refused(duck: str, sync_cli: Sync):
    sync_cli.members(_users("u", 3))
    assert sync_cli.run().code == 0
    with sync_cli.wh() as wh:
        wh.execute(
            "insert into segment_sync.schema_version values (%s, %s)",
            (outbox.SCHEMA_VERSION + 1, inputs.utc_now()),
        )

    out = sync_cli.run()

    assert out.code == 1
    assert "newer than this code" in out.stderr


@pytest.mark.postgres
def test_sync_segment__simultaneous_first_runs_migrate_once(
    postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    """Two syncs starting together on a fresh PostgreSQL database: one creates the tables
    and the installation id, the other waits for it and uses the same id."""
    monkeypatch.setenv("AUDIENCES_TARGET", "postgres")
    holder = connect()
    results: list[str] = []
    errors: list[BaseException] = []

    def first_run() -> None:
        try:
            with connect() as wh:
                results.append(outbox.ensure(wh))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    with holder.transaction():
        holder.execute("select pg_advisory_xact_lock(%s)", (outbox.MIGRATION_LOCK_KEY,))
        threads = [threading.Thread(target=first_run) for _ in range(2)]
        for thread in threads:
            thread.start()
        # Both runs are queued on the lock before it is released (a condition, polled).
        deadline = time.monotonic() + 60
        while _advisory_waiters(holder) < 2:
            # A run that failed, or finished without waiting, says why at once.
            assert not errors, errors
            assert all(thread.is_alive() for thread in threads), (
                f"a run ended without waiting for the lock: {results}"
            )
            assert time.monotonic() < deadline, (
                f"the runs never reached the lock: {_advisory_waiters(holder)} waiting"
            )
    for thread in threads:
        thread.join(timeout=60)
    holder.close()

    assert not errors, errors
    assert len(results) == 2
    assert results[0] == results[1]
    with connect() as wh:
        assert wh.query("select count(*) from segment_sync.installation") == [(1,)]
        assert wh.query("select version from segment_sync.schema_version") == [
            (outbox.SCHEMA_VERSION,)
        ]


def _advisory_waiters(wh: Warehouse) -> int:
    return int(
        wh.scalar(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        )
    )
