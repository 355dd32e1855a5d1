"""The incremental models (events with their person, identity) equal a full refresh, also
after identity changed between builds. as_of: an audience can be rebuilt exactly as it was
at an earlier moment, and going back to the present leaves every table as it was."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from tests.conftest import REPO_ROOT
from tests.dbt import independent_audiences
from tests.dbt.conftest import AS_OF

AUDIENCES = REPO_ROOT / "models" / "audiences"

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

SNAPSHOT = (
    "select message_event_id, source_system, source_event_id, channel, metric, "
    "occurred_at, is_machine, link_url from analytics.fct_message_events"
)


# What the audiences read, per model; the build stamps (changed_at, deduplicated_at) differ
# between an incremental and a full run by design and are left out.
DERIVED = {
    "resolved": "select message_event_id, person_id from analytics.int_message_events_resolved",
    "identity": (
        "select identifier_type, identifier_value, person_id "
        "from analytics.int_identifiers_resolved where person_id is not null"
    ),
    "people": "select * from analytics.dim_people",
    "combinations": (
        "select cio_id, customer_id, email, last_seen_at "
        "from analytics.int_identifier_combinations"
    ),
    "observed": "select * from analytics.int_identifiers_observed",
    "members": " union all ".join(
        f"select '{name}', person_id, signal_at from analytics.{name}"
        for name in sorted(path.stem for path in AUDIENCES.glob("*_v*.sql"))
    ),
}
# Everything between the raw tables and the audiences (the ledger and syncs excluded).
BELOW_THE_LEDGER = [
    "path:models/intermediate",
    "path:models/marts/people",
    "path:models/marts/commerce",
    "path:models/marts/engagement",
    "path:models/audiences",
]
INCREMENTAL_MODELS = [
    "int_message_events_deduplicated",
    "int_identifier_combinations",
    "int_identifiers_resolved",
]


def _rows(path, sql: str) -> set[tuple]:
    with duckdb.connect(str(path)) as connection:
        return set(connection.execute(sql).fetchall())


# The person of the events that carried only person 40's customer_id (no cio_id): the
# resolved view shows the person, fct_message_events the identifiers.
MOVED_PERSON = (
    "select resolved.person_id from analytics.int_message_events_resolved as resolved "
    "inner join analytics.fct_message_events as events "
    "on resolved.message_event_id = events.message_event_id "
    "where events.customer_id = 'cus_supp_40' and events.cio_id is null"
)


def _derived(path) -> dict[str, set[tuple]]:
    return {name: _rows(path, sql) for name, sql in DERIVED.items()}


def _person_of(path, sql: str) -> set[str]:
    return {row[0] for row in _rows(path, sql)}


def test_incremental_build_equals_full_refresh(demo_warehouse) -> None:
    # The fixture built twice: the second run was incremental over late, out-of-order
    # files and the Segment copies of events that webhooks had already delivered, and
    # person 40's customer_id moved to a newer cio_id between the builds.
    incremental = _rows(demo_warehouse.path, SNAPSHOT)
    derived = _derived(demo_warehouse.path)
    moved = _person_of(
        demo_warehouse.path,
        MOVED_PERSON,
    )
    demo_warehouse.dbt("run", "--select", *INCREMENTAL_MODELS, "--full-refresh")
    demo_warehouse.dbt("run", "--select", *BELOW_THE_LEDGER)
    full = _rows(demo_warehouse.path, SNAPSHOT)
    assert len(incremental) > 10_000
    assert incremental == full
    assert moved == {"cio:moved00b"}
    full_derived = _derived(demo_warehouse.path)
    for name, rows in derived.items():
        assert rows, name
        assert rows == full_derived[name], name
    with duckdb.connect(str(demo_warehouse.path)) as connection:
        sources = dict(
            connection.execute(
                "select source_system, count(*) from analytics.fct_message_events group by 1"
            ).fetchall()
        )
        segment_rows = connection.execute(
            "select count(*) from raw_customerio_segment.tracks"
        ).fetchone()[0]
    # Most Segment copies mirror webhook events and must not count twice.
    assert 0 < sources.get("segment", 0) < segment_rows / 2


def test_as_of_rebuilds_an_audience_as_it_was(demo_warehouse) -> None:
    earlier = "2026-02-20T09:30:00Z"
    # Every model whose rows depend on as_of (identity included), not the event history.
    selection = ["--select", "+dim_people", "+email_clickers", "+recent_purchasers"]
    before = _derived(demo_warehouse.path)
    try:
        demo_warehouse.dbt("run", *selection, as_of=earlier)
        with duckdb.connect(str(demo_warehouse.path)) as connection:
            then = dict(
                connection.execute(
                    "select person_id, signal_at from analytics.recent_purchasers_v1"
                ).fetchall()
            )
            expected = independent_audiences.compute(
                connection,
                datetime.fromisoformat(earlier.replace("Z", "")),
                REPO_ROOT / "seeds" / "global_suppression_list.csv",
            )
        # The replay rewinds identity: person 40 belonged to the older cio_id then.
        moved_then = _person_of(
            demo_warehouse.path,
            MOVED_PERSON,
        )
    finally:
        demo_warehouse.dbt("run", *selection, as_of=AS_OF)
    assert then == expected["recent_purchasers_v1"]
    assert all(signal_at <= datetime(2026, 2, 20, 9, 30) for signal_at in then.values())
    assert moved_then == {"cio:moved00a"}
    now = _rows(
        demo_warehouse.path,
        "select person_id, signal_at from analytics.recent_purchasers_v1",
    )
    assert now != set(then.items())
    # Back at the present, the incremental tables re-resolved exactly what the replay
    # changed: everything equals the state before it (itself equal to a full refresh).
    after = _derived(demo_warehouse.path)
    for name, rows in before.items():
        assert rows == after[name], name
