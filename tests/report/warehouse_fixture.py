"""A warehouse holding everything the HTML report reads, with known values.

The rpt_* tables follow the contract of the reporting models (docs/report.md), created
here with exactly those columns in a real DuckDB file or PostgreSQL database; the sync's
tables are made by the sync's own DDL (outbox.ensure) and the ticks' by record.py.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from scripts.run import record
from scripts.segment_sync import outbox
from scripts.warehouse import Warehouse

SCHEMA = "analytics"
LAST_DAY = date(2026, 11, 30)
DAYS = 28
DROP_DAY = LAST_DAY - timedelta(days=1)
AUDIENCES = ("email_clickers", "cart_recovery_clicked_no_purchase")
# In dim_audiences, never a member: it has no size rows at all.
NEVER_FILLED = "replenishment_clicked_no_purchase"


def days() -> list[date]:
    return [LAST_DAY - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def members(audience: str, arm: str, index: int) -> int:
    """Known sizes: email_clickers grows, cart recovery empties on the last day."""
    if audience == "email_clickers":
        return (500 + 5 * index) if arm == "treatment" else (50 + index // 2)
    if index == DAYS - 1:
        return 0
    return (40 + index % 7) if arm == "treatment" else 3


def clicks(day: date) -> int:
    weekday_factor = (1.0, 1.1, 1.05, 1.0, 0.95, 0.7, 0.6)[day.weekday()]
    events = int(2000 * weekday_factor)
    return events // 2 if day == DROP_DAY else events


def machine_share(index: int) -> float:
    return round(0.40 + 0.005 * index, 4)


# audience, version, cohort_week, treatment, holdout, absolute lift, lower, upper,
# inconclusive reason (None: conclusive)
LIFT = [
    ("email_clickers", 1, date(2026, 11, 2), 900, 100, 0.031, 0.012, 0.05, None),
    (
        "email_clickers",
        1,
        date(2026, 11, 9),
        950,
        105,
        0.012,
        -0.008,
        0.032,
        "interval spans zero",
    ),
    ("email_clickers", 1, date(2026, 11, 16), 980, 108, 0.02, 0.001, 0.039, None),
    (
        "cart_recovery_clicked_no_purchase",
        2,
        date(2026, 11, 16),
        60,
        4,
        0.15,
        -0.2,
        0.5,
        "holdout arm too small",
    ),
]


def fill(wh: Warehouse, target_dir: Path) -> None:
    wh.ensure_schema(SCHEMA)
    _audiences(wh)
    _sizes(wh)
    _ledger(wh)
    _lift(wh)
    _volumes(wh)
    _sync_history(wh)
    _ticks(wh)
    _dbt_artifacts(target_dir)


def _audiences(wh: Warehouse) -> None:
    wh.execute(
        f"create table {SCHEMA}.dim_audiences (audience_key varchar, audience_version "
        "integer, is_latest boolean)"
    )
    wh.executemany(
        f"insert into {SCHEMA}.dim_audiences values (%s, %s, %s)",
        [(key, 1, True) for key in (*AUDIENCES, NEVER_FILLED)],
    )


def _sizes(wh: Warehouse) -> None:
    wh.execute(
        f"""create table {SCHEMA}.rpt_audience_sizes_daily (
            day date, audience_key varchar, audience_version integer, arm varchar,
            members integer, entered integer, exited integer)"""
    )
    wh.executemany(
        f"insert into {SCHEMA}.rpt_audience_sizes_daily values (%s, %s, %s, %s, %s, %s, %s)",
        [
            (d, key, 1, arm, members(key, arm, i), 1, 0)
            for i, d in enumerate(days())
            for key in AUDIENCES
            for arm in ("treatment", "holdout")
        ],
    )


LEDGER = [  # audience, change_type, exit_reason, people
    ("email_clickers", "entered", None, 140),
    ("email_clickers", "exited", "window_expired", 30),
    ("email_clickers", "exited", "purchased", 12),
    ("cart_recovery_clicked_no_purchase", "entered", None, 25),
    ("cart_recovery_clicked_no_purchase", "exited", "purchased", 9),
    ("cart_recovery_clicked_no_purchase", "exited", "unsubscribed", 2),
]


def _ledger(wh: Warehouse) -> None:
    wh.execute(
        f"""create table {SCHEMA}.fct_audience_membership_changes (
            membership_change_id varchar, audience_key varchar, person_id varchar,
            user_id varchar, arm varchar, change_type varchar, exit_reason varchar,
            audience_version integer, change_sequence integer, signal_at timestamp,
            changed_at timestamp)"""
    )
    rows = []
    at = datetime(2026, 11, 29, 6)
    for key, change, reason, people in LEDGER:
        for n in range(people):
            rows.append(
                (
                    f"{key}-{change}-{reason}-{n}",
                    key,
                    f"p{n}",
                    f"u{n}",
                    "treatment",
                    change,
                    reason,
                    1,
                    1,
                    at,
                    at,
                )
            )
    wh.executemany(
        f"insert into {SCHEMA}.fct_audience_membership_changes values "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def _lift(wh: Warehouse) -> None:
    wh.execute(
        f"""create table {SCHEMA}.rpt_audience_lift (
            audience_key varchar, audience_version integer, cohort_week date,
            conversion_window_days integer, treatment_members integer,
            holdout_members integer, treatment_converters integer,
            holdout_converters integer, treatment_conversion_rate double precision,
            holdout_conversion_rate double precision,
            treatment_revenue_per_member double precision,
            holdout_revenue_per_member double precision, absolute_lift double precision,
            absolute_lift_ci_lower double precision, absolute_lift_ci_upper double precision,
            relative_lift double precision, relative_lift_ci_lower double precision,
            relative_lift_ci_upper double precision,
            minimum_detectable_effect double precision, is_inconclusive boolean,
            inconclusive_reason varchar)"""
    )
    rows = []
    for key, version, week, t, h, lift, lower, upper, reason in LIFT:
        base = 0.1
        rows.append(
            (
                key,
                version,
                week,
                7,
                t,
                h,
                int(t * (base + lift)),
                int(h * base),
                base + lift,
                base,
                12.5,
                10.0,
                lift,
                lower,
                upper,
                lift / base,
                lower / base,
                upper / base,
                0.025,
                reason is not None,
                reason,
            )
        )
    wh.executemany(
        f"insert into {SCHEMA}.rpt_audience_lift values ("
        + ", ".join(["%s"] * 21)
        + ")",
        rows,
    )


def _volumes(wh: Warehouse) -> None:
    wh.execute(
        f"""create table {SCHEMA}.rpt_event_volumes_daily (
            event_date date, channel varchar, metric varchar, events integer,
            baseline_median double precision, baseline_weeks integer,
            is_anomaly boolean, anomaly_direction varchar)"""
    )
    rows = []
    for d in days():
        drop = d == DROP_DAY
        rows.append(
            (
                d,
                "email",
                "clicked",
                clicks(d),
                float(clicks(d + timedelta(days=7))) if drop else float(clicks(d)),
                4,
                drop,
                "drop" if drop else None,
            )
        )
        rows.append((d, "email", "opened", 9000, 9000.0, 4, False, None))
    wh.executemany(
        f"insert into {SCHEMA}.rpt_event_volumes_daily values "
        "(%s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )
    wh.execute(
        f"""create table {SCHEMA}.rpt_machine_open_share_daily (
            event_date date, channel varchar, opens integer, machine_opens integer,
            machine_open_share double precision)"""
    )
    wh.executemany(
        f"insert into {SCHEMA}.rpt_machine_open_share_daily values (%s, %s, %s, %s, %s)",
        [
            (d, "email", 9000, int(9000 * machine_share(i)), machine_share(i))
            for i, d in enumerate(days())
        ],
    )


REFUSAL = (
    "refusing to send:\n  - [data_health] data-health check 'event_volume' failed "
    "(data_health_event_volume_clicked); see `dbt test --select tag:data_health`"
)


def _sync_history(wh: Warehouse) -> None:
    outbox.ensure(wh)
    wh.executemany(
        f"insert into {outbox.RUNS} (run_id, target_name, started_at, finished_at, status, "
        "exit_code, is_forced, is_full_resync, count_planned, count_sent, count_failed, "
        "count_dead_lettered, error) values "
        "(%s, 'dev', %s, %s, %s, %s, false, false, %s, %s, %s, %s, %s)",
        [
            (
                "r1",
                datetime(2026, 11, 28, 6),
                datetime(2026, 11, 28, 6, 1),
                "ok",
                0,
                640,
                640,
                0,
                0,
                None,
            ),
            (
                "r2",
                datetime(2026, 11, 29, 6),
                datetime(2026, 11, 29, 6, 2),
                "partial",
                5,
                120,
                118,
                0,
                2,
                None,
            ),
            (
                "r3",
                datetime(2026, 11, 30, 6),
                datetime(2026, 11, 30, 6, 0),
                "refused",
                3,
                0,
                0,
                0,
                0,
                REFUSAL,
            ),
        ],
    )
    wh.executemany(
        f"insert into {outbox.DEAD_LETTERS} (message_id, transition_id, run_id, "
        "audience_key, user_id, call_type, reason, attempts, payload, dead_lettered_at) "
        f"values (%s, %s, 'r2', 'fatigued', %s, 'track', %s, 3, "
        f"cast('{{}}' as {wh.json_type}), %s)",
        [
            (
                f"m{i}",
                f"t{i}",
                f"u{i}",
                "event is 40200 bytes; Segment's limit is 32 KB",
                datetime(2026, 11, 29, 6, 2),
            )
            for i in range(2)
        ],
    )


def _ticks(wh: Warehouse) -> None:
    record.start(wh, "tick1", "dev", datetime(2026, 11, 30, 6))
    record.finish(
        wh,
        "tick1",
        status="attention",
        exit_code=3,
        steps=[
            {"step": "dbt build", "exit_code": 1},
            {"step": "sync segment", "exit_code": 3},
        ],
        alerts=["data_health", "guardrail_refusal"],
    )


def _dbt_artifacts(target_dir: Path) -> None:
    unique_id = "test.engagement_audiences.data_health_event_volume_clicked"
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / "manifest.json").write_text(
        json.dumps(
            {
                "nodes": {
                    unique_id: {
                        "resource_type": "test",
                        "name": "data_health_event_volume_clicked",
                        "tags": ["data_health"],
                        "config": {
                            "tags": ["data_health"],
                            "meta": {"check": "event_volume"},
                        },
                    }
                }
            }
        )
    )
    (target_dir / "run_results.json").write_text(
        json.dumps(
            {
                "results": [
                    {
                        "unique_id": unique_id,
                        "status": "fail",
                        "message": "Got 1 result, configured to fail if != 0",
                    }
                ]
            }
        )
    )
