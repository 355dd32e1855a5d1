"""The Spark half of `make test-spark`, run by `.spark-venv/bin/python` (pyspark only).

It must run in the scratch project folder, because Spark's embedded Derby metastore and
warehouse live in the working directory, where dbt-spark's session finds them too.

    python spark_side.py load RAW_DIR        # RAW_DIR/<schema>.<table>.parquet -> tables
    python spark_side.py export TABLE OUT    # a table -> OUT as JSON lines

Standard library and pyspark only: this file cannot import the project's packages, which
live in the other virtual environment.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession


def session() -> SparkSession:
    # Same settings as the `spark` output in profiles.yml; UTC so timestamps read back as
    # the instants DuckDB wrote.
    return (
        SparkSession.builder.appName("audiences-spark-check")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .enableHiveSupport()
        .getOrCreate()
    )


def load(raw_dir: Path) -> None:
    """Each Parquet file becomes the table of its name, replacing what was there."""
    spark = session()
    for path in sorted(raw_dir.glob("*.parquet")):
        schema, table = path.stem.split(".", 1)
        spark.sql(f"create database if not exists {schema}")
        frame = spark.read.parquet(str(path.resolve()))
        frame.write.mode("overwrite").saveAsTable(f"{schema}.{table}")
        print(f"spark: {schema}.{table} <- {frame.count()} rows", flush=True)
    spark.stop()


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def export(table: str, out: Path) -> None:
    spark = session()
    rows = spark.table(table).collect()
    columns = spark.table(table).columns
    with out.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps([c.lower() for c in columns]) + "\n")
        for row in rows:
            handle.write(json.dumps([_plain(value) for value in row]) + "\n")
    print(f"spark: {table} -> {len(rows)} rows", flush=True)
    spark.stop()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "load":
        load(Path(args[0]))
    elif command == "export":
        export(args[0], Path(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
