"""The outbox's operations, called directly on a real DuckDB file: schema and migrations,
the staged views, enqueue's ids and seq numbers, and every state change of a message
(pending -> sent | dead -> pending), of audience_state, of runs and of the lock row.

Each case asserts exact rows, so a changed comparison, column or count in outbox.py
fails here in milliseconds; the same rules end to end, through the real command and a
receiver, are in test_sync_core.py, test_resume.py and test_lock_and_crashes.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts.segment_sync import outbox, payloads
from scripts.segment_sync.outbox import DeadLetter, MessageDetails, RunOutcome
from scripts.segment_sync.outcomes import GroupOutcome
from scripts.warehouse import Warehouse, connect

AT = datetime(2026, 12, 1, 12, 0, 0)
OCCURRED = datetime(2026, 12, 1, 9, 30, 15, 250000)
INSTALLATION = "inst01"
A, B = "lapsed_buyers", "cart_clickers"


@pytest.fixture
def wh(duckdb_path: Path) -> Iterator[Warehouse]:
    with connect() as warehouse:
        yield warehouse


def make_plan(wh: Warehouse, rows: list[dict]) -> None:
    """A `sync_plan` as plan.build_plan leaves it (the columns enqueue reads)."""
    wh.execute("drop table if exists sync_plan")
    wh.execute(
        "create temp table sync_plan (audience_key varchar, audience_name varchar, "
        "audience_version integer, person_id varchar, user_id varchar, "
        "transition varchar, generation integer, is_member boolean, exit_reason varchar, "
        "occurred_at timestamp, email varchar, phone varchar, segment_calls varchar, "
        "is_blocked boolean)"
    )
    for row in rows:
        transition = row.get("transition", "enter")
        values = {
            "audience_name": row["audience_key"].title(),
            "audience_version": 2,
            "person_id": f"p-{row['user_id']}",
            "transition": transition,
            "generation": 1,
            "is_member": transition == "enter",
            "exit_reason": None if transition == "enter" else "gone",
            "occurred_at": OCCURRED,
            "email": None,
            "phone": None,
            "segment_calls": "both",
            "is_blocked": False,
            **row,
        }
        names = list(values)
        wh.execute(
            f"insert into sync_plan ({', '.join(names)}) values "
            f"({', '.join(['%s'] * len(names))})",
            [values[name] for name in names],
        )


def enqueue(wh: Warehouse, *, run_id: str = "run1", limit: int | None = None) -> int:
    return outbox.enqueue(
        wh, installation_id=INSTALLATION, run_id=run_id, created_at=AT, limit=limit
    )


def outbox_rows(wh: Warehouse, columns: str) -> list[tuple]:
    return wh.query(f"select {columns} from {outbox.OUTBOX} order by seq")


def mid(
    key: str,
    transition: str,
    call: str,
    user: str,
    generation: int = 1,
    nonce: str = "",
) -> str:
    return payloads.message_id(
        INSTALLATION, key, transition, generation, nonce, call, user
    )


def state(wh: Warehouse) -> list[tuple]:
    return wh.query(
        "select audience_key, user_id, is_member, generation, entered_at, exited_at, "
        f"exit_reason, last_transition_id, last_run_id from {outbox.AUDIENCE_STATE} "
        "order by 1, 2"
    )


# ------------------------------------------------------------------ small parts
def test_audience_predicate_and_literal():
    assert outbox.audience_predicate("k", []) == ("true", [])
    assert outbox.audience_predicate("k", [A, B]) == ("k in (%s, %s)", [A, B])
    assert outbox._literal("run_1-ab") == "'run_1-ab'"
    for bad in ("", "a'b", "a b"):
        with pytest.raises(ValueError, match="unexpected characters"):
            outbox._literal(bad)


def test_in_list__one_array_parameter_per_engine(wh: Warehouse):
    """PostgreSQL takes `= any(array)`; DuckDB unnests the list. The PostgreSQL text is
    pinned here (no server in this fast file; test_sync_core.py runs it for real)."""
    postgres = SimpleNamespace(dialect="postgres")  # _in_list reads only the dialect
    assert outbox._in_list(postgres, "message_id") == "message_id = any(%s)"  # type: ignore[arg-type]
    assert outbox._in_list(wh, "message_id") == "message_id in (select unnest(%s))"


def test_now_utc_is_naive_utc_whatever_the_machine_s_zone(
    monkeypatch: pytest.MonkeyPatch,
):
    import time
    from datetime import UTC

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        now = outbox.now_utc()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert now.tzinfo is None
    assert abs(datetime.now(UTC).replace(tzinfo=None) - now) < timedelta(seconds=5)


def test_exists_needs_both_the_outbox_and_the_state(wh: Warehouse):
    wh.ensure_schema(outbox.SCHEMA)
    wh.execute(f"create table {outbox.OUTBOX} ({outbox.OUTBOX_COLUMNS})")

    assert not outbox.exists(wh)
    assert outbox.schema_version(wh) == 0


# ------------------------------------------------------------------ schema
def test_ensure__creates_the_current_tables_once_with_one_installation_id(
    wh: Warehouse,
):
    assert outbox.schema_version(wh) == 0
    assert not outbox.exists(wh)

    first = outbox.ensure(wh)

    assert len(first) == 16
    assert int(first, 16) >= 0  # hex
    assert outbox.exists(wh)
    assert outbox.schema_version(wh) == outbox.SCHEMA_VERSION == 5
    assert outbox.ensure(wh) == first
    assert wh.query(f"select version from {outbox.SCHEMA_VERSION_TABLE}") == [(5,)]
    assert wh.scalar(f"select count(*) from {outbox.INSTALLATION}") == 1
    columns = {
        r[0]
        for r in wh.query(
            "select column_name from information_schema.columns "
            "where table_schema = 'segment_sync' and table_name = 'outbox'"
        )
    }
    assert {"email", "phone", "transition_id", "seq"} <= columns
    assert wh.table_exists("segment_sync", "decided")


def test_ensure__refuses_tables_newer_than_the_code(wh: Warehouse):
    outbox.ensure(wh)
    wh.execute(f"insert into {outbox.SCHEMA_VERSION_TABLE} values (6, %s)", (AT,))

    with pytest.raises(RuntimeError) as newer:
        outbox.ensure(wh)

    assert str(newer.value) == (
        "segment_sync tables are at schema version 6, newer than this code (5); "
        "upgrade the project before syncing"
    )


@pytest.mark.parametrize("dropped", ["outbox", "runs"])
def test_ensure__a_schema_with_a_table_dropped_is_named_not_migrated_again(
    wh: Warehouse, dropped: str
):
    """It read as "no tables yet" (outbox gone) and the migrations then failed on the
    tables still there: `Column with name ... already exists!`."""
    outbox.ensure(wh)
    wh.execute(f"drop table {outbox.SCHEMA}.{dropped}")

    with pytest.raises(RuntimeError) as damaged:
        outbox.ensure(wh)

    assert str(damaged.value) == (
        f"segment_sync is missing {dropped}, which its schema_version says it has: "
        "restore the schema from a backup; or, to start over, drop schema segment_sync "
        "(every member is then sent again, under new message ids)"
    )


def _v1_warehouse(wh: Warehouse) -> None:
    """Tables as the unversioned code left them: state, a pending and a sent history."""
    wh.ensure_schema(outbox.SCHEMA)
    outbox._create_v1(wh)
    wh.execute(f"insert into {outbox.INSTALLATION} values ('old0', %s)", (AT,))
    wh.execute(
        f"insert into {outbox.INSTALLATION} values ('new0', %s)",
        (AT + timedelta(days=1),),
    )
    for user, member in (("settled", True), ("leaving", True), ("former", False)):
        wh.execute(
            f"insert into {outbox.AUDIENCE_STATE} (audience_key, user_id, is_member, "
            "generation, updated_at) values (%s, %s, %s, 1, %s)",
            (A, user, member, AT),
        )
    rows = [
        # seq, user, transition, is_member, status
        (1, "leaving", "enter", True, "sent"),
        (2, "leaving", "exit", False, "pending"),  # its latest unsent: an exit
        (3, "joining", "enter", True, "dead"),  # unsent enter: decided
        (4, "former", "resync", False, "pending"),  # resyncs decide nothing
        (5, "late", "enter", True, "pending"),
        (6, "late", "exit", False, "pending"),  # the latest unsent wins
        (7, "back", "exit", False, "pending"),
        (8, "back", "enter", True, "pending"),
    ]
    for seq, user, transition, member, status in rows:
        wh.execute(
            f"insert into {outbox.OUTBOX} (message_id, seq, transition_id, run_id, "
            "audience_key, user_id, transition, generation, is_member, occurred_at, "
            "call_type, status, attempts, created_at) values "
            "(%s, %s, %s, 'old', %s, %s, %s, 1, %s, %s, 'identify', %s, 0, %s)",
            (f"m{seq}", seq, f"m{seq}", A, user, transition, member, AT, status, AT),
        )
    wh.execute(
        f"insert into {outbox.RUNS} (run_id, target_name, started_at, status, "
        "is_forced, is_full_resync) values ('old', 'dev', %s, 'ok', false, false)",
        (AT,),
    )


V1_DECIDED = [(A, "back"), (A, "joining"), (A, "settled")]


def test_ensure__upgrades_v1_tables_and_rebuilds_what_was_decided(wh: Warehouse):
    _v1_warehouse(wh)
    assert outbox.schema_version(wh) == 1

    assert outbox.ensure(wh) == "old0"  # the earliest installation id is kept

    assert outbox.schema_version(wh) == 5
    assert (
        wh.query(f"select audience_key, user_id from {outbox.DECIDED} order by 2")
        == V1_DECIDED
    )
    assert wh.query(
        f"select count(*), count(email), count(phone) from {outbox.OUTBOX}"
    ) == [(8, 0, 0)]
    assert wh.query(
        "select count_skipped_missing_identifier, count_skipped_duplicate_identity "
        f"from {outbox.RUNS}"
    ) == [(0, 0)]


def test_stage__reads_history_on_v1_tables_without_migrating(wh: Warehouse):
    _v1_warehouse(wh)

    outbox.stage(wh)

    assert (
        wh.query("select audience_key, user_id from sync_decided order by 2")
        == V1_DECIDED
    )
    assert wh.query("select user_id from sync_unsent order by 1") == [
        ("back",),
        ("former",),
        ("joining",),
        ("late",),
        ("leaving",),
    ]
    assert wh.query(
        "select user_id, is_member, generation from sync_state order by 1"
    ) == [
        ("former", False, 1),
        ("leaving", True, 1),
        ("settled", True, 1),
    ]
    assert outbox.schema_version(wh) == 1


@pytest.mark.parametrize("version", [2, 3])
def test_stage__reads_the_decided_table_from_version_2_on(wh: Warehouse, version: int):
    """A dry run does not migrate: on v2 or v3 tables it must still read `decided`,
    which runs ahead of the history (a --limit run's leftovers are only there)."""
    _v1_warehouse(wh)
    for step in range(2, version + 1):
        outbox.MIGRATIONS[step](wh)
    wh.execute(
        f"create table {outbox.SCHEMA_VERSION_TABLE} (version integer, migrated_at timestamp)"
    )
    wh.execute(
        f"insert into {outbox.SCHEMA_VERSION_TABLE} values ({version}, %s)", (AT,)
    )
    wh.execute(f"insert into {outbox.DECIDED} values ('{A}', 'limited')")

    outbox.stage(wh)

    assert outbox.schema_version(wh) == version
    assert wh.query("select audience_key, user_id from sync_decided order by 2") == [
        *V1_DECIDED[:2],
        (A, "limited"),
        V1_DECIDED[2],
    ]


def test_stage__empty_views_before_the_first_run(wh: Warehouse):
    outbox.stage(wh)
    outbox.stage(wh)  # twice in a session: the views and temp tables are replaced

    for view in ("sync_state", "sync_unsent", "sync_decided"):
        assert wh.scalar(f"select count(*) from {view}") == 0
    assert not outbox.exists(wh)


def test_stage_and_decide__the_decided_table_on_current_tables(wh: Warehouse):
    outbox.ensure(wh)
    wh.execute(
        f"insert into {outbox.DECIDED} values ('{A}', 'u1'), ('{A}', 'u2'), ('{B}', 'u2')"
    )
    wh.execute(
        "create temp table sync_decision_delta as select * from (values "
        f"('{A}', 'u2', 'exit'), ('{A}', 'u3', 'enter'), ('{B}', 'u9', 'exit')) "
        "as t(audience_key, user_id, change)"
    )

    outbox.decide(wh)
    outbox.stage(wh)

    assert wh.query("select audience_key, user_id from sync_decided order by 1, 2") == [
        (B, "u2"),
        (A, "u1"),
        (A, "u3"),
    ]


# ------------------------------------------------------------------ enqueue
def test_enqueue__one_message_per_chosen_call_with_adjacent_seqs(wh: Warehouse):
    outbox.ensure(wh)
    make_plan(
        wh,
        [
            {"audience_key": A, "user_id": "u1", "email": "a@x", "phone": "+1"},
            {"audience_key": A, "user_id": "u2", "transition": "exit", "generation": 3},
            {"audience_key": B, "user_id": "u3", "segment_calls": "track"},
            {"audience_key": B, "user_id": "u4", "segment_calls": "identify"},
            {"audience_key": B, "user_id": "u5", "is_blocked": True},
        ],
    )

    added = enqueue(wh, limit=10)

    assert added == 6
    rows = outbox_rows(
        wh,
        "seq, message_id, transition_id, call_type, user_id, transition, generation, "
        "is_member, exit_reason, status, attempts, last_error, created_at, sent_at, "
        "run_id",
    )
    enter_u1 = mid(A, "enter", "identify", "u1")
    exit_u2 = mid(A, "exit", "identify", "u2", generation=3)
    pending = ("pending", 0, None, AT, None, "run1")
    # ordered by audience, transition, user: cart_clickers first. Transition r has
    # seqs 2r - 1 (identify) and 2r (track), whichever calls it sends.
    assert rows == [
        (
            2,
            mid(B, "enter", "track", "u3"),
            mid(B, "enter", "track", "u3"),
            "track",
            "u3",
            "enter",
            1,
            True,
            None,
            *pending,
        ),
        (
            3,
            mid(B, "enter", "identify", "u4"),
            mid(B, "enter", "identify", "u4"),
            "identify",
            "u4",
            "enter",
            1,
            True,
            None,
            *pending,
        ),
        (5, enter_u1, enter_u1, "identify", "u1", "enter", 1, True, None, *pending),
        (
            6,
            mid(A, "enter", "track", "u1"),
            enter_u1,
            "track",
            "u1",
            "enter",
            1,
            True,
            None,
            *pending,
        ),
        (7, exit_u2, exit_u2, "identify", "u2", "exit", 3, False, "gone", *pending),
        (
            8,
            mid(A, "exit", "track", "u2", generation=3),
            exit_u2,
            "track",
            "u2",
            "exit",
            3,
            False,
            "gone",
            *pending,
        ),
    ]
    assert wh.query(
        f"select audience_name, audience_version, person_id, occurred_at, email, phone "
        f"from {outbox.OUTBOX} where seq = 6"
    ) == [(A.title(), 2, "p-u1", OCCURRED, "a@x", "+1")]

    make_plan(wh, [{"audience_key": A, "user_id": "u6"}])
    assert enqueue(wh, run_id="run2") == 2
    assert outbox_rows(wh, "seq, run_id")[-2:] == [(9, "run2"), (10, "run2")]


def test_enqueue__limit_takes_the_first_transitions_in_a_stable_order(wh: Warehouse):
    outbox.ensure(wh)
    make_plan(
        wh,
        [
            {"audience_key": A, "user_id": "u2"},
            {"audience_key": A, "user_id": "u1", "transition": "exit"},
            {"audience_key": A, "user_id": "u3"},
            {"audience_key": B, "user_id": "u9"},
        ],
    )

    assert enqueue(wh, limit=2) == 4

    assert outbox_rows(wh, "seq, user_id, call_type") == [
        (1, "u9", "identify"),
        (2, "u9", "track"),
        (3, "u2", "identify"),
        (4, "u2", "track"),
    ]


def test_enqueue__resync_is_one_call_with_the_run_as_nonce(wh: Warehouse):
    outbox.ensure(wh)
    make_plan(
        wh,
        [
            {
                "audience_key": A,
                "user_id": "u1",
                "transition": "resync",
                "is_member": True,
                "exit_reason": None,
            },
            {
                "audience_key": B,
                "user_id": "u2",
                "transition": "resync",
                "segment_calls": "track",
            },
        ],
    )

    assert enqueue(wh, run_id="runR", limit=5) == 2

    resync_u1 = mid(A, "resync", "identify", "u1", nonce="runR")
    resync_u2 = mid(B, "resync", "track", "u2", nonce="runR")
    assert outbox_rows(wh, "seq, message_id, transition_id, call_type") == [
        (2, resync_u2, resync_u2, "track"),
        (3, resync_u1, resync_u1, "identify"),
    ]


# ------------------------------------------------------------------ sending
def _enqueued(wh: Warehouse, users: list[tuple[str, str]], **extra: object) -> None:
    outbox.ensure(wh)
    make_plan(wh, [{"audience_key": k, "user_id": u, **extra} for k, u in users])
    enqueue(wh, limit=100)


def test_count_pending_and_next_page__by_seq_range_and_audience(wh: Warehouse):
    _enqueued(wh, [(B, "u1"), (A, "u2"), (A, "u3")], email="e@x")
    # seqs: B u1 = 1, 2; A u2 = 3, 4; A u3 = 5, 6
    outbox.mark_sent(wh, first_seq=3, last_seq=3, audiences=[], not_sent=[], at=AT)

    assert outbox.count_pending(wh, []) == 5
    assert outbox.count_pending(wh, [A]) == 3
    assert outbox.count_pending(wh, [B]) == 2
    page = outbox.next_page(wh, after_seq=0, group_size=1, audiences=[A])
    assert [row[0] for row in page] == [4]  # starts at A's first pending, 1 seq wide
    page = outbox.next_page(wh, after_seq=0, group_size=2, audiences=[A])
    assert [row[0] for row in page] == [4, 5]
    page = outbox.next_page(wh, after_seq=0, group_size=3, audiences=[A])
    assert [row[0] for row in page] == [4, 5, 6]
    assert [
        row[0] for row in outbox.next_page(wh, after_seq=4, group_size=2, audiences=[])
    ] == [5, 6]
    assert [
        row[0] for row in outbox.next_page(wh, after_seq=1, group_size=1, audiences=[])
    ] == [2]
    assert outbox.next_page(wh, after_seq=6, group_size=10, audiences=[]) == []
    (row,) = outbox.next_page(wh, after_seq=4, group_size=1, audiences=[])
    assert row == (
        5,
        mid(A, "enter", "identify", "u3"),
        "identify",
        A,
        A.title(),
        2,
        "u3",
        True,
        None,
        "2026-12-01T09:30:15.250+00:00",
        "e@x",
        None,
    )


def test_details_and_failures__attempts_count_only_refusals(wh: Warehouse):
    _enqueued(wh, [(A, "u1"), (A, "u2")])
    u1, u2 = mid(A, "enter", "identify", "u1"), mid(A, "enter", "track", "u2")

    assert outbox.details(wh, set()) == {}
    outbox.note_failed(wh, "HTTP 503", [u1])
    outbox.note_refused(wh, "bad event", [u2])
    outbox.note_refused(wh, "bad again", [u2])

    assert outbox.details(wh, {u1, u2}) == {
        u1: MessageDetails(u1, A, "u1", "identify", 0),
        u2: MessageDetails(mid(A, "enter", "identify", "u2"), A, "u2", "track", 2),
    }
    assert wh.query(
        f"select last_error, status from {outbox.OUTBOX} where message_id in (%s, %s) "
        "order by seq",
        (u1, u2),
    ) == [("HTTP 503", "pending"), ("bad again", "pending")]


def test_dead_letter_then_requeue__only_the_selected_audiences(wh: Warehouse):
    _enqueued(wh, [(A, "u1"), (B, "u2")])
    a_id, b_id = mid(A, "enter", "track", "u1"), mid(B, "enter", "identify", "u2")
    outbox.note_refused(wh, "bad", [a_id])
    known = outbox.details(wh, {a_id, b_id})
    outbox.dead_letter(wh, [], known=known, run_id="run2", at=AT)  # nothing to do

    outbox.dead_letter(
        wh,
        [DeadLetter(a_id, "too big", {"k": 1}), DeadLetter(b_id, "bad", {"k": 2})],
        known=known,
        run_id="run2",
        at=AT,
    )

    assert wh.query(
        "select message_id, transition_id, run_id, audience_key, user_id, call_type, "
        f"reason, attempts, payload, dead_lettered_at from {outbox.DEAD_LETTERS} "
        "order by audience_key"
    ) == [
        (b_id, b_id, "run2", B, "u2", "identify", "bad", 1, json.dumps({"k": 2}), AT),
        (
            a_id,
            mid(A, "enter", "identify", "u1"),
            "run2",
            A,
            "u1",
            "track",
            "too big",
            2,
            json.dumps({"k": 1}),
            AT,
        ),
    ]
    assert outbox.count_pending(wh, []) == 2
    assert wh.query(
        f"select message_id from {outbox.OUTBOX} where status = 'dead' order by 1"
    ) == sorted([(a_id,), (b_id,)])

    outbox.requeue_dead_letters(wh, [A])

    assert wh.query(
        f"select message_id, status, attempts from {outbox.OUTBOX} "
        "where message_id in (%s, %s) order by seq",
        (a_id, b_id),
    ) == [(b_id, "dead", 0), (a_id, "pending", 0)]
    assert wh.query(f"select message_id from {outbox.DEAD_LETTERS}") == [(b_id,)]


def test_mark_sent__the_range_inclusive_except_not_sent_and_other_audiences(
    wh: Warehouse,
):
    _enqueued(wh, [(B, "u1"), (A, "u2"), (A, "u3"), (A, "u4")])
    skipped = mid(A, "enter", "track", "u2")  # seq 4

    outbox.mark_sent(
        wh, first_seq=2, last_seq=6, audiences=[A], not_sent=[skipped], at=AT
    )

    assert outbox_rows(wh, "seq, status, sent_at") == [
        (1, "pending", None),
        (2, "pending", None),  # B: another audience
        (3, "sent", AT),
        (4, "pending", None),
        (5, "sent", AT),
        (6, "sent", AT),
        (7, "pending", None),
        (8, "pending", None),
    ]
    later = AT + timedelta(hours=1)
    outbox.mark_sent(wh, first_seq=1, last_seq=8, audiences=[], not_sent=[], at=later)
    assert [r[0] for r in outbox_rows(wh, "sent_at")] == [
        later,
        later,
        AT,
        later,
        AT,
        AT,
        later,
        later,
    ]


def test_apply_state__only_transitions_wholly_sent_advance(wh: Warehouse):
    _enqueued(wh, [(A, "u1"), (A, "u2"), (A, "u3")])
    # u1: 1, 2; u2: 3, 4; u3: 5, 6. The group sent 2..5: u1's identify (1) was sent
    # by the group before, u3's track (6) is still pending.
    outbox.mark_sent(wh, first_seq=1, last_seq=5, audiences=[], not_sent=[], at=AT)

    outbox.apply_state(wh, first_seq=2, last_seq=5, run_id="runS", at=AT)

    u1, u2 = mid(A, "enter", "identify", "u1"), mid(A, "enter", "identify", "u2")
    assert state(wh) == [
        (A, "u1", True, 1, OCCURRED, None, None, u1, "runS"),
        (A, "u2", True, 1, OCCURRED, None, None, u2, "runS"),
    ]
    assert (
        wh.query(
            f"select audience_name, audience_version, updated_at from {outbox.AUDIENCE_STATE}"
        )
        == [(A.title(), 2, AT)] * 2
    )


def test_apply_state__exit_keeps_the_entry_time_and_resyncs_change_nothing(
    wh: Warehouse,
):
    _enqueued(wh, [(A, "u1")])
    outbox.mark_sent(wh, first_seq=1, last_seq=2, audiences=[], not_sent=[], at=AT)
    outbox.apply_state(wh, first_seq=1, last_seq=2, run_id="run1", at=AT)
    left = OCCURRED + timedelta(days=1)
    make_plan(
        wh,
        [
            {
                "audience_key": A,
                "user_id": "u1",
                "transition": "exit",
                "occurred_at": left,
                "audience_version": 3,
            },
            {"audience_key": B, "user_id": "u7", "transition": "resync"},
        ],
    )
    enqueue(wh, run_id="run2", limit=9)  # B u7 resync: 3; A u1 exit: 5, 6
    outbox.mark_sent(wh, first_seq=3, last_seq=6, audiences=[], not_sent=[], at=AT)

    outbox.apply_state(wh, first_seq=3, last_seq=6, run_id="run2", at=AT)

    exit_id = mid(A, "exit", "identify", "u1")
    assert state(wh) == [(A, "u1", False, 1, OCCURRED, left, "gone", exit_id, "run2")]
    assert wh.scalar(f"select audience_version from {outbox.AUDIENCE_STATE}") == 3


def test_record_group__one_transaction_for_every_outcome(wh: Warehouse):
    _enqueued(wh, [(A, "u1"), (A, "u2"), (A, "u3"), (B, "u9")])
    # seqs: B u9 = 1, 2 (another audience: this run did not send it); A = 3..8
    failed = mid(A, "enter", "track", "u2")
    refused = mid(A, "enter", "identify", "u3")
    dead = mid(A, "enter", "track", "u3")
    known = outbox.details(wh, {dead})
    outcome = GroupOutcome(
        failed={"HTTP 500": [failed]},
        refused={"invalid": [refused], "too big": [dead]},
        dead=[DeadLetter(dead, "too big", {"type": "track"})],
        not_sent=sorted([failed, refused, dead]),
    )

    before = outbox.now_utc()
    outbox.record_group(
        wh,
        first_seq=1,
        last_seq=8,
        audiences=[A],
        outcome=outcome,
        known=known,
        run_id="run1",
    )

    assert outbox_rows(wh, "seq, status, attempts, last_error") == [
        (1, "pending", 0, None),
        (2, "pending", 0, None),
        (3, "sent", 0, None),
        (4, "sent", 0, None),
        (5, "sent", 0, None),
        (6, "pending", 0, "HTTP 500"),
        (7, "pending", 1, "invalid"),
        (8, "dead", 1, "too big"),
    ]
    assert [row[:3] + row[-1:] for row in state(wh)] == [(A, "u1", True, "run1")]
    (sent_at,) = {row[0] for row in outbox_rows(wh, "sent_at") if row[0] is not None}
    assert before <= sent_at <= outbox.now_utc()
    assert wh.query(f"select message_id, attempts from {outbox.DEAD_LETTERS}") == [
        (dead, 1)
    ]


def test_record_group__a_failure_inside_leaves_the_whole_group_pending(
    wh: Warehouse,
):
    _enqueued(wh, [(A, "u1")])
    ghost = DeadLetter("not-in-the-outbox", "x", {})
    outcome = GroupOutcome(
        failed={"HTTP 500": [mid(A, "enter", "track", "u1")]}, dead=[ghost]
    )

    with pytest.raises(KeyError):  # its details are missing: the insert cannot be built
        outbox.record_group(
            wh,
            first_seq=1,
            last_seq=2,
            audiences=[],
            outcome=outcome,
            known={},
            run_id="r",
        )

    assert outbox_rows(wh, "status, last_error") == [("pending", None)] * 2


def test_prune__only_sent_rows_older_than_the_cut(wh: Warehouse):
    _enqueued(wh, [(A, "u1"), (A, "u2")])
    outbox.mark_sent(
        wh,
        first_seq=1,
        last_seq=1,
        audiences=[],
        not_sent=[],
        at=AT - timedelta(days=1),
    )
    outbox.mark_sent(wh, first_seq=2, last_seq=2, audiences=[], not_sent=[], at=AT)

    outbox.prune(wh, AT)

    assert [r[0] for r in outbox_rows(wh, "seq")] == [2, 3, 4]


# ------------------------------------------------------------------ runs
def test_runs__start_finish_and_abandon(wh: Warehouse):
    outbox.ensure(wh)
    outbox.start_run(
        wh,
        run_id="r1",
        target_name="dev",
        is_forced=True,
        is_full_resync=False,
        audiences=[A, B],
    )
    outbox.start_run(
        wh,
        run_id="r2",
        target_name="dev",
        is_forced=False,
        is_full_resync=True,
        audiences=[],
    )
    row = wh.query(
        f"select target_name, status, is_forced, is_full_resync, audiences, "
        f"finished_at from {outbox.RUNS} order by run_id"
    )
    assert row == [
        ("dev", "running", True, False, f"{A},{B}", None),
        ("dev", "running", False, True, None, None),
    ]
    started = wh.scalar(f"select started_at from {outbox.RUNS} where run_id = 'r1'")
    assert abs(started - outbox.now_utc()) < timedelta(seconds=5)

    outbox.finish_run(wh, "r2", RunOutcome("ok", 0, 10, 8, 1, 1, 2, 3, 4, 5, "boom"))

    assert wh.query(
        "select status, exit_code, count_planned, count_sent, count_failed, "
        "count_dead_lettered, count_skipped_missing_user_id, "
        "count_skipped_missing_identifier, count_skipped_duplicate_identity, "
        f"count_deferred, error, finished_at is not null from {outbox.RUNS} "
        "where run_id = 'r2'"
    ) == [("ok", 0, 10, 8, 1, 1, 2, 3, 4, 5, "boom", True)]

    # r1 is still `running`: a dead process. Not found by itself, nor before its start.
    assert (
        outbox.abandon_running(wh, by_run_id="r1", started_before=outbox.now_utc()) == 0
    )
    assert (
        outbox.abandon_running(
            wh, by_run_id="r3", started_before=started - timedelta(seconds=1)
        )
        == 0
    )
    assert outbox.abandon_running(wh, by_run_id="r3", started_before=started) == 1
    assert wh.query(f"select status, error from {outbox.RUNS} order by run_id") == [
        (
            "abandoned",
            "the process ended without recording an outcome; found by run r3",
        ),
        ("ok", "boom"),
    ]


# ------------------------------------------------------------------ lock row
def test_lock_row__insert_touch_and_delete_only_by_its_owner(wh: Warehouse):
    outbox.ensure(wh)
    assert outbox.lock_row(wh) is None
    outbox.insert_lock(wh, token="t1", run_id="r1", pid=42, hostname="h", at=AT)

    assert outbox.lock_row(wh) == ("t1", "r1", 42, "h", AT, AT)
    with pytest.raises(Exception, match=r"(?i)constraint|duplicate"):
        outbox.insert_lock(wh, token="t2", run_id="r2", pid=7, hostname="h", at=AT)

    later = AT + timedelta(minutes=1)
    outbox.touch_lock(wh, "t2", later)  # not the owner: nothing
    assert outbox.lock_row(wh)[5] == AT
    outbox.touch_lock(wh, "t1", later)
    assert outbox.lock_row(wh)[4:] == (AT, later)
    outbox.delete_lock(wh, "t2")
    assert outbox.lock_row(wh) is not None
    outbox.delete_lock(wh, "t1")
    assert outbox.lock_row(wh) is None
    assert wh.scalar(f"select lock_name from {outbox.LOCK}") is None


def test_apply_state__two_transitions_of_a_pair_in_one_range_the_later_wins(
    wh: Warehouse,
):
    """An entry and the exit after it, both sent by one group (an entry held back by a
    failure, then sent with the exit planned since): the state ends as after the exit,
    and keeps the time of that entry, as applying them one by one would."""
    _enqueued(wh, [(A, "u1")])  # enter: 1, 2, never sent by its own run
    left = OCCURRED + timedelta(days=1)
    make_plan(wh, [{"audience_key": A, "user_id": "u1", "transition": "exit",
                    "occurred_at": left}])  # fmt: skip
    enqueue(wh, run_id="run2")  # exit: 3, 4
    outbox.mark_sent(wh, first_seq=1, last_seq=4, audiences=[], not_sent=[], at=AT)

    outbox.apply_state(wh, first_seq=1, last_seq=4, run_id="run2", at=AT)

    exit_id = mid(A, "exit", "identify", "u1")
    assert state(wh) == [(A, "u1", False, 1, OCCURRED, left, "gone", exit_id, "run2")]
