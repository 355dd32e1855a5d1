"""A PostgreSQL role without CREATE on the database gets one line naming the right."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import psycopg2
import pytest

from tests.postgres_server import create_database

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIENCES = REPO_ROOT / ".venv" / "bin" / "audiences"
ORDERS = (
    "order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at\n"
    "A1,c1,,completed,100,USD,2026-11-01T00:00:00Z,\n"
)


@pytest.mark.postgres
def test_load_without_create_on_the_database_is_one_line_exit_2(
    postgres_server, tmp_path
) -> None:
    env = create_database(postgres_server, "audiences_rights_check")
    password = secrets.token_hex(12)
    admin = psycopg2.connect(
        host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("drop role if exists audiences_limited")
        cur.execute("create role audiences_limited login password %s", (password,))
        cur.execute("revoke all on database audiences_rights_check from public")
        cur.execute(
            "grant connect on database audiences_rights_check to audiences_limited"
        )
    admin.close()
    (tmp_path / "orders.csv").write_text(ORDERS)
    run_env = {
        **{k: v for k, v in os.environ.items() if k != "DBT_TARGET"},
        **env,
        "PGUSER": "audiences_limited",
        "PGPASSWORD": password,
        "AUDIENCES_TARGET": "postgres",
    }
    result = subprocess.run(
        [str(AUDIENCES), "load", "orders", str(tmp_path / "orders.csv")],
        cwd=REPO_ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: role audiences_limited may not create schema raw_loader: it needs CREATE "
        "on database audiences_rights_check (grant connect, create, temporary on "
        "database audiences_rights_check to audiences_limited)"
    )
    assert password not in result.stderr + result.stdout
