"""The same project on a real PostgreSQL server: load, dbt build (models, data and unit
tests), and the same audiences as on DuckDB for the same data and as_of."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg2
import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.dbt, pytest.mark.postgres, pytest.mark.slow]

BIN = Path(sys.executable).parent
AS_OF = '{"as_of": "2026-03-01T12:00:00Z"}'
MEMBERS = (
    "select audience_key, person_id, arm, audience_version "
    "from analytics.fct_audience_memberships"
)


def _run(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        list(args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


def _data_health_outcomes(env: dict[str, str], target: str) -> dict[str, str]:
    """Each data-health test's status on one engine: the checks must run on both and
    judge the same rows the same way."""
    target_path = Path(env["DBT_TARGET_PATH"]) / f"health-{target}"
    subprocess.run(
        [str(BIN / "dbt"), "test", "--select", "tag:data_health", "--target", target,
         "--vars", AS_OF, "--no-use-colors"],
        cwd=REPO_ROOT, env={**env, "DBT_TARGET_PATH": str(target_path)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {result["unique_id"]: result["status"] for result in results}


def test_postgres_build_matches_duckdb(tmp_path, postgres_env) -> None:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    data = tmp_path / "data"
    audiences, dbt = str(BIN / "audiences"), str(BIN / "dbt")
    _run(env, audiences, "demo-data", "--out", str(data), "--people", "600", "--days", "40",
         "--seed", "5", "--end-date", "2026-03-01")  # fmt: skip
    for target in ("dev", "postgres"):
        for kind, folder in (("webhooks", "webhooks"), ("segment-events", "segment"),
                             ("orders", "orders")):  # fmt: skip
            _run(env, audiences, "load", kind, str(data / folder), "--target", target)
        # The data-health checks judge the data, and 600 people over 40 days is too
        # little for the volume baseline; they are compared across engines below.
        _run(env, dbt, "build", "--target", target, "--vars", AS_OF, "--no-use-colors",
             "--exclude", "tag:data_health")  # fmt: skip
    health = {
        target: _data_health_outcomes(env, target) for target in ("dev", "postgres")
    }
    assert health["dev"], "no data-health test ran"
    assert health["postgres"] == health["dev"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        on_duckdb = set(connection.execute(MEMBERS).fetchall())
    connection = psycopg2.connect(
        host=postgres_env["PGHOST"], port=postgres_env["PGPORT"],
        user=postgres_env["PGUSER"], dbname=postgres_env["PGDATABASE"],
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(MEMBERS)
            on_postgres = set(cursor.fetchall())
    finally:
        connection.close()
    assert len(on_duckdb) > 50
    assert on_postgres == on_duckdb
