"""The incremental models take the rows loaded after the newest `loaded_at` they hold
(macros/time/newest_loaded_at_held.sql), written into their SQL as a constant. A
`loaded_at` with a time zone would be rendered without its offset and shift the
watermark by hours, silently skipping or re-reading rows; the macro refuses it instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

MODEL = "int_identifier_combinations"
TABLE = f"analytics.{MODEL}"


def test_a_loaded_at_with_a_time_zone_is_refused(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    # As a table written by another tool, or altered by hand, might have it.
    warehouse.execute(f"alter table {TABLE} alter loaded_at set data type timestamptz")
    before = warehouse.rows(f"select count(*), max(loaded_at) from {TABLE}")

    result = warehouse.dbt_result("run", "--select", MODEL, as_of=SECOND)

    assert result.returncode != 0
    assert f"{TABLE}.loaded_at has a time zone" in result.stdout.replace('"', "")
    assert "it must be a timestamp without one" in result.stdout
    # Nothing was written: the run stopped before its SQL reached the table.
    assert warehouse.rows(f"select count(*), max(loaded_at) from {TABLE}") == before


def test_the_same_table_without_a_time_zone_builds(
    small_warehouse: Path, tmp_path: Path
) -> None:
    """The control: the refusal above is about the type, not the copy or the model."""
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    before = warehouse.rows(f"select count(*) from {TABLE}")

    warehouse.dbt("run", "--select", MODEL, as_of=SECOND)

    assert warehouse.rows(f"select count(*) from {TABLE}") == before
