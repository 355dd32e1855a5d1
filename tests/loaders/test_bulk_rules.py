"""scripts/loaders/bulk.py on a real DuckDB file, staging tables written by hand.

Every loader's stager ends with the same two tables (`_ld_class`, `_ld_pyrejects`, see
scripts/loaders/stage.py); here they are filled directly with the cases that decide what
lands: in-file copies (same body, different body, the same JSON spelt differently),
re-sent keys across files, versioned rows (newer wins, older or equal does not, a null
keeps the known value), and the reject rows with their exact detail. Milliseconds a test,
so `make mutate` can afford them for the loaders area (benchmarks/mutation.md); the CLI
tests prove the same through `audiences load`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from scripts.loaders import bulk, ledger
from scripts.loaders.bulk import FileContext, TableSpec, apply, ensure_table
from scripts.loaders.files import Reject
from scripts.loaders.ledger import CONFLICT_REASON, Counts
from scripts.loaders.stage import CLASSIFIED, Column, store_python_rejects
from scripts.warehouse import Warehouse, connect

LOADED_AT = datetime(2026, 12, 2, 9, 30, 15)
EVENTS = TableSpec(
    loader="t_events",
    schema="raw_t",
    table="events",
    key="id",
    columns=(Column("id", "varchar"), Column("kind", "varchar")),
)
ORDERS = TableSpec(
    loader="t_orders",
    schema="raw_t",
    table="orders",
    key="id",
    columns=(
        Column("id", "varchar"),
        Column("status", "varchar"),
        Column("note", "varchar"),
        Column("v", "bigint"),
    ),
    version="v",
    keep_known=("note",),
)


@pytest.fixture
def wh(duckdb_path: Path):
    warehouse = connect("dev")
    warehouse.raw_connection.execute("set TimeZone = 'UTC'")
    ledger.ensure_ledger(warehouse)
    ensure_table(warehouse, EVENTS)
    ensure_table(warehouse, ORDERS)
    yield warehouse
    warehouse.close()


def stage(
    wh: Warehouse,
    spec: TableSpec,
    rows: list[tuple],
    workdir: Path,
    py_rejects: tuple[Reject, ...] = (),
    duck=None,
) -> None:
    """`_ld_class` as a stager leaves it: (line_no, reason, detail, *columns, payload).
    `duck`: the staging connection (on DuckDB targets, the warehouse's own)."""
    duck = duck or wh.raw_connection
    columns = ", ".join(f"{c.name} {c.type}" for c in spec.columns)
    duck.execute(
        f"create or replace temp table {CLASSIFIED} (line_no bigint, reason varchar, "
        f"detail varchar, {columns}, payload varchar)"
    )
    if rows:
        marks = ", ".join(["?"] * (len(spec.columns) + 4))
        duck.executemany(f"insert into {CLASSIFIED} values ({marks})", rows)
    workdir.mkdir(exist_ok=True)
    store_python_rejects(duck, list(py_rejects), workdir)


def load(wh: Warehouse, spec: TableSpec, name: str, workdir: Path, duck=None) -> Counts:
    ctx = FileContext(
        source_file=name, sha256=f"sha-{name}", loaded_at=LOADED_AT, workdir=workdir
    )
    with wh.transaction():
        return apply(wh, duck or wh.raw_connection, spec, ctx)


def rejects(wh: Warehouse, name: str) -> list[tuple]:
    return wh.query(
        "select loader, source_line, reason, detail, raw_text, rejected_at, "
        "file_sha256 from raw_loader.rejects where source_file = %s "
        "order by source_line, reason",
        (name,),
    )


def valid(line: int, key: str, kind: str, payload: str | None = None) -> tuple:
    return (line, None, None, key, kind, payload or f'{{"id":"{key}","k":"{kind}"}}')


# ------------------------------------------------------------------ tables
def test_ensure_table__columns_key_and_payload_compression(wh, tmp_path):
    def columns(table: str) -> list[tuple]:
        return wh.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw_t' and table_name = %s order by ordinal_position",
            (table,),
        )

    assert columns("events") == [
        ("id", "VARCHAR"), ("kind", "VARCHAR"), ("payload", "JSON"),
        ("_source_file", "VARCHAR"), ("_source_line", "BIGINT"),
        ("_loaded_at", "TIMESTAMP"),
    ]  # fmt: skip
    assert columns("orders")[:4] == [
        ("id", "VARCHAR"), ("status", "VARCHAR"), ("note", "VARCHAR"), ("v", "BIGINT"),
    ]  # fmt: skip
    keys = wh.query(
        "select table_name, constraint_column_names from duckdb_constraints() "
        "where schema_name = 'raw_t' and constraint_type = 'PRIMARY KEY'"
    )
    # Events are deduplicated by an anti join, not an index; versioned rows upsert.
    assert keys == [("orders", ["id"])]
    stage(wh, EVENTS, [valid(i, f"k{i}", "x" * 50) for i in range(1, 50)], tmp_path)
    load(wh, EVENTS, "a.ndjson", tmp_path)
    wh.execute("checkpoint")
    assert wh.query(
        "select distinct compression from pragma_storage_info('raw_t.events') "
        "where column_name = 'payload' and segment_type <> 'VALIDITY'"
    ) == [("ZSTD",)]
    ensure_table(wh, EVENTS)  # again: `if not exists`, the rows stay
    assert wh.scalar("select count(*) from raw_t.events") == 49


def test_table_spec__qualified_name_and_column_names():
    assert ORDERS.qualified == "raw_t.orders"
    assert ORDERS.names == ["id", "status", "note", "v"]


# ------------------------------------------------------------------ counts
def test_count_staged__python_rejects_count_as_read_and_rejected(wh, tmp_path):
    stage(
        wh,
        EVENTS,
        [valid(1, "a", "x"), (2, "invalid_json", "bad", None, None, "{"),
         valid(3, "b", "x"), valid(5, "c", "x")],
        tmp_path,
        (Reject(4, "invalid_utf8", "d", "r"), Reject(6, "record_too_large", "d", "r")),
    )  # fmt: skip
    counts, valid_records = bulk.count_staged(wh.raw_connection)
    assert counts == Counts(read=6, rejected=3)
    assert valid_records == 3


def test_apply__nothing_valid_loads_nothing(wh, tmp_path):
    stage(wh, EVENTS, [(1, "invalid_json", "bad", None, None, "{")], tmp_path)
    counts = load(wh, EVENTS, "bad.ndjson", tmp_path)
    assert counts == Counts(read=1, rejected=1)
    assert wh.scalar("select count(*) from raw_t.events") == 0
    assert rejects(wh, "bad.ndjson") == [
        ("t_events", 1, "invalid_json", "bad", "{", LOADED_AT, "sha-bad.ndjson")
    ]


# ------------------------------------------------------------------ events
def test_apply__unique_keys_all_load_with_their_lines(wh, tmp_path):
    stage(wh, EVENTS, [valid(1, "a", "x"), valid(3, "b", "y")], tmp_path)
    counts = load(wh, EVENTS, "a.ndjson", tmp_path)
    assert counts == Counts(read=2, loaded=2)
    assert wh.query(
        "select id, kind, payload->>'$.k', _source_file, _source_line, _loaded_at "
        "from raw_t.events order by id"
    ) == [
        ("a", "x", "x", "a.ndjson", 1, LOADED_AT),
        ("b", "y", "y", "a.ndjson", 3, LOADED_AT),
    ]
    assert rejects(wh, "a.ndjson") == []


def test_apply__in_file_copies_first_wins_a_different_body_is_noted(wh, tmp_path):
    rows = [
        valid(1, "a", "first"),
        valid(2, "b", "x"),
        valid(3, "a", "first"),  # the same body: a plain duplicate
        valid(4, "a", "x", '{"id": "a",  "k": "first"}'),  # same JSON, other spelling
        valid(5, "a", "second"),  # a different body: duplicate and conflict
    ]
    stage(wh, EVENTS, rows, tmp_path)
    counts = load(wh, EVENTS, "a.ndjson", tmp_path)
    assert counts == Counts(read=5, loaded=2, duplicate=3, conflicting=1)
    assert counts.reconciles
    assert wh.query("select id, kind, _source_line from raw_t.events order by id") == [
        ("a", "first", 1),
        ("b", "x", 2),
    ]
    assert rejects(wh, "a.ndjson") == [
        (
            "t_events", 5, CONFLICT_REASON,
            "id a also on line 1 of this file with a different body; the kept copy wins",
            '{"id":"a","k":"second"}', LOADED_AT, "sha-a.ndjson",
        )
    ]  # fmt: skip


def test_apply__keys_loaded_by_an_earlier_file(wh, tmp_path):
    stage(wh, EVENTS, [valid(1, "a", "x"), valid(2, "b", "x")], tmp_path)
    load(wh, EVENTS, "first.ndjson", tmp_path)
    stage(
        wh,
        EVENTS,
        [valid(1, "c", "new"), valid(2, "a", "x"), valid(3, "b", "changed")],
        tmp_path,
    )
    counts = load(wh, EVENTS, "second.ndjson", tmp_path)
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
            '{"id":"b","k":"changed"}', LOADED_AT, "sha-second.ndjson",
        )
    ]  # fmt: skip


def test_apply__a_resend_spelt_differently_is_the_same_body(wh, tmp_path):
    stage(wh, EVENTS, [valid(1, "a", "x", '{"id": "a",  "k": "x"}')], tmp_path)
    load(wh, EVENTS, "first.ndjson", tmp_path)
    stage(wh, EVENTS, [valid(1, "a", "x", '{"id":"a","k":"x"}')], tmp_path)
    counts = load(wh, EVENTS, "second.ndjson", tmp_path)
    assert counts == Counts(read=1, duplicate=1)
    assert rejects(wh, "second.ndjson") == []


def test_apply__a_resent_file_is_all_duplicates(wh, tmp_path):
    rows = [valid(1, "a", "x"), valid(2, "b", "y")]
    stage(wh, EVENTS, rows, tmp_path)
    load(wh, EVENTS, "a.ndjson", tmp_path)
    stage(wh, EVENTS, rows, tmp_path)
    assert load(wh, EVENTS, "again.ndjson", tmp_path) == Counts(read=2, duplicate=2)
    assert rejects(wh, "again.ndjson") == []


def test_apply__reject_rows_keep_raw_text_nul_marked_and_cut_at_64_kib(wh, tmp_path):
    long_raw = "r" * (bulk.MAX_RAW_SQL + 10)
    stage(
        wh,
        EVENTS,
        [valid(1, "a", "x"), (2, "not_an_object", "why", None, None, "[1]")],
        tmp_path,
        (
            Reject(3, "invalid_utf8", "bad byte", "a\x00b"),
            Reject(4, "record_too_large", "big", long_raw),
            Reject(None, "truncated_gzip", "cut", ""),
        ),
    )
    counts = load(wh, EVENTS, "r.ndjson", tmp_path)
    assert counts == Counts(read=5, loaded=1, rejected=4)
    got = wh.query(
        "select source_line, reason, detail, raw_text, rejected_at, file_sha256 "
        "from raw_loader.rejects order by source_line nulls last"
    )
    assert got == [
        (2, "not_an_object", "why", "[1]", LOADED_AT, "sha-r.ndjson"),
        (3, "invalid_utf8", "bad byte", "a\\0b", LOADED_AT, "sha-r.ndjson"),
        (4, "record_too_large", "big", "r" * bulk.MAX_RAW_SQL, LOADED_AT, "sha-r.ndjson"),
        (None, "truncated_gzip", "cut", "", LOADED_AT, "sha-r.ndjson"),
    ]  # fmt: skip


# ------------------------------------------------------------------ versioned
def order(line: int, key: str, status: str, note: str | None, v: int | None) -> tuple:
    payload = f'{{"id":"{key}","s":"{status}","n":"{note}","v":{v or 0}}}'
    return (line, None, None, key, status, note, v, payload)


def orders(wh: Warehouse) -> list[tuple]:
    return wh.query(
        "select id, status, note, v, _source_file, _source_line from raw_t.orders "
        "order by id"
    )


def test_apply_versioned__in_file_latest_version_wins_ties_go_to_the_first_line(
    wh, tmp_path
):
    # As across files, where an equal version loaded later does not overwrite.
    rows = [
        order(1, "o1", "completed", "gift", 1),  # older: its note fills the kept row's
        order(2, "o1", "refunded", None, 2),  # latest version, first line: kept
        order(3, "o1", "cancelled", None, 2),  # same version, later line: a conflict
        order(4, "o1", "completed", "x", None),  # no version: sorts last
        order(5, "o2", "completed", None, None),
        order(6, "o3", "completed", "a", 5),
        order(7, "o3", "completed", "a", 5),  # identical copy: no conflict
    ]
    stage(wh, ORDERS, rows, tmp_path)
    counts = load(wh, ORDERS, "o.csv", tmp_path)
    assert counts == Counts(read=7, loaded=3, duplicate=4, conflicting=1)
    assert orders(wh) == [
        ("o1", "refunded", "gift", 2, "o.csv", 2),
        ("o2", "completed", None, None, "o.csv", 5),
        ("o3", "completed", "a", 5, "o.csv", 6),
    ]
    assert [row[1:4] for row in rejects(wh, "o.csv")] == [
        (
            3,
            CONFLICT_REASON,
            "id o1 also on line 2 of this file with a different body; the kept copy wins",
        )
    ]


def test_apply_versioned__newer_overwrites_keeping_known_values_older_does_not(
    wh, tmp_path
):
    stage(
        wh,
        ORDERS,
        [order(1, "o1", "completed", "gift", 2), order(2, "o2", "completed", "b", 2),
         order(3, "o3", "completed", "c", 2)],
        tmp_path,
    )  # fmt: skip
    load(wh, ORDERS, "first.csv", tmp_path)
    stage(
        wh,
        ORDERS,
        [
            order(1, "o1", "refunded", None, 3),  # newer, note unknown: note stays
            order(2, "o2", "refunded", "late", 1),  # older: ignored, no conflict
            order(3, "o3", "cancelled", "c", 2),  # same version, other body: conflict
        ],
        tmp_path,
    )
    counts = load(wh, ORDERS, "second.csv", tmp_path)
    assert counts == Counts(read=3, loaded=1, duplicate=2, conflicting=1)
    assert orders(wh) == [
        ("o1", "refunded", "gift", 3, "second.csv", 1),
        ("o2", "completed", "b", 2, "first.csv", 2),
        ("o3", "completed", "c", 2, "first.csv", 3),
    ]
    assert wh.scalar("select payload->>'$.s' from raw_t.orders where id = 'o1'") == (
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


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ('{"a":1,"b":[1,2]}', '{ "b": [1, 2], "a": 1 }', True),  # order and spacing
        ('{"a":1}', '{"a":1.0}', True),  # one number, two spellings (jsonb: equal)
        ('{"a":1e2}', '{"a":100}', True),
        ('{"a":true}', '{"a":1}', False),  # Python's == says True == 1
        ('{"a":[1,2]}', '{"a":[2,1]}', False),  # arrays keep their order
        ('{"a":null}', "{}", False),
        ('{"a":"1"}', '{"a":1}', False),
        ('{"a":NaN}', '{"a":NaN}', False),  # unreadable here: the texts differ already
    ],
)
def test_same_json_text__compares_values_as_jsonb_does(first, second, same):
    from scripts.loaders.bulk import _same_json_text

    assert _same_json_text(first, second) is same
