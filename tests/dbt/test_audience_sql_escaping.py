"""Configuration cannot inject SQL (issue 8 §4): a LIKE pattern with a quote works, the
injection example from the issue cannot grow an audience, and sql_string_literal gives back
exactly the text it was given on DuckDB and PostgreSQL (quotes, backslashes, an attempted
break-out)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.small_warehouse import SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(1800)]

INJECTION = "%/cart%' or link_url is null or link_url like '%"
OREILLY_URL = "https://shop.example/books/o'reilly-guide"
OREILLY_PATTERN = "%/o'reilly%"  # a SQL syntax error before escaping
TRICKY_TEXTS = [
    "o'reilly",
    "'",
    "''",
    "ends with a backslash \\",
    "\\' or 1=1 --",
    INJECTION,
]


def _show(warehouse: Warehouse, sql: str) -> dict:
    output = warehouse.dbt(
        "show", "--quiet", "--output", "json", "--inline", sql, as_of=SECOND
    )
    return json.loads(output[output.index("{") :])["show"][0]


def _count(**arguments: str) -> str:
    """A count over audience_signals with these keyword arguments (as Jinja literals)."""
    rendered = ", ".join(
        f"{name}={json.dumps(value)}" for name, value in arguments.items()
    )
    return (
        "(select count(*) from ({{ audience_signals(metrics=['clicked'], "
        + rendered
        + ") }}) as signals)"
    )


def test_link_url_like_is_a_literal_not_sql(small_warehouse: Path, tmp_path) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    # One clicker of a link with a quote in it: a copy of a real click, URL replaced, in
    # the deduplicated events (the resolved view the audience macros read shows it).
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute(
            "create temp table one_click as select * "
            "from analytics.int_message_events_deduplicated "
            "where metric = 'clicked' and link_url like '%/cart%' limit 1"
        )
        connection.execute(
            "update one_click set message_event_id = 'oreilly-click', link_url = ?",
            [OREILLY_URL],
        )
        connection.execute(
            "insert into analytics.int_message_events_deduplicated select * from one_click"
        )
    counts = _show(
        Warehouse(environment(tmp_path), "dev"),
        f"select {_count(link_url_like='%/cart%')} as cart, "
        f"{_count()} as any_link, "
        f"{_count(link_url_like=INJECTION)} as injected, "
        f"{_count(link_url_like=OREILLY_PATTERN)} as oreilly",
    )
    assert 0 < counts["cart"] < counts["any_link"]
    # Unescaped, the pattern read "... or link_url is null or ..." and matched every click.
    assert counts["injected"] == 0
    assert counts["oreilly"] == 1


def _literals_round_trip(warehouse: Warehouse) -> None:
    columns = ", ".join(
        "{{ sql_string_literal(" + json.dumps(text) + ") }} as text_" + str(index)
        for index, text in enumerate(TRICKY_TEXTS)
    )
    row = _show(warehouse, f"select {columns}")
    assert [row[f"text_{index}"] for index in range(len(TRICKY_TEXTS))] == TRICKY_TEXTS


def test_string_literals_round_trip_on_duckdb(tmp_path) -> None:
    _literals_round_trip(Warehouse(environment(tmp_path), "dev"))


@pytest.mark.postgres
def test_string_literals_round_trip_on_postgres(tmp_path, postgres_env) -> None:
    _literals_round_trip(
        Warehouse({**environment(tmp_path), **postgres_env}, "postgres")
    )
