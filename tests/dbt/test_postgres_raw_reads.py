"""On PostgreSQL a build reads only the raw rows loaded since the last one through an index
on `_loaded_at` (macros/setup/create_raw_tables_if_missing.sql). The dedupe and the
identity combinations filter the staged events by `loaded_at >` the newest they hold;
PostgreSQL pushes that filter through the staging views down to the raw tables, and
without an index it reads each raw table whole for it, on every build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.postgres]

# The two incremental models that read the raw message tables by load time.
MODELS = ("int_message_events_deduplicated", "int_identifier_combinations")
INDEXED = ("webhook_events", "tracks", "api_messages")


def _compiled(root: Path, model: str) -> str:
    """The model's compiled query (not one of its unit tests', which share its name)."""
    (path,) = (
        path
        for path in (root / "target" / "compiled").rglob(f"{model}.sql")
        if "unit_tests" not in path.parent.name
    )
    return path.read_text()


def test_postgres_builds_read_new_raw_rows_through_an_index(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    indexes = warehouse.rows(
        "select tablename, indexdef from pg_indexes where indexname like '%__loaded_at'"
    )
    assert sorted(table for table, _ in indexes) == sorted(INDEXED), indexes
    assert all(definition.endswith("(_loaded_at)") for _, definition in indexes)
    # Compiled against the built copy, so as an incremental run compiles them.
    warehouse.dbt("compile", "--select", *MODELS, as_of=SECOND)
    connection = warehouse._postgres()
    try:
        with connection.cursor() as cursor:
            # Whatever the tiny tables' sizes would make cheapest: can the plan reach
            # the new rows by the index at all? Without it each table is scanned whole.
            cursor.execute("set enable_seqscan = off")
            for model in MODELS:
                cursor.execute("explain " + _compiled(tmp_path, model))
                plan = [row[0].strip() for row in cursor.fetchall()]
                for table in INDEXED:
                    # The plan's reads of this table: an index scan, or a bitmap heap
                    # scan fed by a bitmap index scan; never the whole table.
                    reads = [line for line in plan if f" {table}" in line]
                    assert any(f"{table}__loaded_at" in line for line in reads), (
                        model,
                        table,
                        plan,
                    )
                    assert not any("Seq Scan" in line for line in reads), (model, reads)
    finally:
        connection.rollback()
        connection.close()


def test_postgres_scheduled_build_skips_the_replay_branch(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    # int_identifiers_observed takes the latest sighting up to as_of from the events
    # themselves only for combinations seen after as_of (a replay). On a scheduled run
    # there are none, and PostgreSQL still read and sorted every message event for that
    # join (10 s of a tick at 20 k people, a year): an uncorrelated check skips it.
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    warehouse.dbt("compile", "--select", "int_identifiers_observed", as_of=SECOND)
    connection = warehouse._postgres()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "explain (analyze, costs off, timing off) "
                + _compiled(tmp_path, "int_identifiers_observed")
            )
            plan = [row[0].strip() for row in cursor.fetchall()]
    finally:
        connection.rollback()
        connection.close()
    reads = [line for line in plan if "Scan on webhook_events" in line]
    assert reads, plan
    assert all(line.endswith("(never executed)") for line in reads), reads
