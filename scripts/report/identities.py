"""How each synced audience's treatment arm reaches Segment: sent under a user id, sent
under an email-derived anonymousId, or not sent, by reason (models/syncs/segment/)."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.report.table import format_rows
from scripts.warehouse import Warehouse

SKIP_REASONS = ("missing_user_id", "missing_identifier")


@dataclass(frozen=True)
class AudienceIdentities:
    audience_key: str
    treatment: int
    sent_user_id: int
    sent_anonymous_id: int
    skipped: dict[str, int]

    @property
    def unexplained(self) -> int:
        """Members neither sent nor skipped with a reason; zero unless something is wrong."""
        return (
            self.treatment
            - self.sent_user_id
            - self.sent_anonymous_id
            - sum(self.skipped.values())
        )


def audience_identities(warehouse: Warehouse) -> list[AudienceIdentities]:
    schema = warehouse.target.schema
    needed = ("sync_segment__audience_memberships", "sync_segment__audience_skips")
    if not all(warehouse.table_exists(schema, table) for table in needed):
        return []
    skip_sums = ", ".join(
        f"sum(case when skip_reason = '{reason}' then 1 else 0 end) as {reason}"
        for reason in SKIP_REASONS
    )
    skip_columns = ", ".join(
        f"coalesce(skipped.{reason}, 0)" for reason in SKIP_REASONS
    )
    rows = warehouse.query(
        f"""
        with

        treatment as (
            select memberships.audience_key, count(*) as members
            from {schema}.fct_audience_memberships as memberships
            inner join {schema}.dim_audiences as audiences
                on memberships.audience_key = audiences.audience_key
                and memberships.audience_version = audiences.audience_version
            where audiences.is_latest and audiences.is_synced
                and memberships.arm = 'treatment'
            group by 1
        ),

        sent as (
            select
                audience_key,
                count(user_id) as by_user_id,
                count(anonymous_id) as by_anonymous_id
            from {schema}.sync_segment__audience_memberships
            group by 1
        ),

        skipped as (
            select audience_key, {skip_sums}
            from {schema}.sync_segment__audience_skips
            group by 1
        )

        select
            audiences.audience_key,
            coalesce(treatment.members, 0),
            coalesce(sent.by_user_id, 0),
            coalesce(sent.by_anonymous_id, 0),
            {skip_columns}
        from {schema}.dim_audiences as audiences
        left join treatment on audiences.audience_key = treatment.audience_key
        left join sent on audiences.audience_key = sent.audience_key
        left join skipped on audiences.audience_key = skipped.audience_key
        where audiences.is_latest and audiences.is_synced
        order by 1
        """
    )
    return [
        AudienceIdentities(
            str(r[0]),
            int(r[1]),
            int(r[2]),
            int(r[3]),
            dict(zip(SKIP_REASONS, (int(v) for v in r[4:]), strict=True)),
        )
        for r in rows
    ]


def format_identities(rows: list[AudienceIdentities]) -> str:
    header = ("synced audience", "treatment", "user_id", "anonymous_id", *SKIP_REASONS)
    body = [
        (
            r.audience_key,
            str(r.treatment),
            str(r.sent_user_id),
            str(r.sent_anonymous_id),
            *(str(r.skipped[reason]) for reason in SKIP_REASONS),
        )
        for r in rows
    ]
    return format_rows(header, body)
