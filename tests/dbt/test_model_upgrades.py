"""A warehouse built by an older release changes shape in place on its next build, with
no full refresh and nothing lost (README, "Upgrades of the dbt models"), on DuckDB and on
PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

# The timeout covers the session build too when the file runs alone (PostgreSQL: the
# server and two runs of the small warehouse), as in the other PostgreSQL files.
pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(1800)]

EVENTS = "analytics.int_message_events_deduplicated"
RESOLVED = "analytics.int_message_events_resolved"


def _assert_held_events_get_their_person(warehouse: Warehouse) -> None:
    people = dict(warehouse.rows(f"select message_event_id, person_id from {EVENTS}"))
    [(last_written,)] = warehouse.rows(f"select max(deduplicated_at) from {EVENTS}")
    # As an older release left it: the events without their person, who was in a table
    # of its own. (On PostgreSQL the views over the events go with the column: the build
    # below must bring them back, as docs/scheduling.md says a whole build does.)
    warehouse.execute(
        f"drop view {RESOLVED}",
        f"create table {RESOLVED} as select message_event_id, person_id from {EVENTS}",
        f"alter table {EVENTS} drop column person_id"
        + (" cascade" if warehouse.target == "postgres" else ""),
    )

    # The next build of the events and all they feed, with no new data, at the
    # warehouse's last as_of (`run`: its tests are the subject of other files).
    warehouse.dbt("run", "--select", "int_message_events_deduplicated+", as_of=SECOND)

    assert sum(person is not None for person in people.values()) > 1_000
    # Every held event was resolved once, by this build.
    [(count, first_written)] = warehouse.rows(
        f"select count(*), min(deduplicated_at) from {EVENTS}"
    )
    assert (count, first_written > last_written) == (len(people), True)
    assert (
        dict(warehouse.rows(f"select message_event_id, person_id from {RESOLVED}"))
        == people
    )
    assert warehouse.rows(
        "select table_type from information_schema.tables "
        "where table_schema = 'analytics' and table_name = 'int_message_events_resolved'"
    ) == [("VIEW",)]
    # The views over the events are back (dropped with the column on PostgreSQL).
    assert warehouse.rows("select count(*) from analytics.fct_message_events") == [
        (len(people),)
    ]


def test_events_held_before_the_person_was_stored_with_them_get_their_person(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    _assert_held_events_get_their_person(Warehouse(environment(tmp_path), "dev"))


@pytest.mark.postgres
def test_postgres_events_held_before_the_person_was_stored_with_them_get_their_person(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    _assert_held_events_get_their_person(
        Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    )
