"""The unique tests on the tables of every event: a plain build checks every key, a tick
(`data_tests_scope: recent`, what `audiences run` passes) the keys loaded recently.

"Recently" must still catch what an incremental bug produces: a new row that repeats an
old row's key. Only a duplicate entirely older than the window goes unchecked on ticks,
and a plain `dbt build` (CI, `make build`) still finds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from scripts.run.command import TICK_DBT_VARS
from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(1800)]

TEST = "unique_stg_customerio__webhook_events_event_id"
RECENT = ', "data_tests_scope": "recent"'
OLD = "2020-01-01 00:00:00"


def _failures(warehouse: Warehouse, tmp_path: Path, extra_vars: str = "") -> int:
    result = warehouse.dbt_result(
        "test", "--select", TEST, as_of=SECOND, extra_vars=extra_vars
    )
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())
    (row,) = [r for r in results["results"] if r["unique_id"].split(".")[2] == TEST]
    assert row["status"] in ("pass", "fail"), result.stdout[-3000:]
    return int(row["failures"] or 0)


def _duplicate(path: Path, event_loaded_at: str, copy_loaded_at: str) -> None:
    """Give one event an old load time, then insert a second copy of it."""
    with duckdb.connect(str(path)) as connection:
        event_id = connection.execute(
            "select min(event_id) from raw_customerio.webhook_events"
        ).fetchone()[0]
        connection.execute(
            "update raw_customerio.webhook_events set _loaded_at = ? where event_id = ?",
            [event_loaded_at, event_id],
        )
        connection.execute(
            "insert into raw_customerio.webhook_events select event_id, object_type, "
            "metric, occurred_at, payload, _source_file, _source_line, ?::timestamp "
            "from raw_customerio.webhook_events where event_id = ?",
            [copy_loaded_at, event_id],
        )


def test_the_tick_passes_the_recent_scope() -> None:
    assert json.loads(TICK_DBT_VARS) == {"data_tests_scope": "recent"}


def test_a_new_copy_of_an_old_key_fails_the_tick(small_warehouse: Path, tmp_path):
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    assert _failures(warehouse, tmp_path, RECENT) == 0
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        newest = connection.execute(
            "select max(_loaded_at) from raw_customerio.webhook_events"
        ).fetchone()[0]
    _duplicate(tmp_path / "warehouse.duckdb", OLD, str(newest))

    assert _failures(warehouse, tmp_path, RECENT) == 1
    assert _failures(warehouse, tmp_path) == 1


def test_an_old_duplicate_is_left_to_the_full_check(small_warehouse: Path, tmp_path):
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    _duplicate(tmp_path / "warehouse.duckdb", OLD, OLD)

    assert _failures(warehouse, tmp_path, RECENT) == 0
    assert _failures(warehouse, tmp_path) == 1


def test_an_unknown_scope_is_refused(small_warehouse: Path, tmp_path):
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    result = warehouse.dbt_result(
        "test", "--select", TEST, as_of=SECOND,
        extra_vars=', "data_tests_scope": "latest"',
    )  # fmt: skip
    assert result.returncode != 0
    assert "data_tests_scope must be all or recent, got 'latest'" in result.stdout
