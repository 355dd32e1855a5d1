"""The planner's rules, called directly on a real DuckDB file (no receiver, no command):
what enters, exits, waits and is resent, with which generation, reason, time and calls,
and how the plan counts it. Each case asserts the exact rows of `sync_plan` or the exact
summary, so a changed comparison, join or default in plan.py fails here in milliseconds.

The end-to-end runs through the real command (test_sync_core.py, test_resume.py, ...)
cost seconds each; `make mutate` judges plan.py by this file and its siblings instead
(scripts/mutation/areas.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scripts.segment_sync import outbox, payloads, plan
from scripts.segment_sync.plan import PlanError, build_plan
from scripts.warehouse import Warehouse, connect

SCHEMA = "analytics"
AT = datetime(2026, 12, 1, 12, 0, 0)  # planned_at
ENTERED = AT - timedelta(hours=3)
SIGNAL = AT - timedelta(hours=2)
A, B = "lapsed_buyers", "cart_clickers"
PLAN_COLUMNS = (
    "audience_key, user_id, transition, generation, is_member, exit_reason, "
    "occurred_at, person_id, segment_calls, is_blocked"
)


@pytest.fixture
def wh(duckdb_path: Path) -> Iterator[Warehouse]:
    with connect() as warehouse:
        warehouse.ensure_schema(SCHEMA)
        yield warehouse


def members(
    wh: Warehouse, rows: list[dict], *, identity: bool = True, skips: bool = False
) -> None:
    """Replace the memberships input. `identity` adds the optional identity columns
    (anonymous_id, email, phone, segment_calls); without it, only the contract's."""
    optional = (
        "anonymous_id varchar, email varchar, phone varchar, segment_calls varchar, "
    )
    wh.execute(f"drop table if exists {SCHEMA}.{plan.MEMBERSHIPS}")
    wh.execute(
        f"create table {SCHEMA}.{plan.MEMBERSHIPS} (audience_key varchar, "
        "audience_name varchar, audience_version integer, person_id varchar, "
        f"user_id varchar, {optional if identity else ''}"
        "signal_at timestamp, entered_at timestamp)"
    )
    names = [
        "audience_key",
        "audience_name",
        "audience_version",
        "person_id",
        "user_id",
    ]
    if identity:
        names += ["anonymous_id", "email", "phone", "segment_calls"]
    names += ["signal_at", "entered_at"]
    defaults = {
        "audience_version": 1,
        "signal_at": SIGNAL,
        "entered_at": ENTERED,
    }
    for row in rows:
        values = {**defaults, **row}
        values.setdefault("audience_name", values["audience_key"].title())
        values.setdefault("person_id", f"p-{values.get('user_id')}")
        wh.execute(
            f"insert into {SCHEMA}.{plan.MEMBERSHIPS} ({', '.join(names)}) values "
            f"({', '.join(['%s'] * len(names))})",
            [values.get(name) for name in names],
        )
    if not wh.table_exists(SCHEMA, plan.EXITS):
        exits(wh, [])
    if skips and not wh.table_exists(SCHEMA, plan.SKIPS):
        wh.execute(
            f"create table {SCHEMA}.{plan.SKIPS} (audience_key varchar, "
            "audience_version integer, person_id varchar, skip_reason varchar)"
        )


def exits(wh: Warehouse, rows: list[dict], *, identity: bool = False) -> None:
    optional = (
        "anonymous_id varchar, email varchar, phone varchar, " if identity else ""
    )
    wh.execute(f"drop table if exists {SCHEMA}.{plan.EXITS}")
    wh.execute(
        f"create table {SCHEMA}.{plan.EXITS} (audience_key varchar, user_id varchar, "
        f"{optional}exit_reason varchar, exited_at timestamp)"
    )
    names = ["audience_key", "user_id"]
    if identity:
        names += ["anonymous_id", "email", "phone"]
    names += ["exit_reason", "exited_at"]
    for row in rows:
        values = {"exited_at": AT - timedelta(hours=1), **row}
        wh.execute(
            f"insert into {SCHEMA}.{plan.EXITS} ({', '.join(names)}) values "
            f"({', '.join(['%s'] * len(names))})",
            [values.get(name) for name in names],
        )


def planned(
    wh: Warehouse, *, audiences: list[str] | None = None, full_resync: bool = False
) -> plan.Plan:
    return build_plan(
        wh,
        schema=SCHEMA,
        run_id="run1",
        planned_at=AT,
        audiences=audiences or [],
        full_resync=full_resync,
    )


def plan_rows(wh: Warehouse) -> list[tuple]:
    return wh.query(f"select {PLAN_COLUMNS} from sync_plan order by 1, 2, 3")


def confirm(wh: Warehouse) -> None:
    """Plan, accept the plan and have Segment confirm every message, as a run does."""
    installation = outbox.ensure(wh)
    first = int(wh.scalar(f"select coalesce(max(seq), 0) from {outbox.OUTBOX}")) + 1
    planned(wh)
    outbox.decide(wh)
    outbox.enqueue(
        wh, installation_id=installation, run_id="run1", created_at=AT, limit=None
    )
    last = int(wh.scalar(f"select coalesce(max(seq), 0) from {outbox.OUTBOX}"))
    outbox.mark_sent(
        wh, first_seq=first, last_seq=last, audiences=[], not_sent=[], at=AT
    )
    outbox.apply_state(wh, first_seq=first, last_seq=last, run_id="run1", at=AT)


def member(key: str, user: str | None, **extra: object) -> dict:
    return {"audience_key": key, "user_id": user, **extra}


# ------------------------------------------------------------------ inputs
def test_check_inputs__names_what_is_missing(wh: Warehouse):
    with pytest.raises(PlanError) as missing:
        plan.check_inputs(wh, SCHEMA)
    assert str(missing.value) == (
        f"{SCHEMA}.{plan.MEMBERSHIPS} does not exist; run `dbt build` (it builds the "
        "sync models) before `audiences sync segment`"
    )
    members(wh, [], identity=False)
    plan.check_inputs(wh, SCHEMA)  # the contract's columns exactly: fine

    wh.execute(f"drop table {SCHEMA}.{plan.EXITS}")
    with pytest.raises(PlanError, match=f"{plan.EXITS} does not exist"):
        plan.check_inputs(wh, SCHEMA)
    wh.execute(
        f"create table {SCHEMA}.{plan.EXITS} (audience_key varchar, user_id varchar)"
    )
    with pytest.raises(PlanError) as short:
        plan.check_inputs(wh, SCHEMA)
    assert str(short.value) == (
        f"{SCHEMA}.{plan.EXITS} lacks the contracted column(s) exit_reason, exited_at "
        "(docs/warehouse-contracts.md)"
    )


# ------------------------------------------------------------------ enter
def test_first_plan__every_desired_member_enters_at_generation_one(wh: Warehouse):
    members(
        wh,
        [member(A, "u1"), member(A, "u2", entered_at=None), member(B, "u3")],
        identity=False,
    )

    p = planned(wh)

    assert plan_rows(wh) == [
        (B, "u3", "enter", 1, True, None, ENTERED, "p-u3", "both", False),
        (A, "u1", "enter", 1, True, None, ENTERED, "p-u1", "both", False),
        # no entered_at: the entry is dated when it was planned
        (A, "u2", "enter", 1, True, None, AT, "p-u2", "both", False),
    ]
    assert wh.query("select email, phone from sync_plan") == [(None, None)] * 3
    a = p.audiences[A]
    assert (a.audience_name, a.desired_members, a.enter, a.exit, a.unchanged) == (
        A.title(),
        2,
        2,
        0,
        0,
    )
    assert (a.current_members, a.decided_members, a.decided_enter, a.decided_exit) == (
        0,
        0,
        2,
        0,
    )
    assert p.transitions == 3
    assert p.newest_input_at == SIGNAL
    assert p.run_id == "run1"
    assert p.planned_at == AT


def test_duplicates__the_latest_version_then_the_latest_entry_is_kept(wh: Warehouse):
    members(
        wh,
        [
            member(A, "u1", audience_version=1, entered_at=ENTERED, person_id="old"),
            member(A, "u1", audience_version=2, entered_at=ENTERED, person_id="new"),
            member(A, "u2", entered_at=ENTERED - timedelta(days=1), person_id="early"),
            member(A, "u2", entered_at=ENTERED, person_id="late"),
        ],
    )

    p = planned(wh)

    assert wh.query("select user_id, person_id from sync_plan order by 1") == [
        ("u1", "new"),
        ("u2", "late"),
    ]
    assert p.audiences[A].skipped_duplicate_identity == 2
    assert p.duplicate_rows == 2
    assert p.audiences[A].desired_members == 2


def test_identity__blank_ids_are_missing_and_anonymous_ids_stand_in(wh: Warehouse):
    anon = payloads.ANONYMOUS_ID_PREFIX + "abc"
    members(
        wh,
        [
            member(A, "u1", email="ann@example.org", phone="+100", segment_calls=None),
            member(A, None, anonymous_id=anon, email="bob@example.org"),
            member(A, "", anonymous_id="", email="cy@example.org"),
            member(A, None),
            member(B, "u1", segment_calls="track"),
        ],
    )

    p = planned(wh)

    assert wh.query(
        "select audience_key, user_id, email, phone, segment_calls from sync_plan "
        "order by 1, 2"
    ) == [
        (B, "u1", None, None, "track"),
        (A, anon, "bob@example.org", None, "both"),
        (A, "u1", "ann@example.org", "+100", "both"),
    ]
    assert p.audiences[A].skipped_missing_user_id == 2
    assert p.audiences[A].skipped_duplicate_identity == 0
    assert p.skipped_missing_user_id == 2
    assert p.skipped_by_reason == {
        "missing_user_id": 2,
        "missing_identifier": 0,
        "duplicate_identity": 0,
    }


def test_without_anonymous_id_column__only_the_user_id_keys(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "")], identity=False)

    p = planned(wh)

    assert [row[1] for row in plan_rows(wh)] == ["u1"]
    assert p.audiences[A].skipped_missing_user_id == 1


# ------------------------------------------------------------------ exit, re-entry
def test_exit__reason_and_time_from_the_exits_model_else_window_expired(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "u2"), member(A, "u3")])
    confirm(wh)
    left = AT - timedelta(minutes=30)
    members(wh, [member(A, "u1")])
    exits(
        wh,
        [
            {
                "audience_key": A,
                "user_id": "u2",
                "exit_reason": "old",
                "exited_at": AT - timedelta(days=2),
            },
            {
                "audience_key": A,
                "user_id": "u2",
                "exit_reason": "purchased",
                "exited_at": left,
            },
            {
                "audience_key": A,
                "user_id": "",
                "exit_reason": "nobody",
                "exited_at": left,
            },
        ],
    )

    p = planned(wh)

    assert plan_rows(wh) == [
        (A, "u2", "exit", 1, False, "purchased", left, None, "both", False),
        (A, "u3", "exit", 1, False, "window_expired", AT, None, "both", False),
    ]
    a = p.audiences[A]
    assert (a.current_members, a.desired_members, a.enter, a.exit, a.unchanged) == (
        3,
        1,
        0,
        2,
        1,
    )
    assert (a.decided_members, a.decided_enter, a.decided_exit) == (3, 0, 2)
    assert p.newest_input_at == left  # the exits count: u2's is the newest input
    assert wh.query("select user_id, change from sync_decision_delta order by 1") == [
        ("u2", "exit"),
        ("u3", "exit"),
    ]


def test_exit__newest_input_counts_the_exits_too(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "u2")])
    confirm(wh)
    members(wh, [member(A, "u1", signal_at=None)])
    exits(
        wh, [{"audience_key": A, "user_id": "u2", "exit_reason": "x", "exited_at": AT}]
    )

    assert planned(wh).newest_input_at == AT


def test_exit__every_member_gone_keeps_the_name_and_sends_both_calls(wh: Warehouse):
    members(wh, [member(A, "u1", segment_calls="identify"), member(B, "u2")])
    confirm(wh)
    members(wh, [member(B, "u2", segment_calls="identify")])

    p = planned(wh, audiences=[A])

    assert plan_rows(wh) == [
        (A, "u1", "exit", 1, False, "window_expired", AT, None, "both", False)
    ]
    assert list(p.audiences) == [A]
    assert p.audiences[A].audience_name == A.title()
    assert p.audiences[A].desired_members == 0


def test_exit__carries_the_audience_s_calls_and_the_exit_s_identifiers(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "u2")])
    confirm(wh)
    members(wh, [member(A, "u1", segment_calls="track")])
    exits(
        wh,
        [
            {
                "audience_key": A,
                "user_id": "u2",
                "email": "e@x",
                "phone": "+1",
                "exit_reason": "r",
            }
        ],
        identity=True,
    )

    planned(wh)

    assert wh.query(
        "select user_id, segment_calls, email, phone from sync_plan "
        "where transition = 'exit'"
    ) == [("u2", "track", "e@x", "+1")]


def test_reentry__gets_the_next_generation(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "u2")])
    confirm(wh)
    members(wh, [member(A, "u2")])
    confirm(wh)  # u1 exits
    members(wh, [member(A, "u1"), member(A, "u2")])

    p = planned(wh)

    assert plan_rows(wh) == [
        (A, "u1", "enter", 2, True, None, ENTERED, "p-u1", "both", False)
    ]
    assert (p.audiences[A].current_members, p.audiences[A].unchanged) == (1, 1)


# ------------------------------------------------------------------ deferred, decided
def test_pending_pair__is_deferred_not_planned_twice(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, "u2")])
    installation = outbox.ensure(wh)
    planned(wh)
    outbox.decide(wh)
    outbox.enqueue(
        wh, installation_id=installation, run_id="run1", created_at=AT, limit=None
    )
    # The first pair's messages are confirmed, the second's still wait in the outbox.
    # Without --limit the outbox takes the plan in no set order, so ask which is first.
    first = wh.scalar(f"select user_id from {outbox.OUTBOX} where seq = 1")
    waiting = ({"u1", "u2"} - {first}).pop()
    outbox.mark_sent(wh, first_seq=1, last_seq=2, audiences=[], not_sent=[], at=AT)
    outbox.apply_state(wh, first_seq=1, last_seq=2, run_id="run1", at=AT)

    p = planned(wh)

    assert plan_rows(wh) == [
        (A, waiting, "enter", 1, True, None, ENTERED, f"p-{waiting}", "both", True)
    ]
    a = p.audiences[A]
    assert (a.enter, a.deferred, a.current_members, a.decided_members) == (1, 1, 1, 2)
    assert (a.decided_enter, a.decided_exit) == (0, 0)
    assert p.deferred == 1
    assert p.transitions == 0


def test_decision_delta__against_what_was_decided_not_what_was_confirmed(
    wh: Warehouse,
):
    members(wh, [member(A, "u1"), member(A, "u2")])
    outbox.ensure(wh)
    planned(wh)
    outbox.decide(wh)  # decided, nothing sent
    members(wh, [member(A, "u2"), member(A, "u3"), member(B, "u4")])

    p = planned(wh, audiences=[A])

    assert wh.query(
        "select audience_key, user_id, change from sync_decision_delta order by 2"
    ) == [(A, "u1", "exit"), (A, "u3", "enter")]
    a = p.audiences[A]
    assert (a.decided_members, a.decided_enter, a.decided_exit) == (2, 1, 1)
    assert (a.current_members, a.enter, a.exit) == (0, 2, 0)
    assert list(p.audiences) == [A]


# ------------------------------------------------------------------ full resync
def test_full_resync__resends_every_unchanged_pair_with_its_current_value(
    wh: Warehouse,
):
    members(
        wh,
        [member(A, "u1", email="a@x"), member(A, "u2"), member(A, "u3")],
    )
    confirm(wh)
    members(wh, [member(A, "u1", email="a@x"), member(A, "u2")])
    exits(wh, [{"audience_key": A, "user_id": "u3", "exit_reason": "bought"}])
    confirm(wh)  # u3 exits: a former member
    members(wh, [member(A, "u1", email="new@x", segment_calls="identify")])
    exits(
        wh,
        [{"audience_key": A, "user_id": "u3", "email": "c@x", "exit_reason": "bought"}],
        identity=True,
    )

    p = planned(wh, full_resync=True)

    assert plan_rows(wh) == [
        (A, "u1", "resync", 1, True, None, AT, None, "identify", False),
        (A, "u2", "exit", 1, False, "window_expired", AT, None, "identify", False),
        (A, "u3", "resync", 1, False, "bought", AT, None, "identify", False),
    ]
    assert wh.query(
        "select user_id, email from sync_plan where transition = 'resync' order by 1"
    ) == [("u1", "new@x"), ("u3", "c@x")]
    a = p.audiences[A]
    assert (a.resync, a.exit, a.enter, a.unchanged) == (2, 1, 0, 1)
    assert p.transitions == 3

    planned(wh)  # without the flag: the exit only
    assert [row[2] for row in plan_rows(wh)] == ["exit"]


# ------------------------------------------------------------------ skips
def test_skips__counted_per_reason_and_an_unknown_reason_refused(wh: Warehouse):
    members(wh, [member(A, "u1"), member(A, None), member(B, "u2")], skips=True)
    wh.executemany(
        f"insert into {SCHEMA}.{plan.SKIPS} values (%s, 1, %s, %s)",
        [
            (A, "p1", "missing_identifier"),
            (A, "p2", "missing_identifier"),
            (A, "p3", "missing_user_id"),
            (B, "p4", "duplicate_identity"),
        ],
    )

    p = planned(wh)

    a, b = p.audiences[A], p.audiences[B]
    assert (
        a.skipped_missing_user_id,
        a.skipped_missing_identifier,
        a.skipped_duplicate_identity,
    ) == (2, 2, 0)
    assert a.skipped == 4
    assert (b.skipped_duplicate_identity, b.skipped) == (1, 1)
    assert p.skipped_by_reason == {
        "missing_user_id": 2,
        "missing_identifier": 2,
        "duplicate_identity": 1,
    }
    described = p.as_dict()
    assert described["run_id"] == "run1"
    assert described["planned_at"] == AT.isoformat()
    assert described["newest_input_at"] == SIGNAL.isoformat()
    assert described["duplicate_input_rows"] == 1  # B's, from the skips model
    assert described["skipped_by_reason"] == p.skipped_by_reason
    by_key = {entry["audience_key"]: entry for entry in described["audiences"]}
    assert by_key[A]["skipped"] == 4
    assert by_key[A]["skipped_missing_identifier"] == 2
    assert by_key[B]["desired_members"] == 1

    wh.execute(f"insert into {SCHEMA}.{plan.SKIPS} values ('{A}', 1, 'p5', 'odd')")
    with pytest.raises(PlanError) as unknown:
        planned(wh)
    assert str(unknown.value) == (
        f"{SCHEMA}.{plan.SKIPS} has the unknown skip_reason 'odd' (expected one of "
        "missing_user_id, missing_identifier, duplicate_identity)"
    )


def test_skips__filtered_to_the_selected_audiences(wh: Warehouse):
    members(wh, [member(A, "u1")], skips=True)
    wh.execute(
        f"insert into {SCHEMA}.{plan.SKIPS} values ('{B}', 1, 'p', 'missing_user_id')"
    )

    p = planned(wh, audiences=[A])

    assert list(p.audiences) == [A]
    assert p.skipped_by_reason["missing_user_id"] == 0


def test_no_inputs__nothing_planned_and_no_newest_time(wh: Warehouse):
    members(wh, [])

    p = planned(wh)

    assert p.audiences == {}
    assert p.newest_input_at is None
    assert p.transitions == 0
    assert p.as_dict()["newest_input_at"] is None
    assert p.as_dict()["audiences"] == []


# ------------------------------------------------------------------ samples
def test_sample_rows__the_payloads_each_kind_would_send(wh: Warehouse):
    members(
        wh,
        [
            member(A, "u1", email="a@x"),
            member(A, "u2"),
            member(B, "u3", segment_calls="track"),
        ],
    )
    confirm(wh)
    members(
        wh,
        [
            member(A, "u1", email="a@x", phone="+1"),
            member(B, "u3", segment_calls="track", audience_version=3),
        ],
    )
    planned(wh, full_resync=True)

    one = plan.sample_rows(wh)

    assert [(m["type"], m["userId"], m.get("event")) for m in one] == [
        ("identify", "u2", None),
        ("track", "u2", "Audience Exited"),
        ("track", "u3", "Audience Entered"),  # a resync of a track-only audience
    ]
    assert one[0]["messageId"] == payloads.message_id(
        "<installation>", A, "exit", 1, "", "identify", "u2"
    )
    assert one[0]["traits"] == {A: False}
    assert one[1]["properties"]["exit_reason"] == "window_expired"
    assert one[2]["properties"]["audience_name"] == B.title()
    assert one[2]["properties"]["audience_version"] == 1  # what Segment holds
    assert one[2]["timestamp"] == AT.isoformat(timespec="milliseconds") + "+00:00"
    two = plan.sample_rows(wh, per_kind=2)
    assert [(m["type"], m["userId"]) for m in two] == [
        ("identify", "u2"),
        ("track", "u2"),
        ("track", "u3"),
        ("identify", "u1"),  # the second resync; identify only, with its email
    ]
    assert two[3]["traits"] == {A: True, "email": "a@x", "phone": "+1"}


def test_sample_rows__leave_out_deferred_pairs(wh: Warehouse):
    members(wh, [member(A, "u1")])
    installation = outbox.ensure(wh)
    planned(wh)
    outbox.decide(wh)
    outbox.enqueue(
        wh, installation_id=installation, run_id="run1", created_at=AT, limit=None
    )
    planned(wh)

    assert plan.sample_rows(wh, per_kind=5) == []


def test_pending_pairs__deferred_entries_and_exits_add_up(wh: Warehouse):
    members(wh, [member(A, "u2")])
    confirm(wh)
    members(wh, [member(A, "u1")])
    installation = outbox.ensure(wh)
    planned(wh)  # u1 enters, u2 exits: both accepted, neither sent
    outbox.decide(wh)
    outbox.enqueue(
        wh, installation_id=installation, run_id="run2", created_at=AT, limit=None
    )

    p = planned(wh)

    assert [(row[1], row[2], row[-1]) for row in plan_rows(wh)] == [
        ("u1", "enter", True),
        ("u2", "exit", True),
    ]
    assert p.audiences[A].deferred == 2
    assert p.transitions == 0


def test_an_audience_only_in_the_history_is_not_in_the_plan(wh: Warehouse):
    members(wh, [member(A, "u1"), member(B, "u2")])
    confirm(wh)
    members(wh, [member(B, "u2")])
    confirm(wh)  # every member of A has left: A has state rows, none a member

    p = planned(wh)

    assert list(p.audiences) == [B]
    assert plan_rows(wh) == []
