"""fct_message_events: an incremental run equals a full refresh. as_of: an audience can be
rebuilt exactly as it was at an earlier moment."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from tests.conftest import REPO_ROOT
from tests.dbt import independent_audiences
from tests.dbt.conftest import AS_OF

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

SNAPSHOT = (
    "select message_event_id, source_system, source_event_id, channel, metric, "
    "occurred_at, is_machine, link_url from analytics.fct_message_events"
)


def _rows(path, sql: str) -> set[tuple]:
    with duckdb.connect(str(path)) as connection:
        return set(connection.execute(sql).fetchall())


def test_incremental_build_equals_full_refresh(demo_warehouse) -> None:
    # The fixture built twice: the second run was incremental over late, out-of-order
    # files and the Segment copies of events that webhooks had already delivered.
    incremental = _rows(demo_warehouse.path, SNAPSHOT)
    demo_warehouse.dbt("run", "--select", "fct_message_events", "--full-refresh")
    full = _rows(demo_warehouse.path, SNAPSHOT)
    assert len(incremental) > 10_000
    assert incremental == full
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
    selection = [
        "--select",
        "fct_orders",
        "dim_people",
        "email_clickers",
        "recent_purchasers",
    ]
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
    finally:
        demo_warehouse.dbt("run", *selection, as_of=AS_OF)
    assert then == expected["recent_purchasers_v1"]
    assert all(signal_at <= datetime(2026, 2, 20, 9, 30) for signal_at in then.values())
    now = _rows(
        demo_warehouse.path,
        "select person_id, signal_at from analytics.recent_purchasers_v1",
    )
    assert now != set(then.items())
