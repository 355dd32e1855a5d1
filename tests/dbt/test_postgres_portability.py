"""The same project on a real PostgreSQL server: the same files loaded and built at the
same two as_of moments (so the incremental models and the ledger take their incremental
path on both engines), then dbt's data and unit tests on PostgreSQL, and the same
audiences, ledger and data-health outcomes as on DuckDB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment, run_tick

# Run alone, its fixtures build the small warehouse on both engines first (minutes).
pytestmark = [
    pytest.mark.dbt,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

MEMBERS = (
    "select audience_key, person_id, arm, audience_version "
    "from analytics.fct_audience_memberships"
)


def _data_health_outcomes(warehouse: Warehouse) -> dict[str, str]:
    """Each data-health test's status on one engine: the checks must run on both and
    judge the same rows the same way. (300 people over 30 days is too little for the
    volume baseline, so some fail: what matters is that both engines agree.)"""
    warehouse.dbt_result("test", "--select", "tag:data_health", as_of=SECOND)
    ran = _run_results(warehouse)  # the on-run-start hook too
    return {node: status for node, status in ran.items() if node.startswith("test.")}


def _run_results(warehouse: Warehouse) -> dict[str, str]:
    """unique_id -> status of the last dbt command on this warehouse."""
    target_path = Path(warehouse.env["DBT_TARGET_PATH"])
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {result["unique_id"]: result["status"] for result in results}


def test_postgres_build_matches_duckdb(
    small_warehouse: Path, small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "dev").mkdir()
    shutil.copy(small_warehouse, tmp_path / "dev" / "warehouse.duckdb")
    on_duckdb = Warehouse(environment(tmp_path / "dev"), "dev")
    on_postgres = Warehouse(
        {**environment(tmp_path / "postgres"), **small_postgres_copy}, "postgres"
    )
    # The fixtures ran `dbt seed` and two `dbt run`s; dbt's own tests run here.
    on_postgres.dbt("test", "--exclude", "tag:data_health", as_of=SECOND)
    kinds = {unique_id.split(".")[0] for unique_id in _run_results(on_postgres)}
    assert {"test", "unit_test"} <= kinds, kinds

    health = {w.target: _data_health_outcomes(w) for w in (on_duckdb, on_postgres)}
    assert health["dev"], "no data-health test ran"
    # each check judged the rows (an error on both engines would also be "the same")
    assert set(health["dev"].values()) <= {"pass", "warn", "fail"}, health["dev"]
    assert health["postgres"] == health["dev"]

    # The second as_of is past the data's end, so few are still members; the ledger holds
    # every entry of the first moment and the exits of the second.
    members = {w.target: set(w.rows(MEMBERS)) for w in (on_duckdb, on_postgres)}
    assert members["dev"]
    assert members["postgres"] == members["dev"]
    ledger = {w.target: w.ledger() for w in (on_duckdb, on_postgres)}
    assert len(ledger["dev"]) > 50
    assert {row[5] for row in ledger["dev"]} == {"entered", "exited"}
    assert ledger["postgres"] == ledger["dev"]


def test_postgres_loop_forks_its_builds_and_records_its_ticks(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    """`audiences run --every` on PostgreSQL: the loop imports dbt and dbt-postgres once
    and forks each tick's build from itself (psycopg2 starts no thread, so the loop may
    fork), the builds pass, and each tick has its row in PostgreSQL's runs table; the
    second tick's key checks cover only what the first's left unchecked."""
    env = {
        **environment(tmp_path),
        **small_postgres_copy,
        "AUDIENCES_TARGET": "postgres",
        "AUDIENCES_RUN_LOCK": str(tmp_path / "run.lock"),
    }
    loop = run_tick(env, "--every", "0.01", "--ticks", "2")

    assert loop.returncode == 0, loop.stdout[-3000:] + loop.stderr[-3000:]
    assert "dbt imported once" in loop.stdout
    assert loop.stdout.count("dbt build: forked from the loop's process") == 2
    assert "not forked" not in loop.stdout
    first, second = loop.stdout.split("==> dbt build:")[1:]
    assert "Completed successfully" in first
    assert "Completed successfully" in second
    assert "key checks: keys written since" in first.split("Completed successfully")[-1]
    assert "storage vacuum" not in loop.stdout  # DuckDB's alone
    runs = Warehouse(env, "postgres").rows(
        "select status, exit_code, keys_verified_at is not null "
        "from audiences_ops.runs order by started_at"
    )
    assert runs == [("ok", 0, True), ("ok", 0, True)]
