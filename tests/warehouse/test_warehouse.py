"""The connection layer: profiles.yml targets and real transactions on both engines."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from scripts.settings import SettingsError, load_target
from scripts.warehouse import Warehouse, WarehouseError, WarehouseInUseError, connect


def _atomicity(warehouse: Warehouse) -> None:
    warehouse.execute("create table if not exists t_atomic (n integer)")

    def crash_mid_transaction() -> None:
        with warehouse.transaction():
            warehouse.execute("insert into t_atomic values (%s)", (1,))
            raise RuntimeError("crash mid-transaction")

    with pytest.raises(RuntimeError):
        crash_mid_transaction()
    assert warehouse.scalar("select count(*) from t_atomic") == 0
    with warehouse.transaction():
        warehouse.executemany("insert into t_atomic values (%s)", [(2,), (3,)])
    assert warehouse.scalar("select sum(n) from t_atomic") == 5


def test_duckdb_transaction_rolls_back_everything(duckdb_path) -> None:
    with connect() as warehouse:
        assert warehouse.dialect == "duckdb"
        assert warehouse.target.duckdb_path == str(duckdb_path)
        _atomicity(warehouse)


def test_duckdb_uses_the_profiles_memory_settings(duckdb_path, monkeypatch) -> None:
    # The defaults from profiles.yml, the same ones dbt applies.
    with connect() as warehouse:
        # 3GB means 3 * 10^9 bytes; DuckDB reports it in GiB.
        assert warehouse.scalar("select current_setting('memory_limit')") == "2.7 GiB"
        assert warehouse.scalar("select current_setting('temp_directory')") == (
            f"{duckdb_path}.tmp"
        )
        assert (
            warehouse.scalar("select current_setting('block_allocator_memory')")
            == "0 bytes"
        )
    spill = duckdb_path.parent / "spill"
    monkeypatch.setenv("AUDIENCES_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("AUDIENCES_DUCKDB_TEMP_DIRECTORY", str(spill))
    monkeypatch.setenv("AUDIENCES_DUCKDB_BLOCK_ALLOCATOR_MEMORY", "1GB")
    with connect() as warehouse:
        assert warehouse.scalar("select current_setting('memory_limit')") == "667.5 MiB"
        assert (
            warehouse.scalar("select current_setting('block_allocator_memory')")
            == "953.6 MiB"
        )
        assert warehouse.scalar("select current_setting('temp_directory')") == str(
            spill
        )


def test_a_bad_duckdb_setting_is_named_not_blamed_on_another_process(
    duckdb_path, monkeypatch
) -> None:
    monkeypatch.setenv("AUDIENCES_DUCKDB_BLOCK_ALLOCATOR_MEMORY", "lots")
    with pytest.raises(WarehouseError) as caught:
        connect()
    message = str(caught.value)
    assert "Memory must have a number" in message
    assert "Another process" not in message
    assert not isinstance(caught.value, WarehouseInUseError)
    # More than the machine has: DuckDB's message names "block_allocator_size", which
    # holds the word "lock" but is not another process holding the file.
    monkeypatch.setenv("AUDIENCES_DUCKDB_BLOCK_ALLOCATOR_MEMORY", "100TB")
    with pytest.raises(WarehouseError) as caught:
        connect()
    assert "block_allocator_size" in str(caught.value)
    assert not isinstance(caught.value, WarehouseInUseError)


def test_a_held_duckdb_file_is_reported_as_in_use(duckdb_path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DUCKDB_FILE, str(duckdb_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseInUseError) as caught:
            connect()
        assert "Another process" in str(caught.value)
    finally:
        holder.communicate()  # closing its stdin lets it go
    assert holder.returncode == 0


# Opens the file, says so, and holds it until its stdin closes.
HOLD_DUCKDB_FILE = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
connection.close()
"""


@pytest.mark.postgres
def test_postgres_transaction_rolls_back_everything(postgres_env) -> None:
    with connect("postgres") as warehouse:
        assert warehouse.dialect == "postgres"
        _atomicity(warehouse)


@pytest.mark.postgres
def test_postgres_ensure_schema__a_schema_created_meanwhile_is_no_error(
    postgres_env,
) -> None:
    """The race two first syncs ran into: another session creates the schema between
    our IF NOT EXISTS check and our insert, and PostgreSQL reports a unique violation."""
    other = psycopg2.connect(
        host=postgres_env["PGHOST"],
        port=postgres_env["PGPORT"],
        user=postgres_env["PGUSER"],
        dbname=postgres_env["PGDATABASE"],
    )
    errors: list[BaseException] = []
    with connect("postgres") as warehouse:
        pid = warehouse.scalar("select pg_backend_pid()")

        def ensure() -> None:
            try:
                warehouse.ensure_schema("raced")
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        try:
            with other.cursor() as cur:
                cur.execute("create schema raced")  # not committed yet
                ours = threading.Thread(target=ensure)
                ours.start()
                deadline = time.monotonic() + 30
                # ensure_schema now waits on the other session's uncommitted row.
                while True:
                    cur.execute(
                        "select wait_event_type from pg_stat_activity where pid = %s",
                        (pid,),
                    )
                    if cur.fetchone()[0] == "Lock":
                        break
                    assert ours.is_alive(), errors
                    assert time.monotonic() < deadline, "ensure_schema never waited"
                    time.sleep(0.005)  # polling interval, not synchronisation
            other.commit()
            ours.join(timeout=30)
        finally:
            other.close()
        assert not ours.is_alive()
        assert errors == []
        assert (
            warehouse.scalar(
                "select count(*) from pg_namespace where nspname = 'raced'"
            )
            == 1
        )


def test_unknown_target_names_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="dev, postgres, spark"):
        load_target("nope")


def test_postgres_error_never_shows_the_password(monkeypatch) -> None:
    secret = "s3cret-Passw0rd-not-for-logs"
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")  # nothing listens on port 1
    monkeypatch.setenv("PGPASSWORD", secret)
    with pytest.raises(WarehouseError) as caught:
        connect("postgres")
    assert secret not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
