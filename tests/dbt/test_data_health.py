"""Data-health tests (macros/tests/, tagged data_health, meta.check): each passes on the
demo data, and each fails, naming exactly the broken thing, when that thing breaks.

The faults are injected into a copy of the session's demo warehouse (a real DuckDB file
built by the real loaders and dbt), at the layer each check watches; then the reporting
models are rebuilt and their tests run, as `dbt build` would. The event-volume check
also gets a synthetic mart at make-demo volume (the 2,500-person test demo has too few
clicks a day for a one-day 50 % drop to be told from noise: 4 Poisson standard
deviations is the rule's floor).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests import dbt_commands
from tests.conftest import REPO_ROOT
from tests.dbt.conftest import AS_OF

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

BIN = Path(sys.executable).parent
CHECKS = {
    "event_volume",
    "source_freshness",
    "identity_coverage",
    "machine_open_share",
    "audience_size",
}
# AS_OF is 2026-03-01 12:00; the checks judge the 7 complete days before it.
RECENT_START = "2026-02-22"


@dataclass(frozen=True)
class CheckResult:
    status: str
    failures: int | None
    rows: list[dict]


def _dbt(
    path: Path, target: Path, *args: str, extra_vars: dict | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(path),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    return dbt_commands.run(
        [str(BIN / "dbt"), *args, "--no-use-colors", "--vars",
         json.dumps({"as_of": AS_OF, **(extra_vars or {})})],
        env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _data_health_results(path: Path, target: Path) -> dict[str, CheckResult]:
    """Each data-health test's outcome by its meta.check, as the guardrails find them:
    run_results.json for the status, the manifest for tag and check name, the stored
    failures for the rows."""
    # Unit tests run in the same build but live outside "nodes"; they are no checks.
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    results = json.loads((target / "run_results.json").read_text())["results"]
    found: dict[str, CheckResult] = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        for result in results:
            node = manifest.get(result["unique_id"])
            if node is None or "data_health" not in node["config"]["tags"]:
                continue
            rows: list[dict] = []
            if result["status"] == "fail" and result.get("relation_name"):
                cursor = connection.execute(f"select * from {result['relation_name']}")
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            found[node["config"]["meta"]["check"]] = CheckResult(
                result["status"], result.get("failures"), rows
            )
    return found


@pytest.fixture(scope="module")
def healthy_and_broken(demo_warehouse, tmp_path_factory):
    """The checks on the demo as built, then on a copy with one fault per check."""
    root = tmp_path_factory.mktemp("data-health")
    path = root / "warehouse.duckdb"
    shutil.copy(demo_warehouse.path, path)
    # The session demo was built twice, first from half the files, and its audiences
    # jumped in between (as the audience_size check rightly says). Judge the warehouse
    # built once from all of the data, as the scheduled build after a backfill is. The
    # ledger survives --full-refresh; starting it over takes rebuild_ledger.
    rebuilt = _dbt(
        path,
        root / "rebuilt",
        "build",
        "--full-refresh",
        "--exclude",
        "tag:data_health",
        extra_vars={"rebuild_ledger": True},
    )
    assert rebuilt.returncode == 0, rebuilt.stdout[-4000:]

    healthy = _dbt(path, root / "healthy", "test", "--select", "tag:data_health")
    assert healthy.returncode == 0, healthy.stdout[-4000:]
    healthy_results = _data_health_results(path, root / "healthy")

    with duckdb.connect(str(path)) as connection:
        # Source freshness: no webhook file loaded since 20 February.
        connection.execute(
            "update raw_customerio.webhook_events "
            "set _loaded_at = timestamp '2026-02-20 00:00:00'"
        )
        # Identity coverage: an integration stops sending identifiers on events, so
        # their resolution finds no person (what the next build would write).
        connection.execute(
            "update analytics.int_message_events_deduplicated "
            "set customer_id = null, email = null, cio_id = null, person_id = null "
            f"where occurred_at >= timestamp '{RECENT_START}'"
        )
        # Machine-open share: a mailbox provider stops prefetching email this week.
        connection.execute(
            "update analytics.int_message_events_deduplicated set is_machine = false "
            f"where metric = 'opened' and channel = 'email' "
            f"and occurred_at >= timestamp '{RECENT_START}'"
        )
        # Audience size: yesterday's build had unengaged_45_days as it is now, today's
        # (AS_OF) emptied it: every open stint exits, as a broken upstream would make it.
        connection.execute(
            "update analytics.fct_audience_membership_changes "
            "set changed_at = timestamp '2026-02-28 12:00:00' "
            "where audience_key = 'unengaged_45_days'"
        )
        connection.execute(
            """
            insert into analytics.fct_audience_membership_changes
            select
                md5(audience_key || person_id || 'fault'), audience_key, person_id,
                user_id, arm, 'exited', 'window_expired', audience_version, 0,
                signal_at, timestamp '2026-03-01 12:00:00'
            from (
                select *, row_number() over (
                    partition by audience_key, person_id
                    order by changed_at desc, change_sequence desc
                ) as recency
                from analytics.fct_audience_membership_changes
                where audience_key = 'unengaged_45_days'
            ) as ledger
            where recency = 1 and change_type = 'entered'
            """
        )
    broken = _dbt(
        path, root / "broken", "build", "--select", "tag:reporting", "--store-failures"
    )
    assert broken.returncode == 1, broken.stdout[-4000:]
    return healthy_results, _data_health_results(path, root / "broken")


def test_every_check_passes_on_the_demo(healthy_and_broken) -> None:
    healthy, _ = healthy_and_broken
    assert set(healthy) == CHECKS
    assert {check: result.status for check, result in healthy.items()} == dict.fromkeys(
        CHECKS, "pass"
    )


def test_source_freshness_fails_on_a_stale_source(healthy_and_broken) -> None:
    result = healthy_and_broken[1]["source_freshness"]
    assert result.status == "fail"
    assert [row["source_name"] for row in result.rows] == ["customerio_webhooks"]
    assert result.rows[0]["hours_since_load"] > 72


def test_identity_coverage_fails_when_events_lose_their_ids(healthy_and_broken) -> None:
    result = healthy_and_broken[1]["identity_coverage"]
    assert result.status == "fail"
    assert [row["record_type"] for row in result.rows] == ["message_event"]
    assert result.rows[0]["coverage_share"] < 0.75


def test_machine_open_share_fails_on_a_jump(healthy_and_broken) -> None:
    result = healthy_and_broken[1]["machine_open_share"]
    assert result.status == "fail"
    (row,) = result.rows
    assert row["channel"] == "email"
    assert row["recent_share"] == 0
    assert row["baseline_share"] > 0.15


def test_audience_size_fails_when_an_audience_empties(healthy_and_broken) -> None:
    result = healthy_and_broken[1]["audience_size"]
    assert result.status == "fail"
    (row,) = result.rows
    assert row["audience_key"] == "unengaged_45_days"
    assert row["members"] == 0
    assert row["previous_members"] > 0


def test_event_volume_is_not_fooled_by_these_faults(healthy_and_broken) -> None:
    # None of the faults removed events: the volume check has nothing to say.
    assert healthy_and_broken[1]["event_volume"].status == "pass"


# ---------- the event-volume check at make-demo volume


def _synthetic_daily_counts(drop_day: date) -> list[tuple]:
    """Ten weeks of email and SMS clicks and deliveries with the demo's shapes: a
    Thursday newsletter (3x), flash sales every 16-24 days (5x), Poisson noise; then
    half of drop_day's email clicks lost, as a broken webhook would lose them."""
    rng = random.Random(7)
    as_of_day = date.fromisoformat(AS_OF[:10])
    start = as_of_day - timedelta(days=70)
    flash_days = {start + timedelta(days=d) for d in (5, 26, 45, 63)}
    base = {
        ("email", "clicked"): 60,
        ("sms", "clicked"): 45,
        ("email", "delivered"): 900,
    }
    rows = []
    for offset in range(70):
        day = start + timedelta(days=offset)
        for (channel, metric), mean in base.items():
            mean *= 3 if day.weekday() == 3 else 1
            mean *= 5 if day in flash_days else 1
            count = _poisson(mean, rng)
            if (channel, metric, day) == ("email", "clicked", drop_day):
                count //= 2
            rows.append(
                (channel, metric, datetime(day.year, day.month, day.day, 12), count)
            )
    return rows


def _poisson(mean: float, rng: random.Random) -> int:
    # Normal approximation, fine at these means (>= 45), rounded and kept >= 0.
    return max(0, round(rng.gauss(mean, mean**0.5)))


def _volume_drops(tmp_path: Path, daily_counts: list[tuple]) -> list[dict]:
    """The event-volume check's failing rows over a synthetic mart holding
    daily_counts (channel, metric, occurred_at, events), one row per event."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema analytics")
        connection.execute(
            "create temporary table daily_counts "
            "(channel varchar, metric varchar, occurred_at timestamp, events integer)"
        )
        connection.executemany(
            "insert into daily_counts values (?, ?, ?, ?)", daily_counts
        )
        connection.execute(
            "create table analytics.fct_message_events as "
            "select channel, metric, occurred_at from daily_counts, range(events)"
        )
    result = _dbt(
        path, tmp_path / "target", "build", "--select", "rpt_event_volumes_daily",
        "--store-failures",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-4000:]
    return _data_health_results(path, tmp_path / "target")["event_volume"].rows


def _ten_weeks(counts_on) -> list[tuple]:
    """Daily counts for the ten weeks before AS_OF: counts_on(day) gives each day's
    (channel, metric, events)."""
    as_of_day = date.fromisoformat(AS_OF[:10])
    days = (as_of_day - timedelta(days=offset) for offset in range(1, 71))
    return [
        (channel, metric, datetime(day.year, day.month, day.day, 12), events)
        for day in days
        for channel, metric, events in counts_on(day)
    ]


def test_event_volume_fails_on_a_50_percent_drop_of_clicks(tmp_path) -> None:
    drop_day = date(2026, 2, 26)  # a Thursday: newsletter day, in the judged week
    drops = _volume_drops(tmp_path, _synthetic_daily_counts(drop_day))
    # Exactly the injected drop: no weekday rhythm, flash sale or noise flagged.
    assert [
        (row["event_date"], row["channel"], row["metric"], row["anomaly_direction"])
        for row in drops
    ] == [(drop_day, "email", "clicked", "drop")]


def test_event_volume_floor_is_four_poisson_standard_deviations(tmp_path) -> None:
    """Three series of 25 clicks every day. On one judged day email clicks fall to 9
    (16 below the median: 3.2 standard deviations, past 40 % of it: what the demo data
    does on Saturdays, by chance), SMS clicks to 4 (21 below: 4.2) and push clicks to 5
    (20 below: exactly 4, not beyond). Only SMS is a drop: at 3 standard deviations email
    failed the build (and `make demo` with it), at 5 SMS would pass, and a `>=` would
    flag push."""
    judged = date(2026, 2, 28)  # a Saturday, in the judged week
    drops = _volume_drops(
        tmp_path,
        _ten_weeks(
            lambda day: [
                ("email", "clicked", 9 if day == judged else 25),
                ("sms", "clicked", 4 if day == judged else 25),
                ("push", "clicked", 5 if day == judged else 25),
            ]
        ),
    )
    assert [
        (row["event_date"], row["channel"], row["metric"], row["events"])
        for row in drops
    ] == [(judged, "sms", "clicked", 4)]


def test_make_demo_data_passes_the_volume_check_on_every_day_it_may_end(
    tmp_path,
) -> None:
    """`make demo`'s data (10,000 people, 90 days, seed 7) ends on the day it runs, so
    the week it judges moves with the calendar. Ending on Wednesday 2026-12-02 and built
    that evening, the event-volume check passes. At a floor of 3 standard deviations it
    fails (7 email clicks against a median of 22 on Saturday 11-28: 3.2), and with the
    old 4-week baseline at 3 every Saturday and Sunday failed, and `make demo` with
    it. The other checks passed on each of the 28 end dates in
    docs/lift-and-data-health.md; the demo fixture judges them here."""
    data = tmp_path / "demo"
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    env.pop("AUDIENCES_TARGET", None)

    def audiences(*args: str) -> None:
        done = subprocess.run(
            [str(BIN / "audiences"), *args], cwd=REPO_ROOT, env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])

    audiences("demo-data", "--out", str(data), "--people", "10000", "--days", "90",
              "--seed", "7", "--end-date", "2026-12-02")  # fmt: skip
    audiences("load", "webhooks", str(data / "webhooks"), "--no-progress")
    audiences("load", "segment-events", str(data / "segment"), "--no-progress")
    audiences("load", "orders", str(data / "orders"), "--no-progress")
    built = _dbt(
        tmp_path / "warehouse.duckdb", tmp_path / "target", "build",
        "--select", "+rpt_event_volumes_daily", "--exclude-resource-type", "unit_test",
        extra_vars={"as_of": "2026-12-02T21:49:00Z"},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-4000:]
    results = _data_health_results(tmp_path / "warehouse.duckdb", tmp_path / "target")
    assert results["event_volume"].status == "pass"


def test_event_volume_baseline_outlasts_three_promotion_weeks(tmp_path) -> None:
    """Email opens: 1,800 a day, but 4,500 on the three Sundays before the judged one
    (flash sales and back-in-stock sends, as the benchmark's year of 200k customers has
    before Sunday 2026-06-28). SMS deliveries: 900 a day, 300 on that Sunday (a real
    drop). Over 4 weeks the lower median of those Sundays is a promotion's 4,500 and the
    ordinary Sunday reads as a drop; over 8 it is 1,800. Only the SMS drop is one."""
    judged = date(2026, 2, 22)  # a Sunday, in the judged week
    promotions = {judged - timedelta(weeks=weeks) for weeks in (1, 2, 3)}
    drops = _volume_drops(
        tmp_path,
        _ten_weeks(
            lambda day: [
                ("email", "opened", 4500 if day in promotions else 1800),
                ("sms", "delivered", 300 if day == judged else 900),
            ]
        ),
    )
    assert [
        (row["event_date"], row["channel"], row["metric"], row["baseline_median"])
        for row in drops
    ] == [(judged, "sms", "delivered", 900)]
