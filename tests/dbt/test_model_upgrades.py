"""A warehouse built by an older release changes shape in place on its next build, with
no full refresh and nothing lost (README, "Upgrades of the dbt models")."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(600)]

EVENTS = "analytics.int_message_events_deduplicated"
RESOLVED = "analytics.int_message_events_resolved"


def test_events_held_before_the_person_was_stored_with_them_get_their_person(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        people = dict(
            db.execute(f"select message_event_id, person_id from {EVENTS}").fetchall()
        )
        [(last_written,)] = db.execute(
            f"select max(deduplicated_at) from {EVENTS}"
        ).fetchall()
        # As an older release left it: the events without their person, who was in a
        # table of its own.
        db.execute(f"drop view {RESOLVED}")
        db.execute(
            f"create table {RESOLVED} as select message_event_id, person_id from {EVENTS}"
        )
        db.execute(f"alter table {EVENTS} drop column person_id")

    # The next build, with no new data, at the warehouse's last as_of (`run`: its tests
    # are the subject of other files).
    warehouse.dbt(
        "run", "--select", "int_message_events_deduplicated", "int_message_events_resolved",
        as_of=SECOND,
    )  # fmt: skip

    assert sum(person is not None for person in people.values()) > 1_000
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        # Every held event was resolved once, by this build.
        assert db.execute(
            f"select count(*), min(deduplicated_at) > ? from {EVENTS}", [last_written]
        ).fetchall() == [(len(people), True)]
        assert (
            dict(
                db.execute(
                    f"select message_event_id, person_id from {RESOLVED}"
                ).fetchall()
            )
            == people
        )
        [(kind,)] = db.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'analytics' and table_name = 'int_message_events_resolved'"
        ).fetchall()
    assert kind == "VIEW"
