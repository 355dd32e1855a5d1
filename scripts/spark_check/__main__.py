"""`make test-spark`: the dbt project on Spark gives the same memberships as on DuckDB.

    .venv/bin/python -m scripts.spark_check [--people 300] [--days 40] [--keep]

Steps, all inside build/spark-check/ (wiped first; .gitignored):

1. a copy of the dbt project (Spark writes metastore_db/, spark-warehouse/ and derby.log
   into its working directory, so it never runs in the checkout);
2. a small demo data set with a fixed seed and end date, loaded into a DuckDB file by
   the normal loaders, and `dbt build` there at a fixed `as_of`;
3. every `raw_*` table except the loaders' bookkeeping exported to Parquet (JSON columns
   as text, the type Spark's raw tables use) and written into Spark by `spark_side.py`
   under `.spark-venv/bin/python`;
4. `dbt build --target spark` with `.spark-venv/bin/dbt` at the same `as_of`;
5. `fct_audience_memberships` read from both engines and compared row for row, all
   columns, timestamps in UTC. Any difference, or an empty table, fails (exit 1).

Generic on purpose: it knows the project only through the loaders' commands, the `raw_*`
schema convention and the name of the membership table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
SPARK_BIN = REPO / ".spark-venv" / "bin"
SCRATCH = REPO / "build" / "spark-check"
PROJECT_PARTS = (
    "dbt_project.yml",
    "profiles.yml",
    "models",
    "macros",
    "seeds",
    "data-tests",
    "analyses",
    "snapshots",
)
AS_OF = "2026-03-01T12:00:00Z"
END_DATE = "2026-03-01"
COMPARED_TABLE = "analytics.fct_audience_memberships"
LOADS = (("webhooks", "webhooks"), ("segment-events", "segment"), ("orders", "orders"))


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(args: list[str], env: dict[str, str], cwd: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 (our own tools, fixed arguments)
        args, cwd=cwd, env=env, text=True, capture_output=True
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-6000:])
        sys.stderr.write(result.stderr[-6000:])
        raise SystemExit(
            f"failed ({result.returncode}) after {took:.0f} s: {' '.join(args)}"
        )
    last = (result.stdout.strip().splitlines() or [""])[-1]
    print(f"    {Path(args[0]).name} {' '.join(args[1:3])}: {took:.0f} s  {last[:120]}")


def copy_project(project: Path) -> None:
    project.mkdir(parents=True)
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, project / part)
        elif source.is_file():
            shutil.copy2(source, project / part)


def export_raw_tables(database: Path, out: Path) -> list[str]:
    """Every raw_* table as Parquet, JSON as text; returns `schema.table` names."""
    out.mkdir()
    names = []
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'raw\\_%' escape '\\' "
            "and table_schema <> 'raw_loader' and table_type = 'BASE TABLE' "
            "order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            select = ", ".join(
                f'cast("{name}" as varchar) as "{name}"'
                if kind.upper() == "JSON"
                else f'"{name}"'
                for name, kind in columns
            )
            target = out / f"{schema}.{table}.parquet"
            con.execute(
                f'copy (select {select} from "{schema}"."{table}") '
                f"to '{target}' (format parquet)"
            )
            names.append(f"{schema}.{table}")
    return names


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def duckdb_rows(database: Path) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute(f"select * from {COMPARED_TABLE}")
        columns = [d[0].lower() for d in cursor.description]
        rows = [tuple(_plain(v) for v in row) for row in cursor.fetchall()]
    return columns, rows


def spark_rows(path: Path) -> tuple[list[str], list[tuple]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    columns = json.loads(lines[0])
    return columns, [tuple(json.loads(line)) for line in lines[1:]]


def compare(
    duck: tuple[list[str], list[tuple]], spark: tuple[list[str], list[tuple]]
) -> bool:
    (duck_columns, duck_rows), (spark_columns, spark_rows_) = duck, spark
    if sorted(duck_columns) != sorted(spark_columns):
        print(f"columns differ: duckdb {duck_columns}, spark {spark_columns}")
        return False
    order = [spark_columns.index(c) for c in duck_columns]
    spark_aligned = [tuple(row[i] for i in order) for row in spark_rows_]
    missing = sorted(set(duck_rows) - set(spark_aligned), key=repr)
    extra = sorted(set(spark_aligned) - set(duck_rows), key=repr)
    same_multiset = sorted(duck_rows, key=repr) == sorted(spark_aligned, key=repr)
    print(
        f"{COMPARED_TABLE}: duckdb {len(duck_rows)} rows, spark {len(spark_aligned)} rows, "
        f"{len(missing)} only on duckdb, {len(extra)} only on spark"
    )
    for label, rows in (("only on duckdb", missing), ("only on spark", extra)):
        for row in rows[:10]:
            print(f"  {label}: {dict(zip(duck_columns, row, strict=True))}")
    if not duck_rows:
        print("no memberships at all: the comparison would prove nothing")
        return False
    return same_multiset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.spark_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument(
        "--keep", action="store_true", help="keep build/spark-check/ afterwards"
    )
    args = parser.parse_args(argv)
    if not (SPARK_BIN / "dbt").exists():
        raise SystemExit("no .spark-venv: run `make test-spark`, which creates it")

    started = time.monotonic()
    shutil.rmtree(SCRATCH, ignore_errors=True)
    project = SCRATCH / "project"
    copy_project(project)
    database = SCRATCH / "warehouse.duckdb"
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AUDIENCES_TARGET", "DBT_TARGET")
    }
    base_env.update(
        TZ="UTC",
        DBT_PROFILES_DIR=str(project),
        DBT_PROJECT_DIR=str(project),
        DBT_TARGET_PATH=str(SCRATCH / "target"),
        DBT_LOG_PATH=str(SCRATCH / "logs"),
        AUDIENCES_DUCKDB_PATH=str(database),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    vars_arg = json.dumps({"as_of": AS_OF})

    log(f"DuckDB: demo data ({args.people} people, {args.days} days), load, dbt build")
    data = SCRATCH / "data"
    run([str(BIN / "audiences"), "demo-data", "--out", str(data), "--people",
         str(args.people), "--days", str(args.days), "--seed", "5",
         "--end-date", END_DATE], base_env, project)  # fmt: skip
    for kind, folder in LOADS:
        run(
            [str(BIN / "audiences"), "load", kind, str(data / folder)],
            base_env,
            project,
        )
    run(
        [str(BIN / "dbt"), "build", "--vars", vars_arg, "--no-use-colors"],
        base_env,
        project,
    )

    log("Spark: the same raw rows")
    names = export_raw_tables(database, SCRATCH / "raw")
    print(f"    exported {', '.join(names)}")
    spark_side = str(Path(__file__).with_name("spark_side.py"))
    run(
        [str(SPARK_BIN / "python"), spark_side, "load", str(SCRATCH / "raw")],
        base_env,
        project,
    )

    log("Spark: dbt build --target spark (minutes: every node is a Spark job)")
    spark_env = {
        **base_env,
        "PATH": f"{SPARK_BIN}{os.pathsep}{base_env.get('PATH', '')}",
    }
    run([str(SPARK_BIN / "dbt"), "build", "--target", "spark", "--vars", vars_arg,
         "--no-use-colors"], spark_env, project)  # fmt: skip
    exported = SCRATCH / "spark-memberships.jsonl"
    run([str(SPARK_BIN / "python"), spark_side, "export", COMPARED_TABLE, str(exported)],
        spark_env, project)  # fmt: skip

    log("compare")
    same = compare(duckdb_rows(database), spark_rows(exported))
    minutes = (time.monotonic() - started) / 60
    if not args.keep and same:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    if not same:
        raise SystemExit(
            f"Spark and DuckDB memberships differ ({minutes:.1f} min); see above"
        )
    print(f"Spark memberships equal DuckDB's ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
