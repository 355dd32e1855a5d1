"""bulk.loaded_rows: the raw rows of the re-sent keys, listed as constants or, past
MAX_LISTED_KEYS, by a subquery. Both forms must return exactly the rows of those keys,
quotes in a key included (the constants are SQL literals)."""

from __future__ import annotations

import duckdb
import pytest

from scripts.loaders import bulk
from scripts.loaders.stage import Column

SPEC = bulk.TableSpec(
    loader="webhooks", schema="raw", table="events", key="event_id",
    columns=(Column("event_id", "varchar"),),
)  # fmt: skip
KEYS = ["a", "o'reilly", "c"]


@pytest.mark.parametrize("max_listed", [0, 2, 3, 5000])  # 3 = exactly the keys
def test_loaded_rows_are_exactly_the_keys_rows(monkeypatch, max_listed: int) -> None:
    monkeypatch.setattr(bulk, "MAX_LISTED_KEYS", max_listed)
    duck = duckdb.connect()
    duck.execute("create schema raw")
    duck.execute("create table raw.events (event_id varchar, payload varchar)")
    duck.execute(
        "insert into raw.events values ('a', '1'), ('b', '2'), ('o''reilly', '3'), "
        "('c', '4'), ('d', '5')"
    )
    duck.execute("create table staged (event_id varchar)")
    duck.executemany("insert into staged values (?)", [[key] for key in KEYS])

    relation = bulk.loaded_rows(duck, SPEC, "select event_id from staged")

    rows = duck.execute(
        f"select event_id, payload from {relation} order by 1"
    ).fetchall()
    assert rows == [("a", "1"), ("c", "4"), ("o'reilly", "3")]
    listed = max_listed >= len(KEYS)
    assert ("'o''reilly'" in relation) is listed


def test_no_resent_key_gives_no_rows() -> None:
    duck = duckdb.connect()
    duck.execute("create schema raw")
    duck.execute("create table raw.events (event_id varchar, payload varchar)")
    duck.execute("insert into raw.events values ('a', '1')")
    relation = bulk.loaded_rows(duck, SPEC, "select 'zz' where false")
    assert duck.execute(f"select count(*) from {relation}").fetchone() == (0,)
