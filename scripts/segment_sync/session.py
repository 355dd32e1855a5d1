"""A Warehouse whose DuckDB statements all run on one connection.

`Warehouse` runs each DuckDB statement on `connection.cursor()`, and in DuckDB's Python API
a cursor is a *sibling connection*: temp tables made on one are invisible to the next, and
a `begin` issued on one does not cover statements on another, so `transaction()` is not
atomic there. The sync's plan lives in temp tables and its crash safety rests on
transactions, so it uses this subclass. (PostgreSQL cursors share their connection; the
base class is right there.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scripts.settings import Target, load_target
from scripts.warehouse import Warehouse


class SessionWarehouse(Warehouse):
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.dialect != "duckdb":
            super().execute(sql, params)
            return
        self.raw_connection.execute(self._sql(sql), params or ())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect != "duckdb":
            super().executemany(sql, rows)
            return
        if rows:
            self.raw_connection.executemany(self._sql(sql), rows)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        if self.dialect != "duckdb":
            return super().query(sql, params)
        return list(
            self.raw_connection.execute(self._sql(sql), params or ()).fetchall()
        )


def connect(target: Target | str | None = None) -> SessionWarehouse:
    if not isinstance(target, Target):
        target = load_target(target)
    return SessionWarehouse(target)
