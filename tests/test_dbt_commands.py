"""tests/dbt_commands.py, which runs the tests' dbt commands: a test's first command
reuses the parse of an earlier command with the same vars, though its warehouse and
target folder are its own; and a command run by the fork server ends as the `dbt`
executable does (exit code, output, and a DuckDB file complete without its write-ahead
log, which the tests copy). Without the first every such command parses the whole
project again, which no other test would notice."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests import dbt_commands
from tests.dbt.small_warehouse import environment

pytestmark = [pytest.mark.dbt]

# Vars no other test uses, so that this process's cache holds no parse for them yet.
AS_OF = "2026-03-20T12:00:07Z"


def _dbt(root: Path, *args: str) -> tuple[int, str]:
    root.mkdir(exist_ok=True)
    result = dbt_commands.run(
        [str(dbt_commands.DBT), *args, "--no-use-colors", "--vars",
         '{"as_of": "' + AS_OF + '"}'],
        environment(root), capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout


def _log(root: Path) -> str:
    return (root / "logs" / "dbt.log").read_text()


def test_a_new_warehouse_reuses_the_parse_of_the_same_vars(tmp_path: Path) -> None:
    assert _dbt(tmp_path / "first", "parse")[0] == 0
    assert "Partial parsing enabled" not in _log(tmp_path / "first")
    assert _dbt(tmp_path / "second", "parse")[0] == 0
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files" in _log(
        tmp_path / "second"
    )
    assert not (tmp_path / "second" / "warehouse.duckdb").exists()  # parse opens none


def test_a_forked_command_ends_as_the_dbt_executable_does(tmp_path: Path) -> None:
    code, output = _dbt(tmp_path, "run", "--select", "stg_shop__orders")
    assert code == 0, output[-3000:]
    assert "Completed successfully" in output
    # Whole in the file itself: a copy of it holds the view.
    assert not (tmp_path / "warehouse.duckdb.wal").exists()
    shutil.copy(tmp_path / "warehouse.duckdb", tmp_path / "copy.duckdb")
    with duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True) as db:
        views = db.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'analytics'"
        ).fetchall()
    assert views == [("stg_shop__orders",)]
    code, output = _dbt(tmp_path, "run", "--select", "no_such_model", "--warn-error")
    assert code != 0
    assert "does not match any enabled nodes" in output
