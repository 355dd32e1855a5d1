"""Creates and fills the two dbt outputs the sync reads, with exactly the contracted columns.

The sync tests do not depend on dbt: they write `analytics.sync_segment__audience_memberships`
and `analytics.sync_segment__audience_exits` themselves (docs/warehouse-contracts.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from scripts.warehouse import Warehouse

SCHEMA = "analytics"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def create_inputs(wh: Warehouse) -> None:
    wh.ensure_schema(SCHEMA)
    wh.execute(
        f"""create table if not exists {SCHEMA}.sync_segment__audience_memberships (
            audience_key varchar, audience_name varchar, audience_version integer,
            person_id varchar, user_id varchar, signal_at timestamp, entered_at timestamp
        )"""
    )
    wh.execute(
        f"""create table if not exists {SCHEMA}.sync_segment__audience_exits (
            audience_key varchar, user_id varchar, exit_reason varchar,
            exited_at timestamp
        )"""
    )


def set_members(
    wh: Warehouse,
    members: Iterable[tuple[str, str]],
    *,
    version: int = 1,
    at: datetime | None = None,
) -> None:
    """Replace the desired state with (audience_key, user_id) pairs."""
    at = at or utc_now()
    rows = [
        (
            key,
            key.replace("_", " ").title(),
            version,
            f"p-{user}",
            user,
            at,
            at - timedelta(hours=1),
        )
        for key, user in members
    ]
    create_inputs(wh)
    wh.execute(f"delete from {SCHEMA}.sync_segment__audience_memberships")
    wh.executemany(
        f"insert into {SCHEMA}.sync_segment__audience_memberships values "
        "(%s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def set_exits(
    wh: Warehouse, exits: Iterable[tuple[str, str, str]], at: datetime | None = None
) -> None:
    at = at or utc_now()
    create_inputs(wh)
    wh.execute(f"delete from {SCHEMA}.sync_segment__audience_exits")
    wh.executemany(
        f"insert into {SCHEMA}.sync_segment__audience_exits values (%s, %s, %s, %s)",
        [(key, user, reason, at) for key, user, reason in exits],
    )


def set_holdouts(
    wh: Warehouse, rows: Iterable[tuple[str, str, str]], version: int = 1
) -> None:
    """A minimal fct_audience_memberships: (audience_key, user_id, arm)."""
    wh.execute(
        f"""create table if not exists {SCHEMA}.fct_audience_memberships (
            audience_key varchar, audience_version integer, person_id varchar,
            user_id varchar, arm varchar, signal_at timestamp, entered_at timestamp
        )"""
    )
    wh.execute(f"delete from {SCHEMA}.fct_audience_memberships")
    now = utc_now()
    wh.executemany(
        f"insert into {SCHEMA}.fct_audience_memberships values (%s, %s, %s, %s, %s, %s, %s)",
        [(key, version, f"p-{user}", user, arm, now, now) for key, user, arm in rows],
    )
