"""scripts/loaders/bulk.py's PostgreSQL path, on a real server, staging tables by hand.

On a PostgreSQL target the stager's tables live in a private DuckDB (the staging
connection), the kept rows travel to the server by COPY, and the server decides the
conflicts and the upsert (`_apply_postgres`, `_copy_from_duck`, `_write_rejects`). The
DuckDB twin of each case is in test_bulk_rules.py; these pin the same outcomes where the
SQL is PostgreSQL's: the exact conflict detail, a resend spelt differently being the same
`jsonb`, the versioned upsert keeping known values, the reject rows' NUL marking and cut.
Milliseconds a test on the session's server, so `make mutate` runs them for the loaders
area (it starts one server for the whole area).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.loaders import bulk, ledger
from scripts.loaders.bulk import ensure_table
from scripts.loaders.files import Reject
from scripts.loaders.ledger import CONFLICT_REASON, Counts
from scripts.loaders.runner import _staging_connection
from scripts.warehouse import connect
from tests.loaders.test_bulk_rules import (
    EVENTS,
    LOADED_AT,
    ORDERS,
    load,
    order,
    orders,
    rejects,
    stage,
    valid,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_env: dict[str, str], tmp_path: Path):
    """(the PostgreSQL warehouse, its staging DuckDB, an empty work folder)."""
    warehouse = connect("postgres")
    ledger.ensure_ledger(warehouse)
    ensure_table(warehouse, EVENTS)
    ensure_table(warehouse, ORDERS)
    workdir = tmp_path / "work"
    workdir.mkdir()
    duck = _staging_connection(warehouse, workdir)
    yield warehouse, duck, workdir
    duck.close()
    warehouse.close()


def test_ensure_table__events_have_no_key_but_postgres_tables_do(pg):
    wh, _duck, _workdir = pg
    keys = wh.query(
        "select tc.table_name, kcu.column_name from information_schema.table_constraints "
        "as tc inner join information_schema.key_column_usage as kcu "
        "using (constraint_schema, constraint_name) where tc.table_schema = 'raw_t' "
        "and tc.constraint_type = 'PRIMARY KEY' order by 1"
    )
    # ON CONFLICT needs the constraint on PostgreSQL, for events as for versioned rows
    assert keys == [("events", "id"), ("orders", "id")]
    assert wh.query(
        "select data_type from information_schema.columns where table_schema = 'raw_t' "
        "and table_name = 'events' and column_name = 'payload'"
    ) == [("jsonb",)]


def test_apply__rows_travel_by_copy_with_their_lines_and_no_file_is_left(pg):
    wh, duck, workdir = pg
    # a comma and quotes: the CSV between DuckDB and COPY must quote them
    tricky = valid(3, "b", 'y,"q"', '{"id":"b","k":"y,\\"q\\""}')
    stage(wh, EVENTS, [valid(1, "a", "x"), tricky], workdir, duck=duck)
    counts = load(wh, EVENTS, "a.ndjson", workdir, duck=duck)
    assert counts == Counts(read=2, loaded=2)
    assert wh.query(
        "select id, kind, payload->>'k', _source_file, _source_line, _loaded_at "
        "from raw_t.events order by id"
    ) == [
        ("a", "x", "x", "a.ndjson", 1, LOADED_AT),
        ("b", 'y,"q"', 'y,"q"', "a.ndjson", 3, LOADED_AT),
    ]
    assert rejects(wh, "a.ndjson") == []
    assert list(workdir.iterdir()) == []  # the COPY files are removed


def test_apply__in_file_copies_first_wins_a_different_body_is_noted(pg):
    wh, duck, workdir = pg
    rows = [
        valid(1, "a", "first"),
        valid(2, "a", "first"),  # the same body: a plain duplicate
        valid(3, "a", "second"),  # a different body: duplicate and conflict
    ]
    stage(wh, EVENTS, rows, workdir, duck=duck)
    counts = load(wh, EVENTS, "a.ndjson", workdir, duck=duck)
    assert counts == Counts(read=3, loaded=1, duplicate=2, conflicting=1)
    assert wh.query("select id, kind, _source_line from raw_t.events") == [
        ("a", "first", 1)
    ]
    assert rejects(wh, "a.ndjson") == [
        (
            "t_events", 3, CONFLICT_REASON,
            "id a also on line 1 of this file with a different body; the kept copy wins",
            '{"id":"a","k":"second"}', LOADED_AT, "sha-a.ndjson",
        )
    ]  # fmt: skip


def test_apply__keys_loaded_by_an_earlier_file(pg):
    wh, duck, workdir = pg
    stage(wh, EVENTS, [valid(1, "a", "x"), valid(2, "b", "x")], workdir, duck=duck)
    load(wh, EVENTS, "first.ndjson", workdir, duck=duck)
    stage(
        wh, EVENTS, [valid(1, "c", "new"), valid(2, "a", "x"), valid(3, "b", "changed")],
        workdir, duck=duck,
    )  # fmt: skip
    counts = load(wh, EVENTS, "second.ndjson", workdir, duck=duck)
    assert counts == Counts(read=3, loaded=1, duplicate=2, conflicting=1)
    assert wh.query(
        "select id, kind, _source_file, _source_line from raw_t.events order by id"
    ) == [
        ("a", "x", "first.ndjson", 1),
        ("b", "x", "first.ndjson", 2),  # the loaded copy wins
        ("c", "new", "second.ndjson", 1),
    ]
    assert rejects(wh, "second.ndjson") == [
        (
            "t_events", 3, CONFLICT_REASON,
            "id b already loaded from first.ndjson line 2 with a different body; "
            "the loaded copy wins",
            # the server keeps the copy as jsonb, so its text is PostgreSQL's spelling
            '{"k": "changed", "id": "b"}', LOADED_AT, "sha-second.ndjson",
        )
    ]  # fmt: skip


def test_apply__a_resend_spelt_differently_is_the_same_body(pg):
    wh, duck, workdir = pg
    stage(
        wh, EVENTS, [valid(1, "a", "x", '{"id": "a",  "k": "x"}')], workdir, duck=duck
    )
    load(wh, EVENTS, "first.ndjson", workdir, duck=duck)
    stage(wh, EVENTS, [valid(1, "a", "x", '{"k":"x","id":"a"}')], workdir, duck=duck)
    counts = load(wh, EVENTS, "second.ndjson", workdir, duck=duck)
    assert counts == Counts(read=1, duplicate=1)
    assert rejects(wh, "second.ndjson") == []


def test_apply__reject_rows_keep_raw_text_nul_marked_and_cut_at_64_kib(pg):
    wh, duck, workdir = pg
    long_raw = "r" * (bulk.MAX_RAW_SQL + 10)
    stage(
        wh, EVENTS,
        [valid(1, "a", "x"), (2, "not_an_object", "why", None, None, "[1]")],
        workdir,
        (
            Reject(3, "invalid_utf8", "bad byte", "a\x00b"),
            Reject(4, "record_too_large", "big", long_raw),
        ),
        duck=duck,
    )  # fmt: skip
    counts = load(wh, EVENTS, "r.ndjson", workdir, duck=duck)
    assert counts == Counts(read=4, loaded=1, rejected=3)
    assert wh.query(
        "select source_line, reason, detail, raw_text, rejected_at, file_sha256 "
        "from raw_loader.rejects order by source_line"
    ) == [
        (2, "not_an_object", "why", "[1]", LOADED_AT, "sha-r.ndjson"),
        (3, "invalid_utf8", "bad byte", "a\\0b", LOADED_AT, "sha-r.ndjson"),
        (4, "record_too_large", "big", "r" * bulk.MAX_RAW_SQL, LOADED_AT, "sha-r.ndjson"),
    ]  # fmt: skip
    assert list(workdir.iterdir()) == []


def test_apply_versioned__newer_overwrites_keeping_known_values_older_does_not(pg):
    wh, duck, workdir = pg
    stage(
        wh, ORDERS,
        [order(1, "o1", "completed", "gift", 2), order(2, "o2", "completed", "b", 2),
         order(3, "o3", "completed", "c", 2)],
        workdir, duck=duck,
    )  # fmt: skip
    load(wh, ORDERS, "first.csv", workdir, duck=duck)
    stage(
        wh, ORDERS,
        [
            order(1, "o1", "refunded", None, 3),  # newer, note unknown: note stays
            order(2, "o2", "refunded", "late", 1),  # older: ignored, no conflict
            order(3, "o3", "cancelled", "c", 2),  # same version, other body: conflict
            order(4, "o4", "completed", None, None),  # new key, no version
        ],
        workdir, duck=duck,
    )  # fmt: skip
    counts = load(wh, ORDERS, "second.csv", workdir, duck=duck)
    assert counts == Counts(read=4, loaded=2, duplicate=2, conflicting=1)
    assert orders(wh) == [
        ("o1", "refunded", "gift", 3, "second.csv", 1),
        ("o2", "completed", "b", 2, "first.csv", 2),
        ("o3", "completed", "c", 2, "first.csv", 3),
        ("o4", "completed", None, None, "second.csv", 4),
    ]
    assert wh.scalar("select payload->>'s' from raw_t.orders where id = 'o1'") == (
        "refunded"
    )
    assert [row[1:4] for row in rejects(wh, "second.csv")] == [
        (
            3,
            CONFLICT_REASON,
            "id o3 already loaded from first.csv line 3 with a different body; "
            "the loaded copy wins",
        )
    ]
