"""`audiences_ops.runs`: one row per tick with each step's outcome, kept forever.

The row is inserted when the tick starts (status `running`) and completed when it ends, so
a tick killed half-way is still visible. The connection is opened only around these two
writes: between them the steps need the (DuckDB) warehouse to themselves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from scripts.warehouse import Warehouse

SCHEMA = "audiences_ops"
RUNS = f"{SCHEMA}.runs"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_table(wh: Warehouse) -> None:
    wh.ensure_schema(SCHEMA)
    wh.execute(
        f"""create table if not exists {RUNS} (
            run_id varchar primary key,
            target_name varchar not null,
            started_at timestamp not null,
            finished_at timestamp,
            status varchar not null,
            exit_code integer,
            steps varchar,
            alerts varchar
        )"""
    )
    # Added after the first release: a warehouse from before it gains the column.
    wh.execute(
        f"alter table {RUNS} add column if not exists keys_verified_at timestamp"
    )
    wh.execute(
        f"alter table {RUNS} add column if not exists storage_vacuumed_at timestamp"
    )
    wh.execute(f"alter table {RUNS} add column if not exists open_alerts varchar")


def start(wh: Warehouse, run_id: str, target_name: str, started_at: datetime) -> None:
    ensure_table(wh)
    wh.execute(
        f"insert into {RUNS} (run_id, target_name, started_at, status) "
        "values (%s, %s, %s, 'running')",
        (run_id, target_name, started_at),
    )


def keys_verified_before(
    wh: Warehouse, target_name: str, now: datetime
) -> datetime | None:
    """When the build of the last tick on this target whose key checks all passed
    started (scripts/run/key_checks.py), or None. A mark from a clock that was ahead
    would let rows written since, with earlier stamps, go unchecked (_latest_mark)."""
    return _latest_mark(wh, "keys_verified_at", target_name, now)


def storage_vacuumed_before(
    wh: Warehouse, target_name: str, now: datetime
) -> datetime | None:
    """When the build of the last tick on this target that let DuckDB vacuum started
    (scripts/run/storage_vacuum.py), or None. A mark from a clock that was ahead would
    keep every tick from vacuuming until the clock had passed it (_latest_mark)."""
    return _latest_mark(wh, "storage_vacuumed_at", target_name, now)


def open_alerts_before(wh: Warehouse, target_name: str, now: datetime) -> str | None:
    """The open alerts (JSON, scripts/alerts/repeats.py) of the last finished tick on
    this target that started before `now` (one a clock ahead started would otherwise
    stay the latest for ever)."""
    rows = wh.query(
        f"select open_alerts from {RUNS} where target_name = %s and finished_at is not "
        "null and started_at <= %s order by started_at desc limit 1",
        (target_name, now),
    )
    return rows[0][0] if rows else None


def _latest_mark(
    wh: Warehouse, column: str, target_name: str, now: datetime
) -> datetime | None:
    """The latest moment in `column` for this target, or None.

    A mark later than `now` was taken by a clock that was ahead (or this one went back):
    it is forgotten for good, and so is every mark after it, rather than used again once
    the clock has passed it."""
    wh.execute(
        f"update {RUNS} set {column} = null where target_name = %s and {column} > %s",
        (target_name, now),
    )
    rows = wh.query(
        f"select max({column}) from {RUNS} where target_name = %s", (target_name,)
    )
    return rows[0][0] if rows else None


def finish(
    wh: Warehouse,
    run_id: str,
    *,
    status: str,
    exit_code: int,
    steps: list[dict[str, object]],
    alerts: list[str],
    keys_verified_at: datetime | None = None,
    storage_vacuumed_at: datetime | None = None,
    open_alerts: str | None = None,
) -> None:
    wh.execute(
        f"update {RUNS} set finished_at = %s, status = %s, exit_code = %s, steps = %s, "
        "alerts = %s, keys_verified_at = %s, storage_vacuumed_at = %s, "
        "open_alerts = %s where run_id = %s",
        (
            now_utc(),
            status,
            exit_code,
            json.dumps(steps),
            ",".join(alerts) or None,
            keys_verified_at,
            storage_vacuumed_at,
            open_alerts,
            run_id,
        ),
    )
