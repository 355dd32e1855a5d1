"""The membership ledger keeps its history (issue 8 §2): `--full-refresh` leaves it as it
was, a build with a future as_of writes nothing and says so, a later real build carries on
as if it never happened, and `rebuild_ledger: true` is the one deliberate way to start over.

Each test works on its own copy of a small warehouse that was built twice (two as_of
moments, so the ledger holds entries and exits on two dates).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg2
import pytest

from tests.conftest import REPO_ROOT

# A dbt run takes a minute on a busy 2-core machine; the fixture does two.
pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(1800)]

BIN = Path(sys.executable).parent
FIRST = "2026-02-20T12:00:00Z"
SECOND = "2026-03-01T12:00:00Z"
THIRD = "2026-03-02T12:00:00Z"
FUTURE = "2030-01-01T00:00:00Z"
LEDGER = (
    "select audience_key, audience_version, person_id, user_id, arm, change_type, "
    "exit_reason, change_sequence, signal_at, changed_at "
    "from analytics.fct_audience_membership_changes"
)
EXITED_CURRENT_MEMBERS = (
    "select count(*) from analytics.sync_segment__audience_exits as exits "
    "inner join analytics.fct_audience_memberships as members "
    "on exits.audience_key = members.audience_key and exits.user_id = members.user_id"
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
        return self.command(
            str(BIN / "dbt"), *args, "--target", self.target, "--vars", dbt_vars,
            "--no-use-colors",
        )  # fmt: skip

    def rows(self, sql: str) -> list[tuple]:
        if self.target == "postgres":
            connection = psycopg2.connect(
                host=self.env["PGHOST"], port=self.env["PGPORT"],
                user=self.env["PGUSER"], dbname=self.env["PGDATABASE"],
            )  # fmt: skip
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetchall()
            finally:
                connection.close()
        with duckdb.connect(self.env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
            return db.execute(sql).fetchall()

    def ledger(self) -> list[tuple]:
        return sorted(self.rows(LEDGER), key=repr)


def _environment(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    return env


def _build_twice(warehouse: Warehouse, data: Path) -> None:
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


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("ledger-data")
    result = subprocess.run(
        [str(BIN / "audiences"), "demo-data", "--out", str(data), "--people", "300",
         "--days", "30", "--seed", "5", "--end-date", "2026-03-01"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture(scope="module")
def built_twice(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Path:
    root = tmp_path_factory.mktemp("ledger-built")
    _build_twice(Warehouse(_environment(root), "dev"), demo_data)
    return root / "warehouse.duckdb"


@pytest.fixture
def warehouse(built_twice: Path, tmp_path: Path) -> Warehouse:
    shutil.copy(built_twice, tmp_path / "warehouse.duckdb")
    return Warehouse(_environment(tmp_path), "dev")


def _assert_history_on_two_dates(ledger: list[tuple]) -> None:
    dates = {row[-1] for row in ledger}
    assert len(dates) == 2, dates
    assert any(row[5] == "exited" for row in ledger)


def _assert_full_refresh_keeps_ledger(warehouse: Warehouse) -> None:
    before = warehouse.ledger()
    _assert_history_on_two_dates(before)
    warehouse.dbt("run", "--full-refresh", as_of=SECOND)
    assert warehouse.ledger() == before
    # `dbt build --full-refresh` (tests included) leaves it alone too.
    warehouse.dbt(
        "build", "--full-refresh", "--select", "fct_audience_membership_changes",
        as_of=SECOND,
    )  # fmt: skip
    assert warehouse.ledger() == before


def _assert_future_as_of_writes_nothing(warehouse: Warehouse) -> None:
    before = warehouse.ledger()
    output = warehouse.dbt("run", as_of=FUTURE)
    assert "is in the future" in output
    assert "records no entries or exits" in output
    assert warehouse.ledger() == before
    # The next real build carries on: it records the changes of its own moment.
    warehouse.dbt("run", as_of=THIRD)
    after = warehouse.ledger()
    assert set(before) < set(after)
    new_dates = {row[-1] for row in set(after) - set(before)}
    assert len(new_dates) == 1 and str(next(iter(new_dates))).startswith("2026-03-02")
    assert max(row[-1] for row in after).year == 2026
    assert warehouse.rows(EXITED_CURRENT_MEMBERS) == [(0,)]


def test_full_refresh_keeps_the_ledger(warehouse: Warehouse) -> None:
    _assert_full_refresh_keeps_ledger(warehouse)


def test_future_as_of_writes_no_history(warehouse: Warehouse) -> None:
    _assert_future_as_of_writes_nothing(warehouse)


def test_rebuild_ledger_is_deliberate_and_says_what_is_lost(
    warehouse: Warehouse,
) -> None:
    before = warehouse.ledger()
    refused = warehouse.dbt_result(
        "run", "--select", "fct_audience_membership_changes", as_of=THIRD,
        extra_vars=', "rebuild_ledger": "yes"',
    )  # fmt: skip
    assert refused.returncode != 0
    assert "rebuild_ledger must be true or false" in refused.stdout
    refused = warehouse.dbt_result(
        "run", "--select", "fct_audience_membership_changes", as_of=FUTURE,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert refused.returncode != 0
    assert "would leave an empty ledger" in refused.stdout
    assert warehouse.ledger() == before

    output = warehouse.dbt(
        "run", "--select", "fct_audience_membership_changes", as_of=THIRD,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert "is rebuilt from scratch" in output
    assert "Every past entry and exit" in output
    rebuilt = warehouse.ledger()
    assert rebuilt
    assert {(row[5], str(row[-1])[:10]) for row in rebuilt} == {("entered", "2026-03-02")}


@pytest.mark.postgres
def test_postgres_ledger_survives_full_refresh_and_future_as_of(
    demo_data: Path, tmp_path: Path, postgres_env: dict[str, str]
) -> None:
    warehouse = Warehouse({**_environment(tmp_path), **postgres_env}, "postgres")
    _build_twice(warehouse, demo_data)
    _assert_full_refresh_keeps_ledger(warehouse)
    _assert_future_as_of_writes_nothing(warehouse)
