"""What the HTML report shows, read from the warehouse (and dbt's last results).

Each section reads one table; a table that does not exist yet (a fresh warehouse, or a
model not built) leaves its section empty with a note instead of failing the report.
Windows are counted back from the newest row of each table, not from today, so a report
on an old warehouse (or the demo, whose data ends at generation time) still shows data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.dbt_artifacts import (
    UnreadableArtifactError,
    data_health_checks,
    node_name,
    read_manifest,
    read_run_results,
    rebuild_command,
)
from scripts.warehouse import Warehouse

SIZE_DAYS = 90
VOLUME_DAYS = 56
LEDGER_DAYS = 30
LIFT_COHORTS = 6
SYNC_RUNS = 20
ATTENTION_DAYS = 7


@dataclass
class Section:
    """Rows of one source table, or why there are none."""

    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: str | None = None


@dataclass
class ReportData:
    generated_at: datetime
    target: str
    sizes: Section
    movements: Section
    lift: Section
    volumes: Section
    machine_opens: Section
    sync_runs: Section
    dead_letters: Section
    ticks: Section
    dbt_failures: list[dict[str, str]]
    # Every audience's key (dim_audiences): one with no members has no size rows at all.
    audiences: list[str] = field(default_factory=list)


def day(value: Any) -> str:
    """A date or timestamp as YYYY-MM-DD (engines return date, datetime or text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)[:10]


class Reader:
    def __init__(self, wh: Warehouse):
        self.wh = wh
        self.schema = wh.target.schema

    def section(
        self,
        schema: str,
        table: str,
        columns: list[str],
        *,
        date_column: str | None = None,
        days: int | None = None,
        order: str = "",
        limit: int | None = None,
    ) -> Section:
        name = f"{schema}.{table}"
        if not self.wh.table_exists(schema, table):
            return Section(name, missing=f"{name} does not exist yet")
        where, params = "", []
        if date_column and days:
            newest = self.wh.scalar(f"select max({date_column}) from {name}")
            if newest is None:
                return Section(name)
            start = date.fromisoformat(day(newest)) - timedelta(days=days - 1)
            where, params = f" where {date_column} >= %s", [start]
        sql = f"select {', '.join(columns)} from {name}{where}"
        if order:
            sql += f" order by {order}"
        if limit:
            sql += f" limit {int(limit)}"
        names = [c.split(" as ")[-1].strip() for c in columns]
        rows = [
            dict(zip(names, row, strict=True)) for row in self.wh.query(sql, params)
        ]
        return Section(name, rows)


def read(wh: Warehouse, run_results: Path | None) -> ReportData:
    r = Reader(wh)
    s = r.schema
    sizes = r.section(
        s,
        "rpt_audience_sizes_daily",
        ["day", "audience_key", "arm", "members"],
        date_column="day",
        days=SIZE_DAYS,
        order="day, audience_key, arm",
    )
    movements = _grouped_movements(wh, s)
    lift = r.section(
        s,
        "rpt_audience_lift",
        [
            "audience_key",
            "audience_version",
            "cohort_week",
            "conversion_window_days",
            "treatment_members",
            "holdout_members",
            "treatment_conversion_rate",
            "holdout_conversion_rate",
            "absolute_lift",
            "absolute_lift_ci_lower",
            "absolute_lift_ci_upper",
            "relative_lift",
            "minimum_detectable_effect",
            "is_inconclusive",
            "inconclusive_reason",
        ],
        order="audience_key, audience_version, cohort_week",
    )
    lift.rows = _latest_cohorts(lift.rows)
    volumes = r.section(
        s,
        "rpt_event_volumes_daily",
        [
            "event_date",
            "channel",
            "metric",
            "events",
            "baseline_median",
            "is_anomaly",
            "anomaly_direction",
        ],
        date_column="event_date",
        days=VOLUME_DAYS,
        order="channel, metric, event_date",
    )
    machine_opens = r.section(
        s,
        "rpt_machine_open_share_daily",
        ["event_date", "channel", "opens", "machine_opens", "machine_open_share"],
        date_column="event_date",
        days=VOLUME_DAYS,
        order="channel, event_date",
    )
    sync_runs = r.section(
        "segment_sync",
        "runs",
        [
            "run_id",
            "started_at",
            "finished_at",
            "status",
            "exit_code",
            "count_planned",
            "count_sent",
            "count_failed",
            "count_dead_lettered",
            "error",
        ],
        order="started_at desc",
        limit=SYNC_RUNS,
    )
    dead_letters = Section("segment_sync.dead_letters", missing="no sync has run yet")
    if wh.table_exists("segment_sync", "dead_letters"):
        dead_letters = Section(
            "segment_sync.dead_letters",
            [
                {"audience_key": k, "messages": int(n), "reason": reason}
                for k, n, reason in wh.query(
                    "select audience_key, count(*), max(reason) from "
                    "segment_sync.dead_letters group by 1 order by 1"
                )
            ],
        )
    ticks = r.section(
        "audiences_ops",
        "runs",
        [
            "run_id",
            "started_at",
            "finished_at",
            "status",
            "exit_code",
            "steps",
            "alerts",
        ],
        order="started_at desc",
        limit=SYNC_RUNS,
    )
    return ReportData(
        generated_at=datetime.now().astimezone(),
        target=wh.target.describe(),
        sizes=sizes,
        movements=movements,
        lift=lift,
        volumes=volumes,
        machine_opens=machine_opens,
        sync_runs=sync_runs,
        dead_letters=dead_letters,
        ticks=ticks,
        dbt_failures=dbt_failures(run_results),
        audiences=_audience_keys(wh, s),
    )


def _audience_keys(wh: Warehouse, schema: str) -> list[str]:
    if not wh.table_exists(schema, "dim_audiences"):
        return []
    rows = wh.query(
        f"select distinct audience_key from {schema}.dim_audiences order by 1"
    )
    return [str(key) for (key,) in rows]


def _grouped_movements(wh: Warehouse, schema: str) -> Section:
    """Entries and exits by reason over the ledger's last LEDGER_DAYS days of changes."""
    name = f"{schema}.fct_audience_membership_changes"
    if not wh.table_exists(schema, "fct_audience_membership_changes"):
        return Section(name, missing=f"{name} does not exist yet")
    newest = wh.scalar(f"select max(changed_at) from {name}")
    if newest is None:
        return Section(name)
    start = date.fromisoformat(day(newest)) - timedelta(days=LEDGER_DAYS - 1)
    rows = wh.query(
        f"""
        select audience_key, change_type, coalesce(exit_reason, change_type), count(*)
        from {name}
        where changed_at >= %s
        group by 1, 2, 3
        order by 1, 2, 3
        """,
        (start,),
    )
    return Section(
        name,
        [
            {"audience_key": k, "change_type": t, "reason": reason, "people": int(n)}
            for k, t, reason, n in rows
        ],
    )


def _latest_cohorts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest version's last LIFT_COHORTS entry weeks of each audience."""
    newest: dict[str, int] = {}
    for row in rows:
        key = row["audience_key"]
        newest[key] = max(newest.get(key, 0), int(row["audience_version"]))
    kept: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if int(row["audience_version"]) == newest[row["audience_key"]]:
            kept.setdefault(row["audience_key"], []).append(row)
    return [row for key in sorted(kept) for row in kept[key][-LIFT_COHORTS:]]


def dbt_failures(run_results: Path | None) -> list[dict[str, str]]:
    """Failed models and tests of dbt's last run, data-health checks named by check,
    each with the command that rebuilds what the failure skipped."""
    try:
        run = read_run_results(run_results)
    except UnreadableArtifactError:
        return [
            {
                "name": str(run_results),
                "check": "",
                "rebuild": "dbt build",
                "message": "unreadable",
            }
        ]
    if run is None:
        return []
    manifest = read_manifest(run.path.parent / "manifest.json")
    checks = data_health_checks(manifest)
    return [
        {
            "name": node_name(str(r.get("unique_id", ""))),
            "check": checks.get(str(r.get("unique_id")), ""),
            "rebuild": rebuild_command(str(r.get("unique_id", "")), manifest),
            "message": " ".join(str(r.get("message") or "").split())[:200],
        }
        for r in run.failed()
    ]
