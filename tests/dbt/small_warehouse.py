"""A small demo warehouse for the dbt tests that change or inspect the ledger: 300 people,
30 days, built at two as_of moments so the ledger holds entries and exits on two dates.
The session fixtures live in tests/dbt/conftest.py, for DuckDB and for PostgreSQL; tests work
on copies (of the DuckDB file, or `create database … template` of the PostgreSQL one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import psycopg2

from tests import dbt_commands
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
FIRST = "2026-02-15T12:00:00Z"
# Past the data's end, so stints opened at FIRST have expired: exits on SECOND.
SECOND = "2026-03-20T12:00:00Z"
LEDGER = (
    "select audience_key, audience_version, person_id, user_id, arm, change_type, "
    "exit_reason, change_sequence, signal_at, changed_at "
    "from analytics.fct_audience_membership_changes"
)


class Warehouse:
    """One warehouse (a DuckDB file or a PostgreSQL database) and the dbt runs on it."""

    def __init__(self, env: dict[str, str], target: str) -> None:
        self.env, self.target = env, target

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip

    def dbt(self, *args: str, as_of: str, extra_vars: str = "") -> str:
        result = self.dbt_result(*args, as_of=as_of, extra_vars=extra_vars)
        assert result.returncode == 0, f"{args}:\n{result.stdout[-4000:]}"
        return result.stdout

    def dbt_result(
        self, *args: str, as_of: str, extra_vars: str = ""
    ) -> subprocess.CompletedProcess[str]:
        dbt_vars = '{"as_of": "' + as_of + '"' + extra_vars + "}"
        return dbt_commands.run(
            [str(BIN / "dbt"), *args, "--target", self.target, "--vars", dbt_vars,
             "--no-use-colors"],
            self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    def _postgres(self) -> Any:
        return psycopg2.connect(
            host=self.env["PGHOST"], port=self.env["PGPORT"],
            user=self.env["PGUSER"], dbname=self.env["PGDATABASE"],
        )  # fmt: skip

    def rows(self, sql: str) -> list[tuple]:
        if self.target == "postgres":
            connection = self._postgres()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetchall()
            finally:
                connection.close()
        with duckdb.connect(self.env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
            return db.execute(sql).fetchall()

    def execute(self, *statements: str) -> None:
        """Statements that change the warehouse, committed together (a test's setup)."""
        if self.target == "postgres":
            connection = self._postgres()
            try:
                with connection, connection.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
            finally:
                connection.close()
            return
        with duckdb.connect(self.env["AUDIENCES_DUCKDB_PATH"]) as db:
            db.execute("begin")
            for statement in statements:
                db.execute(statement)
            db.execute("commit")

    def ledger(self) -> list[tuple]:
        return sorted(self.rows(LEDGER), key=repr)


def environment(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    return env


def run_tick(env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """One scheduled tick, `audiences run --no-sync`, as a scheduler starts it (with
    `--every 0.01 --ticks N`, N ticks of a loop)."""
    return subprocess.run(
        [sys.executable, "-m", "scripts", "run", "--no-sync", *options],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def build_twice(warehouse: Warehouse, data: Path) -> None:
    audiences = str(BIN / "audiences")
    for kind, folder in (("webhooks", "webhooks"), ("segment-events", "segment"),
                         ("orders", "orders")):  # fmt: skip
        result = warehouse.command(
            audiences, "load", kind, str(data / folder), "--target", warehouse.target
        )
        assert result.returncode == 0, result.stdout + result.stderr
    warehouse.dbt("seed", as_of=FIRST)
    warehouse.dbt("run", as_of=FIRST)
    warehouse.dbt("run", as_of=SECOND)


def generate_demo_data(out: Path) -> None:
    result = subprocess.run(
        [str(BIN / "audiences"), "demo-data", "--out", str(out), "--people", "300",
         "--days", "30", "--seed", "5", "--end-date", "2026-03-01"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
