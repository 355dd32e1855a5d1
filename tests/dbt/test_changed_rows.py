"""The incremental strategy `changed_rows` (macros/incremental/
get_incremental_changed_rows_sql.sql): a model whose query returns the whole table, as a
table model's does, has only the rows that differ from the held ones written. After a run
the table must equal a full refresh, and every row that did not differ must still be the
row it was (not deleted and written again).

Where the rows sit shows which were written again. On PostgreSQL a row left alone keeps
its `ctid` and a deleted and re-inserted row gets a new one. DuckDB renumbers `rowid`
when a checkpoint drops deleted rows, but keeps the rows' order, and appends inserted
rows after the held ones: the rows left alone keep their order at the front, the rows
written again follow. Each test makes the held table differ from what the model computes in
the three ways a run meets (a row whose values changed, a row the model no longer
returns, a row it returns that is not held), on a copy of the small warehouse, and runs
the model again."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt]

# One per-person mart and one per-order mart written through the strategy.
MODELS = {"dim_people": "person_id", "fct_orders": "order_id"}
ROW_POSITION = {"dev": "rowid", "postgres": "ctid"}


def _rows(warehouse: Warehouse, model: str, key: str) -> list[tuple]:
    """(key, physical position, every column as text), in physical order."""
    position = ROW_POSITION[warehouse.target]
    rows = warehouse.rows(
        f"select {key}, {position}::text, held.* from analytics.{model} as held "
        f"order by {position}"
    )
    return [(row[0], row[1], tuple(map(str, row[2:]))) for row in rows]


def _written_again(warehouse: Warehouse, before: list, after: list) -> set[str]:
    """The keys held before the run whose rows the run wrote again."""
    held = {key for key, _, _ in before}
    if warehouse.target == "postgres":
        was = {key: position for key, position, _ in before}
        return {
            key for key, position, _ in after if key in held and was[key] != position
        }
    # The rows left alone come first, in their held order; the rest was appended.
    held_order = {key: number for number, (key, _, _) in enumerate(before)}
    last, front = -1, 0
    for key, _, _ in after:
        if held_order.get(key, -1) <= last:
            break
        last, front = held_order[key], front + 1
    return {key for key, _, _ in after[front:] if key in held}


def _assert_only_differing_rows_written(warehouse: Warehouse) -> None:
    for model, key in MODELS.items():
        # Two real rows (with a null email first, where there is one). A null must
        # compare equal to a null, or every row holding one would be written each run.
        found = warehouse.rows(
            f"select {key} from analytics.{model} order by "
            f"case when email is null then 0 else 1 end, {key} limit 2"
        )
        changed, missing = (row[0] for row in found)
        warehouse.execute(
            f"update analytics.{model} set email = 'stale@example.org' "
            f"where {key} = '{changed}'",
            f"delete from analytics.{model} where {key} = '{missing}'",
            f"insert into analytics.{model} ({key}) values ('not-returned')",
        )
        before = _rows(warehouse, model, key)
        warehouse.dbt("run", "--select", model, as_of=SECOND)
        after = _rows(warehouse, model, key)
        values = {row_key: row for row_key, _, row in after}
        assert len(values) == len(after), f"{model}: a key held twice"
        assert "not-returned" not in values, model
        assert "stale@example.org" not in values[changed], model
        assert missing in values, model
        assert _written_again(warehouse, before, after) == {changed}, model
        if model == "dim_people":  # people without a phone or an order: nulls kept
            assert any("None" in row for key_, row in values.items() if key_ != changed)

    incremental = {model: _rows(warehouse, model, key) for model, key in MODELS.items()}
    warehouse.dbt("run", "--select", *MODELS, "--full-refresh", as_of=SECOND)
    for model, key in MODELS.items():
        full = _rows(warehouse, model, key)
        assert len(incremental[model]) == len(full), model
        assert {key_: row for key_, _, row in incremental[model]} == {
            key_: row for key_, _, row in full
        }, model


def test_only_the_rows_that_differ_are_written(small_warehouse, tmp_path) -> None:
    (tmp_path / "warehouse.duckdb").write_bytes(small_warehouse.read_bytes())
    _assert_only_differing_rows_written(Warehouse(environment(tmp_path), "dev"))


# A model of the strategy over a table the test controls, in a project of its own.
KEYED_MODEL = """{{ config(materialized='incremental', incremental_strategy='changed_rows',
    unique_key='row_key') }}
select row_key, row_value from analytics.scratch_rows
"""


def test_a_null_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    # The deletes find held rows by `key = key`, which a null never satisfies: a row with
    # a null key would be written on one run and deleted on the next, the table equal to
    # a full rebuild only every other run (and a not_null test passing when it is gone).
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO_ROOT / name, project / name)
    shutil.copytree(REPO_ROOT / "macros", project / "macros")
    (project / "models").mkdir()
    (project / "models" / "scratch_keyed.sql").write_text(KEYED_MODEL)
    warehouse = Warehouse(environment(tmp_path), "dev")
    warehouse.execute(
        "create schema if not exists analytics",
        "create table analytics.scratch_rows as "
        "select * from (values ('a', 1), ('b', 2)) as rows_(row_key, row_value)",
    )
    run = ("run", "--project-dir", str(project), "--select", "scratch_keyed")
    warehouse.dbt(*run, as_of=SECOND)
    warehouse.execute(
        "update analytics.scratch_rows set row_key = null, row_value = 3 "
        "where row_key = 'b'"
    )
    refused = warehouse.dbt_result(*run, as_of=SECOND)
    assert refused.returncode == 1, refused.stdout[-3000:]
    assert (
        "scratch_keyed: 1 row(s) of the result have a null unique_key (row_key), "
        "so nothing was written"
    ) in refused.stdout
    assert warehouse.rows(
        "select row_key, row_value from analytics.scratch_keyed order by row_key"
    ) == [("a", 1), ("b", 2)]


@pytest.mark.postgres
def test_postgres_only_the_rows_that_differ_are_written(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    _assert_only_differing_rows_written(warehouse)


@pytest.mark.postgres
def test_postgres_deletes_are_joins_whatever_the_size(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    # One delete with `key in (…) or not exists (…)` cannot become a join: PostgreSQL
    # runs the `not exists` once per held row, over the whole result, unless the result
    # fits work_mem as a hash (4 MB by default): 177 k people with text ids do not, and
    # the delete ran for minutes. A small work_mem here stands for a table of that size.
    # The run's statements are replayed in a transaction that is rolled back, with the
    # deletes explained instead of run.
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    warehouse.dbt("run", "--select", "dim_people", as_of=SECOND)
    run_sql = next((tmp_path / "target" / "run").rglob("dim_people.sql")).read_text()
    # dbt creates the model's result as a temporary table before this SQL runs.
    temporary = re.search(r'"?(dim_people__dbt_tmp\w*)"?', run_sql)
    assert temporary, run_sql
    statements = [part.strip() for part in run_sql.split(";") if part.strip()]
    plans = []
    connection = warehouse._postgres()
    try:
        with connection.cursor() as cursor:
            cursor.execute("set local work_mem = '64kB'")
            cursor.execute(
                f"create temporary table {temporary.group(1)} as "
                "select * from analytics.dim_people"
            )
            for statement in statements:
                if statement.lower().startswith("delete"):
                    cursor.execute("explain " + statement)
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
                elif statement.lower().startswith("create"):
                    cursor.execute(statement)
        connection.rollback()
    finally:
        connection.close()
    for plan in plans:
        assert "SubPlan" not in plan, plan
    assert len(plans) == 2, statements
