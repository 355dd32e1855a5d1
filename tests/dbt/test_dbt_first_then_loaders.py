"""dbt may run before any loader (its on-run-start hook creates the empty raw tables):
the loaders' upserts must still work on those tables, on both engines."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests import dbt_commands

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

BIN = Path(sys.executable).parent
ORDERS = """order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at
o1,c1,a@example.org,completed,1200,USD,2026-02-01T10:00:00Z,2026-02-01T10:00:00Z
o1,c1,a@example.org,refunded,1200,USD,2026-02-01T10:00:00Z,2026-02-03T10:00:00Z
"""


def _run(env: dict[str, str], *args: str) -> str:
    result = dbt_commands.run(args, env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    return result.stdout


@pytest.mark.parametrize(
    "target", ["dev", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_loaders_upsert_into_tables_dbt_created(tmp_path, target, request) -> None:
    if target == "postgres":
        request.getfixturevalue("postgres_env")
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    _run(
        env, str(BIN / "dbt"), "run", "--select", "stg_shop__orders", "--target", target
    )
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)
    out = _run(
        env, str(BIN / "audiences"), "load", "orders", str(orders), "--target", target
    )
    assert "read 2 = loaded 1 + duplicate 1 + rejected 0" in out
    again = _run(
        env, str(BIN / "audiences"), "load", "orders", str(orders), "--target", target
    )
    # Every summary line says "skipped unchanged"; the counts say it was skipped.
    assert (
        "read 0 = loaded 0 + duplicate 0 + rejected 0 (files: 0 loaded, 1 skipped unchanged)"
        in again
    )
