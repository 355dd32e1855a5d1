"""The guardrails' words and the rules the boundary tests do not pin: the exact refusal
messages (what the operator reads), which dbt results count as failed sync checks, the
data-health manifest lookup, the holdout re-check on a real DuckDB file, `--force`, and
the as_of skew's default. Each case asserts exact output, in milliseconds; the same
refusals through the real command are in test_guardrails.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scripts.segment_sync import guards
from scripts.segment_sync.guards import Limits, Refusal
from scripts.segment_sync.plan import AudiencePlan, Plan
from scripts.warehouse import Warehouse, connect
from tests.segment_sync import inputs

NOW = datetime(2026, 12, 1, 12, 0, 0)
LIMITS = Limits(
    max_change_pct=50.0,
    min_audience_size=100,
    max_staleness_hours=36.0,
    dbt_run_results=None,
)


def _plan(*audiences: AudiencePlan, newest: datetime | None = NOW) -> Plan:
    return Plan(
        run_id="r",
        planned_at=NOW,
        audiences={a.audience_key: a for a in audiences},
        newest_input_at=newest,
    )


def test_check_plan__the_messages_an_operator_reads():
    grown = AudiencePlan(
        "b_grown",
        decided_members=200,
        desired_members=330,
        decided_enter=131,
        decided_exit=1,
    )
    emptied = AudiencePlan(
        "a_emptied", decided_members=300, desired_members=0, decided_exit=300
    )
    plan = _plan(grown, emptied, newest=NOW - timedelta(hours=40, minutes=30))

    refusals = guards.check_plan(plan, LIMITS, NOW)

    assert refusals == [
        # one refusal per audience: an emptied one is not also a "large change"
        Refusal(
            "drop_to_zero", "a_emptied would drop from 300 members to zero", "a_emptied"
        ),
        Refusal(
            "max_change",
            "b_grown would change by 66% (131 enter, 1 exit, 200 members decided so "
            "far); the limit is 50%",
            "b_grown",
        ),
        Refusal(
            "stale",
            "the newest signal/entry/exit in the sync inputs is 40.5 h old (limit 36 h); "
            "did the loads and `dbt build` run?",
        ),
    ]
    assert all(r.overridable for r in refusals)
    week = guards.check_plan(
        _plan(grown, newest=NOW - timedelta(hours=180, minutes=4)), LIMITS, NOW
    )
    assert "is 180.1 h old" in week[-1].message


def test_check_plan__no_change_means_nothing_to_judge():
    steady = AudiencePlan("steady", decided_members=100, desired_members=100)
    old = NOW - timedelta(days=30)

    assert guards.check_plan(_plan(steady, newest=old), LIMITS, NOW) == []
    assert guards.check_plan(_plan(steady, newest=None), LIMITS, NOW) == []
    new = AudiencePlan("new", decided_members=0, desired_members=500, decided_enter=500)
    assert guards.check_plan(_plan(new, newest=None), LIMITS, NOW) == []
    exits_only = AudiencePlan(
        "x", decided_members=10, desired_members=9, decided_exit=1
    )
    assert [
        r.rule for r in guards.check_plan(_plan(exits_only, newest=old), LIMITS, NOW)
    ] == ["stale"]


def test_refusal_as_dict_blocking_and_describe():
    soft = Refusal("max_change", "too big", "a")
    hard = Refusal("holdout", "leak", "b", overridable=False)

    assert soft.as_dict() == {
        "rule": "max_change",
        "audience_key": "a",
        "message": "too big",
        "overridable": True,
    }
    assert Refusal("stale", "old").audience_key is None
    assert guards.blocking([soft, hard], force=False) == [soft, hard]
    assert guards.blocking([soft, hard], force=True) == [hard]
    assert (
        guards.describe([soft, hard]) == "  - [max_change] too big\n  - [holdout] leak"
    )


# ------------------------------------------------------------------ dbt results
def _results(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps({"results": rows}))
    return path


def test_check_dbt_results__failed_sync_checks_only(tmp_path: Path):
    assert guards.check_dbt_results(None) == []
    assert guards.check_dbt_results(tmp_path / "absent.json") == []
    rows = [
        {
            "unique_id": "model.p.sync_segment__audience_memberships",
            "status": "success",
        },
        {"unique_id": "test.p.unique_sync_segment__x.1", "status": "fail"},
        {"unique_id": "test.p.not_null_sync_segment__y.2", "status": "error"},
        {"unique_id": "model.p.sync_segment__z", "status": "runtime error"},
        {"unique_id": "test.p.sync_segment__warned.3", "status": "warn"},
        {"unique_id": "test.p.other_model.4", "status": "fail"},
        {"status": "fail"},
    ]
    path = _results(tmp_path, rows)

    assert guards.check_dbt_results(path) == [
        Refusal(
            "dbt_checks",
            f"3 dbt check(s) on the sync models failed in {path}: "
            "model.p.sync_segment__z, test.p.not_null_sync_segment__y.2, "
            "test.p.unique_sync_segment__x.1",
        )
    ]
    assert guards.check_dbt_results(_results(tmp_path, rows[:1])) == []
    assert guards.check_dbt_results(_results(tmp_path, [])) == []
    path.write_text(json.dumps({"metadata": {}}))  # no results at all
    assert guards.check_dbt_results(path) == []


def test_check_dbt_results__lists_five_then_an_ellipsis(tmp_path: Path):
    rows = [
        {"unique_id": f"test.p.sync_segment__{i}", "status": "fail"} for i in range(6)
    ]
    path = _results(tmp_path, rows)

    (refusal,) = guards.check_dbt_results(path)

    shown = ", ".join(f"test.p.sync_segment__{i}" for i in range(5))
    assert (
        refusal.message
        == f"6 dbt check(s) on the sync models failed in {path}: {shown} …"
    )
    five = _results(tmp_path, rows[:5])
    assert guards.check_dbt_results(five)[0].message.endswith(shown)


def test_check_dbt_results__unreadable_refuses(tmp_path: Path):
    path = tmp_path / "run_results.json"
    path.write_text("{not json")

    assert guards.check_dbt_results(path) == [
        Refusal("dbt_checks", f"cannot read dbt results {path}")
    ]
    assert guards.check_dbt_as_of(path) == [
        Refusal("as_of", f"cannot read dbt results {path}")
    ]


@pytest.mark.parametrize(
    "document", ["[]", "null", '{"results": {}}', '{"results": ["x"]}', '"text"']
)
def test_dbt_checks__json_not_of_dbt_s_shape_is_refused_not_a_crash(
    tmp_path: Path, document: str
):
    path = tmp_path / "run_results.json"
    path.write_text(document)
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "nodes": {
                    "test.p.v.1": {"resource_type": "test", "tags": ["data_health"]}
                }
            }
        )
    )
    unreadable = f"cannot read dbt results {path}: not the run_results.json dbt writes"

    assert guards.check_dbt_results(path) == [Refusal("dbt_checks", unreadable)]
    assert guards.check_data_health(path) == [Refusal("data_health", unreadable)]
    assert guards.check_dbt_as_of(path) == [Refusal("as_of", unreadable)]
    assert guards.check_dbt_empty(path) == []  # one refusal says so, not two


@pytest.mark.parametrize(
    ("arguments", "refused"),
    [
        ({"which": "build", "empty": True}, "`dbt build --empty`"),
        ({"empty": True}, "`dbt run --empty`"),
        ({"which": "build", "empty": False}, None),
        ({"which": "build"}, None),  # dbt before --empty existed
        ({"which": "run", "empty": "true"}, None),  # dbt writes a boolean
        ("build --empty", None),  # not dbt's shape: nothing to judge
    ],
)
def test_check_dbt_empty__refuses_a_schema_only_run_whatever_force(
    tmp_path: Path, arguments: object, refused: str | None
):
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps({"args": arguments, "results": []}))
    refusals = guards.check_dbt_empty(path)
    if refused is None:
        assert refusals == []
        return
    assert [(r.rule, r.overridable) for r in refusals] == [("empty_build", False)]
    assert refused in refusals[0].message
    assert "run a plain `dbt build`" in refusals[0].message
    assert guards.blocking(refusals, force=True) == refusals


def test_check_dbt_empty__missing_or_unreadable_results_say_nothing(tmp_path: Path):
    assert guards.check_dbt_empty(None) == []
    assert guards.check_dbt_empty(tmp_path / "absent.json") == []
    unreadable = tmp_path / "run_results.json"
    unreadable.write_text("{not json")
    # check_dbt_results refuses an unreadable file; one refusal says so, not two.
    assert guards.check_dbt_empty(unreadable) == []
    unreadable.write_text("[]")
    assert guards.check_dbt_empty(unreadable) == []


def test_check_data_health__one_refusal_per_check_naming_three_tests(tmp_path: Path):
    uids = [f"test.p.t{i}.h" for i in range(5)] + ["test.p.other.h"]
    nodes = {
        uid: {
            "resource_type": "test",
            "tags": ["data_health"],
            "meta": {"check": "volume"},
        }
        for uid in uids[:5]
    }
    nodes["test.p.other.h"] = {
        "resource_type": "test",
        "tags": ["data_health"],
        "meta": {"check": "freshness"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    statuses = ["fail", "error", "runtime error", "fail", "pass", "warn"]
    path = _results(
        tmp_path,
        [{"unique_id": u, "status": s} for u, s in zip(uids, statuses, strict=True)],
    )

    assert guards.check_data_health(path) == [
        Refusal(
            "data_health",
            "data-health check 'volume' failed (t0, t1, t2); "
            "see `dbt test --select tag:data_health`",
        )
    ]
    path.write_text(json.dumps({"metadata": {}}))  # no results at all
    assert guards.check_data_health(path) == []
    path.write_text("[")
    assert guards.check_data_health(path) == [
        Refusal("data_health", f"cannot read dbt results {path}")
    ]


# ------------------------------------------------------------------ as_of
def test_as_of_skew__the_run_s_var_then_the_project_s_then_five_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assert guards._as_of_skew({"as_of_future_skew_minutes": "2.5"}) == timedelta(
        seconds=150
    )
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path))
    project = tmp_path / "dbt_project.yml"
    project.write_text("name: p\nvars:\n  as_of_future_skew_minutes: 7\n")
    assert guards._as_of_skew({}) == timedelta(minutes=7)
    assert guards._as_of_skew({"as_of_future_skew_minutes": 0}) == timedelta(0)
    project.write_text("name: p\nvars:\n  other: 1\n")
    assert guards._as_of_skew({}) == timedelta(minutes=5)
    project.write_text("name: p\nvars:\n")  # an empty `vars:` is None
    assert guards._as_of_skew({}) == timedelta(minutes=5)


def test_utc__converts_to_utc_whatever_the_machine_s_zone(
    monkeypatch: pytest.MonkeyPatch,
):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert guards._utc(datetime.fromisoformat("2026-12-01T13:00:00+01:00")) == NOW
    finally:
        monkeypatch.undo()
        time.tzset()
    assert guards._utc(NOW) == NOW


def test_check_dbt_as_of__message_names_the_run_time(tmp_path: Path):
    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"generated_at": "2026-12-02T08:00:00Z"},
                "args": {"vars": {"as_of": "2026-12-03"}},
            }
        )
    )

    assert guards.check_dbt_as_of(path) == [
        Refusal(
            "as_of",
            "the last dbt run used as_of 2026-12-03, in the future of when it ran "
            "(2026-12-02 08:00 UTC): its sync inputs are that moment's membership, not "
            "today's; run a plain `dbt build` before syncing",
        )
    ]
    path.write_text(json.dumps({"args": {"vars": {"as_of": "2026-12-03"}}}))
    assert guards.check_dbt_as_of(path) == [
        Refusal("as_of", f"cannot read as_of '2026-12-03' from dbt results {path}")
    ]
    path.write_text(json.dumps({"args": {"vars": "as_of: 2026-12-03"}}))
    assert guards.check_dbt_as_of(path) == []  # vars as a string: no as_of to judge
    path.write_text(json.dumps({"args": None, "metadata": {}}))
    assert guards.check_dbt_as_of(path) == []


# ------------------------------------------------------------------ holdout
@pytest.fixture
def wh(duckdb_path: Path) -> Iterator[Warehouse]:
    with connect() as warehouse:
        yield warehouse


def _desired(wh: Warehouse, rows: list[tuple[str, int, str]]) -> None:
    """The plan's sync_desired: user_id is the sync key, person_id p-<key> (as
    inputs.set_holdouts names people)."""
    wh.execute(
        "create temp table sync_desired (audience_key varchar, audience_version integer, "
        "user_id varchar, person_id varchar)"
    )
    wh.executemany(
        "insert into sync_desired values (%s, %s, %s, %s)",
        [(key, version, user, f"p-{user}") for key, version, user in rows],
    )


def test_check_holdout__counts_desired_members_in_the_holdout_arm(wh: Warehouse):
    wh.ensure_schema(inputs.SCHEMA)
    _desired(
        wh,
        [
            ("a", 1, "u1"),
            ("a", 1, "u2"),
            ("a", 1, "u3"),
            ("b", 1, "u1"),
            ("c", 2, "u1"),
        ],
    )
    assert guards.check_holdout(wh, inputs.SCHEMA) == []  # no mart: nothing to check
    inputs.set_holdouts(
        wh,
        [
            ("a", "u1", "holdout"),
            ("a", "u2", "holdout"),
            ("a", "u3", "treatment"),
            ("b", "u1", "holdout"),
            ("c", "u1", "holdout"),
        ],
    )

    assert guards.check_holdout(wh, inputs.SCHEMA) == [
        Refusal(
            "holdout",
            f"{key}: {count} holdout member(s) are in the sync input; fix the "
            "sync_segment__audience_memberships model (holdouts must never be sent)",
            key,
            overridable=False,
        )
        for key, count in (("a", 2), ("b", 1))  # c's holdout is of another version
    ]


def test_check_holdout__a_holdout_member_sent_under_an_anonymous_id_is_refused(
    wh: Warehouse,
):
    # Under segment_identity_policy user_id_or_email a member without a user id is sent
    # under an email-derived anonymousId: the plan's sync key is that id, and the mart's
    # user_id is null, so only the person tells the holdout member apart.
    wh.ensure_schema(inputs.SCHEMA)
    _desired(wh, [("a", 1, "anon-1"), ("a", 1, "anon-2")])
    inputs.set_holdouts(wh, [])
    wh.executemany(
        f"insert into {inputs.SCHEMA}.{guards.HOLDOUT_SOURCE} "
        "(audience_key, audience_version, person_id, user_id, arm) "
        "values (%s, 1, %s, null, %s)",
        [("a", "p-anon-1", "holdout"), ("a", "p-anon-2", "treatment")],
    )

    assert guards.check_holdout(wh, inputs.SCHEMA) == [
        Refusal(
            "holdout",
            "a: 1 holdout member(s) are in the sync input; fix the "
            "sync_segment__audience_memberships model (holdouts must never be sent)",
            "a",
            overridable=False,
        )
    ]


def test_check_holdout__a_mart_with_exactly_the_needed_columns_is_checked(
    wh: Warehouse,
):
    wh.ensure_schema(inputs.SCHEMA)
    _desired(wh, [("a", 1, "u1")])
    wh.execute(
        f"create table {inputs.SCHEMA}.{guards.HOLDOUT_SOURCE} as select 'a' as "
        "audience_key, 1 as audience_version, 'p-u1' as person_id, 'u1' as user_id, "
        "'holdout' as arm"
    )

    assert [r.rule for r in guards.check_holdout(wh, inputs.SCHEMA)] == ["holdout"]


def test_check_holdout__a_mart_without_the_arm_is_not_checked(wh: Warehouse):
    wh.ensure_schema(inputs.SCHEMA)
    _desired(wh, [("a", 1, "u1")])
    wh.execute(
        f"create table {inputs.SCHEMA}.{guards.HOLDOUT_SOURCE} as select 'a' as "
        "audience_key, 1 as audience_version, 'u1' as user_id"
    )

    assert guards.check_holdout(wh, inputs.SCHEMA) == []
