"""The comparison `make test-spark` ends with: it must fail on any difference.

The Spark build itself runs only in `make test-spark` (minutes, ~700 MB); this checks the
judge, with DuckDB's real rows on one side and Spark's export format on the other.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from scripts.spark_check.__main__ import (
    COMPARED_TABLE,
    compare,
    duckdb_rows,
    spark_rows,
)

COLUMNS = ["audience_key", "person_id", "arm", "entered_at"]


def _duckdb_table(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "w.duckdb"
    schema, table = COMPARED_TABLE.split(".")
    with duckdb.connect(str(path)) as con:
        con.execute(
            "set timezone = 'Europe/Berlin'"
        )  # aware values must come back in UTC
        con.execute(f"create schema {schema}")
        con.execute(
            f"create table {schema}.{table} (audience_key varchar, person_id varchar, "
            "arm varchar, entered_at timestamptz)"
        )
        if rows:
            con.executemany(f"insert into {schema}.{table} values (?, ?, ?, ?)", rows)
    return path


def _spark_export(tmp_path: Path, columns: list[str], rows: list[list]) -> Path:
    path = tmp_path / "spark.jsonl"
    lines = [json.dumps(columns)] + [json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


ENTERED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
DUCK_ROWS = [
    ("fatigued", "p1", "treatment", ENTERED),
    ("fatigued", "p2", "holdout", ENTERED),
]
SPARK_ROWS = [
    ["fatigued", "p1", "treatment", "2026-03-01T10:00:00.000000"],
    ["fatigued", "p2", "holdout", "2026-03-01T10:00:00.000000"],
]


def test_equal_rows_in_another_column_order_pass(tmp_path) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, DUCK_ROWS))
    reordered = [COLUMNS[i] for i in (3, 0, 2, 1)]
    rows = [[row[i] for i in (3, 0, 2, 1)] for row in SPARK_ROWS]
    assert compare(duck, spark_rows(_spark_export(tmp_path, reordered, rows)))


def test_a_changed_arm_fails(tmp_path, capsys) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, DUCK_ROWS))
    changed = [SPARK_ROWS[0], ["fatigued", "p2", "treatment", SPARK_ROWS[1][3]]]
    assert not compare(duck, spark_rows(_spark_export(tmp_path, COLUMNS, changed)))
    out = capsys.readouterr().out
    assert "only on duckdb: {'audience_key': 'fatigued', 'person_id': 'p2'" in out


def test_a_shifted_timestamp_fails(tmp_path) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, DUCK_ROWS))
    shifted = [SPARK_ROWS[0], [*SPARK_ROWS[1][:3], "2026-03-01T11:00:00.000000"]]
    assert not compare(duck, spark_rows(_spark_export(tmp_path, COLUMNS, shifted)))


def test_a_missing_or_duplicated_row_fails(tmp_path) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, DUCK_ROWS))
    assert not compare(
        duck, spark_rows(_spark_export(tmp_path, COLUMNS, SPARK_ROWS[:1]))
    )
    doubled = [*SPARK_ROWS, SPARK_ROWS[1]]
    assert not compare(duck, spark_rows(_spark_export(tmp_path, COLUMNS, doubled)))


def test_different_columns_fail(tmp_path) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, DUCK_ROWS))
    renamed = ["audience_key", "person_id", "arm", "entered"]
    assert not compare(duck, spark_rows(_spark_export(tmp_path, renamed, SPARK_ROWS)))


def test_two_empty_tables_fail(tmp_path) -> None:
    duck = duckdb_rows(_duckdb_table(tmp_path, []))
    assert not compare(duck, spark_rows(_spark_export(tmp_path, COLUMNS, [])))
