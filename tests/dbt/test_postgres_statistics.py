"""On PostgreSQL each table a model writes is analyzed by the model's post-hook
(macros/sql/analyze_after_write.sql). PostgreSQL plans from statistics that only ANALYZE
or autovacuum (a minute or more later) gathers, so without the hook the models built
next in the same run are planned blind: dim_people's joins were planned for billions of
rows (8.9 s at 20 k people, 43 ms once analyzed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment
from tests.versions.project_copy import copy_project

pytestmark = [pytest.mark.dbt, pytest.mark.postgres]

# A table model, a changed_rows model, a per-person summary (delete+insert) and the
# union that is a table on PostgreSQL alone.
MODELS = (
    "fct_audience_membership_changes",
    "dim_people",
    "int_people_engagement",
    "int_audience_members_unioned",
)


def _columns_with_statistics(warehouse: Warehouse, table: str) -> int:
    return warehouse.rows(
        "select count(*) from pg_stats "
        f"where schemaname = 'analytics' and tablename = '{table}'"
    )[0][0]


def test_each_table_a_model_writes_is_analyzed(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    # Forget what the build of the copy gathered (the test server's role is a
    # superuser), so that only this run can have gathered statistics.
    warehouse.execute(
        *(
            f"delete from pg_statistic where starelid = 'analytics.{table}'::regclass"
            for table in MODELS
        )
    )
    assert [_columns_with_statistics(warehouse, table) for table in MODELS] == [0] * 4
    warehouse.dbt("run", "--select", *MODELS, as_of=SECOND)
    for table in MODELS:
        assert _columns_with_statistics(warehouse, table) > 0, table


# A model that records the setting in effect while it is built, in each folder whose
# models get the hook, and among the audience versions, which do not.
SETTING_MODEL = "select current_setting('jit') as jit_setting"
FOLDERS = {
    "intermediate": "off",
    "marts": "off",
    "syncs": "off",
    "audiences": "on",
}


def test_models_run_without_jit(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    copy_project(project)
    for folder in FOLDERS:
        model = project / "models" / folder / f"scratch_jit_{folder}.sql"
        # Intermediate models are ephemeral unless they say otherwise.
        model.write_text("{{ config(materialized='table') }}\n" + SETTING_MODEL + "\n")
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    assert warehouse.rows("show jit") == [("on",)]  # the server's default
    warehouse.dbt(
        "run", "--project-dir", str(project), "--select",
        *(f"scratch_jit_{folder}" for folder in FOLDERS), as_of=SECOND,
    )  # fmt: skip
    found = {
        folder: warehouse.rows(
            f"select jit_setting from analytics.scratch_jit_{folder}"
        )[0][0]
        for folder in FOLDERS
    }
    assert found == FOLDERS
