"""The per-person summaries of the message events (int_people_engagement and
int_people_subscription_state, through macros/people/summarised_per_person.sql) fold the
events counted since their previous build into their people's rows, rebuild the people
who lost an event, keep everyone else's row, and rebuild everyone whenever a kept row
could be wrong. Whichever path a run takes, the table
must equal a full refresh of the same warehouse.

Each test works on a copy of the small warehouse and writes the deduplicated events the
way the dedupe does (a row written with its build stamp, deduplicated_at, and the person
it had before, previous_person_id): an arrival, a re-resolved event that moved to another
person, an event held while still in the future.
Which path ran shows in summarised_at, which a kept row keeps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO_ROOT
from tests.dbt.small_warehouse import FIRST, SECOND, Warehouse, environment
from tests.versions.project_copy import copy_project

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

SUMMARIES = ("int_people_engagement", "int_people_subscription_state")
# SECOND as the naive UTC timestamp the warehouse holds.
SECOND_AT = datetime.fromisoformat(SECOND.replace("Z", ""))
EVENTS = "analytics.int_message_events_deduplicated"
# A person with several delivered emails.
SENDER = (
    f"select person_id from {EVENTS} where channel = 'email' and metric = 'delivered' "
    "and person_id is not null group by 1 having count(*) >= 3 order by 1 limit 2"
)


def _copy(small_warehouse: Path, tmp_path: Path) -> Warehouse:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    return Warehouse(environment(tmp_path), "dev")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _table(warehouse: Warehouse, model: str) -> tuple[dict, dict]:
    """(person -> every column but the run's, person -> summarised_at). A row keeps
    summarised_at and summarised_as_of, the run and the as_of that computed it, until a
    run rewrites it: a full refresh stamps every row, an incremental run the rows it
    changes."""
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        cursor = db.execute(f"select * from analytics.{model}")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        del row["summarised_as_of"]
    stamps = {row["person_id"]: row.pop("summarised_at") for row in rows}
    return {row["person_id"]: row for row in rows}, stamps


def _build(warehouse: Warehouse, as_of: str, *flags: str) -> dict[str, tuple]:
    warehouse.dbt("run", "--select", *SUMMARIES, *flags, as_of=as_of)
    return {model: _table(warehouse, model) for model in SUMMARIES}


def _equals_full_refresh(warehouse: Warehouse, built: dict, as_of: str) -> None:
    full = _build(warehouse, as_of, "--full-refresh")
    for model in SUMMARIES:
        values, _ = built[model]
        assert values, model
        assert values == full[model][0], model


def _restamped(before: dict, after: dict, model: str) -> set[str]:
    """The people whose row this run computed (a kept row keeps its stamp)."""
    old, new = before[model][1], after[model][1]
    return {person for person, stamp in new.items() if old.get(person) != stamp}


def _copy_event(warehouse: Warehouse, person: str, **changes: object) -> None:
    """A copy of one of the person's delivered emails, as the dedupe would write it."""
    assignments = ", ".join(f"{column} = ?" for column in changes)
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        db.execute(
            f"create temp table one as select * from {EVENTS} where person_id = ? "
            "and channel = 'email' and metric = 'delivered' limit 1",
            [person],
        )
        # Whatever re-resolution the copied row went through is not this event's.
        db.execute("update one set previous_person_id = null")
        db.execute(f"update one set {assignments}", list(changes.values()))
        db.execute(f"insert into {EVENTS} select * from one")


def test_a_new_event_rebuilds_its_person_alone(small_warehouse, tmp_path) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    person = warehouse.rows(SENDER)[0][0]
    before = _build(warehouse, SECOND)
    # Nothing new: every row is kept.
    for model in SUMMARIES:
        assert before[model][1], model
    _copy_event(
        warehouse, person, message_event_id="tick-arrival", deduplicated_at=_now(),
        occurred_at=datetime(2026, 3, 1, 6),
    )  # fmt: skip
    after = _build(warehouse, SECOND)
    for model in SUMMARIES:
        assert _restamped(before, after, model) == {person}, model
        counted = after[model][0][person]["event_count"]
        assert counted == before[model][0][person]["event_count"] + 1, model
    _equals_full_refresh(warehouse, after, SECOND)


def test_two_ticks_a_new_event_then_nothing(small_warehouse, tmp_path) -> None:
    # As scheduled: a real webhook loaded, then the dedupe and the summary in one run
    # (they share the run's stamp), then a run with nothing new, which rebuilds nobody.
    warehouse = _copy(small_warehouse, tmp_path)
    person = warehouse.rows(SENDER)[0][0]
    cio_id = warehouse.rows(
        "select identifier_value from analytics.int_identifiers_resolved "
        f"where identifier_type = 'cio_id' and person_id = '{person}'"
    )[0][0]
    tick = ("run", "--select", *(f"+{model}" for model in SUMMARIES))
    warehouse.dbt(*tick, as_of=SECOND)
    before = {model: _table(warehouse, model) for model in SUMMARIES}
    webhook = {
        "event_id": "01TICKTWOARRIVAL000000000", "object_type": "email",
        "metric": "delivered", "timestamp": int(datetime(2026, 3, 1, 6, tzinfo=UTC).timestamp()),
        "data": {"identifiers": {"cio_id": cio_id}, "delivery_id": "TICKTWO0001",
                 "campaign_id": 1, "action_id": 11, "recipient": "tick.two@example.org"},
    }  # fmt: skip
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "tick.ndjson").write_text(json.dumps(webhook) + "\n")
    loaded = warehouse.command(
        str(Path(sys.executable).parent / "audiences"), "load", "webhooks",
        str(tmp_path / "landing"),
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    warehouse.dbt(*tick, as_of=SECOND)
    after = {model: _table(warehouse, model) for model in SUMMARIES}
    warehouse.dbt(*tick, as_of=SECOND)
    again = {model: _table(warehouse, model) for model in SUMMARIES}
    for model in SUMMARIES:
        assert _restamped(before, after, model) == {person}, model
        assert _restamped(after, again, model) == set(), model
        assert again[model][0] == after[model][0], model
    _equals_full_refresh(warehouse, again, SECOND)


def test_rows_the_last_build_saw_rebuild_nobody(small_warehouse, tmp_path) -> None:
    # In a tick the dedupe writes its rows with the run's stamp before the summary reads
    # them. The next tick must not rebuild those rows' people, nor the people a
    # re-resolved one left (an event that moved from `other` to `person` then).
    warehouse = _copy(small_warehouse, tmp_path)
    person, other = (row[0] for row in warehouse.rows(SENDER))
    before = _build(warehouse, SECOND)
    stamp = max(before["int_people_engagement"][1].values())  # the last build's
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        db.execute(
            f"update {EVENTS} set deduplicated_at = ?, previous_person_id = ? "
            "where message_event_id = (select min(message_event_id) from "
            f"{EVENTS} where person_id = ?)",
            [stamp, other, person],
        )
        # An older run's re-resolution, long since summarised.
        db.execute(
            f"update {EVENTS} set previous_person_id = ? where message_event_id = "
            f"(select max(message_event_id) from {EVENTS} where person_id = ?)",
            [person, other],
        )
    after = _build(warehouse, SECOND)
    for model in SUMMARIES:
        assert _restamped(before, after, model) == set(), model


def _move_one_event(
    warehouse: Warehouse, loser: str, gainer: str, *, recorded: bool
) -> None:
    """A re-resolved event: rewritten with its new person and a new stamp; `recorded`:
    with the person it left in previous_person_id, as the dedupe writes it."""
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        db.execute(
            f"update {EVENTS} set person_id = ?, deduplicated_at = ?, "
            "previous_person_id = ? "
            "where message_event_id = (select min(message_event_id) from "
            f"{EVENTS} where person_id = ? and channel = 'email' "
            "and metric = 'delivered')",
            [gainer, _now(), loser if recorded else None, loser],
        )


# recorded: the dedupe wrote the person the event left in previous_person_id, so both
# people are rebuilt. Not recorded (the dedupe ran twice since and moved it twice): only
# the check sees that a kept row counts an event it no longer has, and everyone is.
@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "not-recorded"])
def test_an_event_moving_to_another_person(small_warehouse, tmp_path, recorded) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    loser, gainer = (row[0] for row in warehouse.rows(SENDER))
    before = _build(warehouse, SECOND)
    _move_one_event(warehouse, loser, gainer, recorded=recorded)
    after = _build(warehouse, SECOND)
    for model in SUMMARIES:
        rebuilt = {loser, gainer} if recorded else set(after[model][1])
        assert _restamped(before, after, model) == rebuilt, model
        counts = {
            person: after[model][0][person]["event_count"]
            - before[model][0][person]["event_count"]
            for person in (loser, gainer)
        }
        assert counts == {loser: -1, gainer: 1}, model
    _equals_full_refresh(warehouse, after, SECOND)


def test_as_of_passing_a_held_event_rebuilds_its_person(
    small_warehouse, tmp_path
) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    person, other = (row[0] for row in warehouse.rows(SENDER))
    # Held since long before the last build, but an hour after its as_of (a sender's
    # clock ahead): not counted yet.
    _copy_event(
        warehouse, person, message_event_id="held-future",
        deduplicated_at=datetime(2026, 1, 1), occurred_at=SECOND_AT + timedelta(hours=1),
    )  # fmt: skip
    # Another at that very as_of, counted by the build below: as_of passing it later
    # changes nothing for its person.
    _copy_event(
        warehouse, other, message_event_id="held-at-as-of",
        deduplicated_at=datetime(2026, 1, 1), occurred_at=SECOND_AT,
    )  # fmt: skip
    before = _build(warehouse, SECOND)
    later = (SECOND_AT + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = _build(warehouse, later)
    for model in SUMMARIES:
        assert _restamped(before, after, model) == {person}, model
    _equals_full_refresh(warehouse, after, later)


def test_after_a_replay_the_previous_as_of_is_that_of_the_rows_it_wrote(
    small_warehouse, tmp_path
) -> None:
    # as_of goes back to a moment with no event since (the data ends before it), so the
    # check passes and the run merges one new event, stamping that person's row with
    # the earlier as_of while everyone else keeps the later one. An event written
    # before that run, dated between the two moments, is counted by the next run at
    # the later as_of: it must be folded in for its person alone, which needs the
    # previous as_of to be the replay's, not the newest as_of any row holds.
    warehouse = _copy(small_warehouse, tmp_path)
    person, other = (row[0] for row in warehouse.rows(SENDER))
    earlier = "2026-03-10T00:00:00Z"
    before = _build(warehouse, SECOND)
    _copy_event(
        warehouse, person, message_event_id="replay-merged", deduplicated_at=_now(),
        occurred_at=datetime(2026, 3, 1, 6),
    )  # fmt: skip
    _copy_event(
        warehouse, other, message_event_id="between-the-two", deduplicated_at=_now(),
        occurred_at=SECOND_AT - timedelta(days=2),
    )  # fmt: skip
    replayed = _build(warehouse, earlier)
    for model in SUMMARIES:
        # The check passed: one person merged, nobody else rebuilt.
        assert _restamped(before, replayed, model) == {person}, model
    back = _build(warehouse, SECOND)
    for model in SUMMARIES:
        assert _restamped(replayed, back, model) == {other}, model
    _equals_full_refresh(warehouse, back, SECOND)


def test_a_replay_and_the_return_equal_full_refreshes(
    small_warehouse, tmp_path
) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    before = _build(warehouse, SECOND)
    then = _build(warehouse, FIRST)
    for model in SUMMARIES:
        # as_of went back: nothing kept.
        assert _restamped(before, then, model) == set(then[model][1]), model
        assert len(then[model][0]) < len(before[model][0]), model
    _equals_full_refresh(warehouse, then, FIRST)
    back = _build(warehouse, SECOND)
    _equals_full_refresh(warehouse, back, SECOND)
    for model in SUMMARIES:
        assert back[model][0] == before[model][0], model


def test_a_changed_definition_rebuilds_everyone(small_warehouse, tmp_path) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    before = _build(warehouse, SECOND)
    # Fewer channels: every column the new definition needs is there, but not its
    # fingerprint.
    warehouse.dbt(
        "run", "--select", *SUMMARIES, as_of=SECOND,
        extra_vars=', "engagement_channels": ["email", "sms"]',
    )  # fmt: skip
    after = {model: _table(warehouse, model) for model in SUMMARIES}
    for model in SUMMARIES:
        assert _restamped(before, after, model) == set(after[model][1]), model
    assert "first_push_message_event_at" not in next(
        iter(after["int_people_engagement"][0].values())
    )


def test_held_rows_of_another_definition_go_when_their_person_has_no_event(
    small_warehouse, tmp_path
) -> None:
    # The held rows cannot be merged into (another definition) and as_of goes back:
    # everyone is rebuilt, and the people with no event by then must lose their row
    # (the run writes them a tombstone), as a full refresh would not hold them.
    warehouse = _copy(small_warehouse, tmp_path)
    before = _build(warehouse, SECOND)
    fewer = ', "engagement_channels": ["email", "sms"]'
    warehouse.dbt("run", "--select", *SUMMARIES, as_of=FIRST, extra_vars=fewer)
    after = {model: _table(warehouse, model) for model in SUMMARIES}
    warehouse.dbt(
        "run", "--select", *SUMMARIES, "--full-refresh", as_of=FIRST, extra_vars=fewer
    )  # fmt: skip
    full = {model: _table(warehouse, model) for model in SUMMARIES}
    for model in SUMMARIES:
        assert len(after[model][0]) < len(before[model][0]), model
        assert after[model][0] == full[model][0], model


# A person with several human (not machine) email events of a metric as of SECOND, and
# the latest one's time.
SEVERAL_OF_METRIC = (
    f"select person_id, max(occurred_at) from {EVENTS} where channel = 'email' "
    "and metric = ? and coalesce(is_machine, false) = false and occurred_at <= ? "
    "and person_id is not null group by 1 having count(*) >= 2 order by 1 limit 1"
)


# The dedupe replaced a held copy with a better one (same key) and recorded whose it
# was. A merge cannot take the old copy out, so its person is rebuilt, once: the new
# copy is not also counted. Here the better copy of their latest open is a machine
# open, which moves their last human engagement back; a delivery's copy changes no
# value, and the subscription state does not count opens.
@pytest.mark.parametrize(
    ("metric", "rebuilt_in"),
    [
        ("opened", {"int_people_engagement"}),
        ("delivered", {"int_people_engagement", "int_people_subscription_state"}),
    ],
)
def test_a_replaced_copy_rebuilds_its_person_alone(
    small_warehouse, tmp_path, metric, rebuilt_in
) -> None:
    warehouse = _copy(small_warehouse, tmp_path)
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        person, latest = db.execute(SEVERAL_OF_METRIC, [metric, SECOND_AT]).fetchone()
    before = _build(warehouse, SECOND)
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        db.execute(
            f"update {EVENTS} set is_machine = true, deduplicated_at = ?, "
            "previous_person_id = person_id where person_id = ? and channel = 'email' "
            "and metric = ? and occurred_at = ?",
            [_now(), person, metric, latest],
        )
    after = _build(warehouse, SECOND)
    for model in SUMMARIES:
        expected = {person} if model in rebuilt_in else set()
        assert _restamped(before, after, model) == expected, model
        counted = after[model][0][person]["event_count"]
        assert counted == before[model][0][person]["event_count"], model
    engagement = after["int_people_engagement"][0][person]
    if metric == "opened":
        assert engagement["last_human_email_engagement_at"] < latest
    _equals_full_refresh(warehouse, after, SECOND)


def test_a_merge_other_than_max_or_min_is_a_compile_error(tmp_path) -> None:
    # The macro merges a kept row with new events by max or min alone; any other merge
    # asked of it is a developer's slip, refused before any SQL runs.
    summary = (
        "{{ summarised_per_person(ref('int_message_events_resolved'), "
        "{'events_seen': 'sum'}, aggregates='count(*) as events_seen') }}"
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "compile", "--quiet",
         "--no-use-colors", "--inline", summary],
        cwd=REPO_ROOT, env=environment(tmp_path), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "column events_seen merges with 'sum'" in result.stdout + result.stderr


def _project_copy(tmp_path: Path) -> Path:
    """The dbt project alone, to edit a model in a test."""
    project = tmp_path / "project"
    project.mkdir()
    copy_project(project)
    return project


def test_a_changed_derived_column_rebuilds_everyone(small_warehouse, tmp_path) -> None:
    # int_people_subscription_state keeps its states (derived from the kept times) with
    # each row: an edit to how one is derived must reach the kept rows too.
    project = _project_copy(tmp_path)
    warehouse = _copy(small_warehouse, tmp_path)
    state = ("--project-dir", str(project), "--select", "int_people_subscription_state")
    warehouse.dbt("run", *state, as_of=SECOND)
    model = project / "models" / "intermediate" / "people"
    model /= "int_people_subscription_state.sql"
    text = model.read_text()
    edited = text.replace(
        "last_spam_complaint_at is not null as has_spam_complaint",
        "last_spam_complaint_at is null as has_spam_complaint",
    )
    assert edited != text
    model.write_text(edited)
    warehouse.dbt("run", *state, as_of=SECOND)
    rows, _ = _table(warehouse, "int_people_subscription_state")
    assert any(row["has_spam_complaint"] for row in rows.values())
    warehouse.dbt("run", *state, "--full-refresh", as_of=SECOND)
    assert rows == _table(warehouse, "int_people_subscription_state")[0]


def test_rebuilt_rows_are_read_by_column_name(small_warehouse, tmp_path) -> None:
    # A caller may list its columns in another order than its aggregates define them;
    # the merged rows are built in the columns' order and the rebuilt ones in the
    # aggregates', so a union by position would swap a rebuilt person's two times.
    project = _project_copy(tmp_path)
    (project / "models" / "intermediate" / "people" / "int_people_span.sql").write_text(
        "{{ summarised_per_person(ref('int_message_events_resolved'), "
        "{'last_at': 'max', 'first_at': 'min'}, "
        "aggregates='min(occurred_at) as first_at, max(occurred_at) as last_at') }}\n"
    )
    warehouse = _copy(small_warehouse, tmp_path)
    loser, gainer = (row[0] for row in warehouse.rows(SENDER))
    span = ("--project-dir", str(project), "--select", "int_people_span")
    warehouse.dbt("run", *span, as_of=SECOND)
    before = {"span": _table(warehouse, "int_people_span")}
    _move_one_event(warehouse, loser, gainer, recorded=True)
    warehouse.dbt("run", *span, as_of=SECOND)
    after = {"span": _table(warehouse, "int_people_span")}
    # The loser was rebuilt, the gainer merged, everyone else kept.
    assert _restamped(before, after, "span") == {loser, gainer}
    rows = after["span"][0]
    assert all(row["first_at"] <= row["last_at"] for row in rows.values())
    warehouse.dbt("run", *span, "--full-refresh", as_of=SECOND)
    assert rows == _table(warehouse, "int_people_span")[0]
