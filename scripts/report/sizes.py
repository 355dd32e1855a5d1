"""Audience sizes from the dbt outputs: members per arm and the latest build's movements.

The latest build is the ledger's latest look at the audiences
(`int_audience_ledger_moments`, one row per build that writes history, whether or not
anyone entered or left), not its latest change: after a build that changed nothing an
audience's entries and exits are 0, not those of the last build that changed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scripts.report.table import format_rows
from scripts.warehouse import Warehouse


@dataclass(frozen=True)
class AudienceSize:
    audience_key: str
    audience_version: int
    is_synced: bool
    treatment: int
    holdout: int
    entered: int
    exited: int


def audience_sizes(warehouse: Warehouse) -> list[AudienceSize]:
    schema = warehouse.target.schema
    for table in (
        "dim_audiences",
        "fct_audience_memberships",
        "fct_audience_membership_changes",
        "int_audience_ledger_moments",
    ):
        if not warehouse.table_exists(schema, table):
            raise LookupError(
                f"{schema}.{table} does not exist yet: run `dbt build` first"
            )
    rows = warehouse.query(
        f"""
        with

        latest_run as (
            select max(evaluated_at) as changed_at
            from {schema}.int_audience_ledger_moments
        ),

        movements as (
            select
                changes.audience_key,
                sum(case when changes.change_type = 'entered' then 1 else 0 end)
                    as entered,
                sum(case when changes.change_type = 'exited' then 1 else 0 end)
                    as exited
            from {schema}.fct_audience_membership_changes as changes
            inner join latest_run on changes.changed_at = latest_run.changed_at
            group by 1
        ),

        members as (
            select
                audience_key,
                sum(case when arm = 'treatment' then 1 else 0 end) as treatment,
                sum(case when arm = 'holdout' then 1 else 0 end) as holdout
            from {schema}.fct_audience_memberships
            group by 1
        )

        select
            audiences.audience_key,
            audiences.audience_version,
            audiences.is_synced,
            coalesce(members.treatment, 0),
            coalesce(members.holdout, 0),
            coalesce(movements.entered, 0),
            coalesce(movements.exited, 0)
        from {schema}.dim_audiences as audiences
        left join members on audiences.audience_key = members.audience_key
        left join movements on audiences.audience_key = movements.audience_key
        where audiences.is_latest
        order by 1
        """
    )
    return [
        AudienceSize(str(r[0]), int(r[1]), bool(r[2]), *(int(v) for v in r[3:]))
        for r in rows
    ]


def format_table(sizes: list[AudienceSize]) -> str:
    header = (
        "audience",
        "version",
        "syncs",
        "treatment",
        "holdout",
        "entered",
        "exited",
    )
    body = [
        (
            s.audience_key,
            f"v{s.audience_version}",
            "yes" if s.is_synced else "no",
            str(s.treatment),
            str(s.holdout),
            str(s.entered),
            str(s.exited),
        )
        for s in sizes
    ]
    return format_rows(header, body)
