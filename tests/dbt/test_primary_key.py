"""The `primary_key` generic test (macros/tests/primary_key.sql) fails on exactly what
dbt's `unique` and `not_null` together would: a repeated key and a missing one.

It replaced those two tests on every model's key, so a primary key that let either through
would leave every model unguarded. On a copy of the small warehouse, dim_people gets a
second row for one person and one row without a person_id (one, so that a test counting
only repeats cannot catch it as a repeated null); the test must fail with a row for each,
counted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow]


def test_primary_key_fails_on_a_repeated_and_on_a_missing_key(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    path = warehouse.env["AUDIENCES_DUCKDB_PATH"]
    with duckdb.connect(path) as db:
        [(repeated,)] = db.execute(
            "select min(person_id) from analytics.dim_people"
        ).fetchall()
        db.execute(
            "insert into analytics.dim_people "
            "select * from analytics.dim_people where person_id = ?",
            [repeated],
        )
        db.execute(
            "insert into analytics.dim_people "
            "select * replace (null as person_id) from analytics.dim_people limit 1"
        )

    result = warehouse.dbt_result(
        "test", "--select", "dim_people,test_name:primary_key", "--store-failures",
        as_of=SECOND,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Got 2 results" in result.stdout, result.stdout[-3000:]
    with duckdb.connect(path, read_only=True) as db:
        failures = db.execute(
            "select key_value, rows_with_key "
            "from analytics_dbt_test__audit.primary_key_dim_people_person_id "
            "order by key_value nulls first"
        ).fetchall()
    assert failures == [(None, 1), (repeated, 2)]
