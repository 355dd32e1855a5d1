"""One small connection interface over DuckDB and PostgreSQL.

Loaders and the sync speak through this class only, so the same code lands data on the
embedded DuckDB file and on a PostgreSQL server. SQL is written with `%s` placeholders
(psycopg2's style); for DuckDB they become `?`. Bulk paths differ per engine and live in the
loaders (DuckDB reads files natively; PostgreSQL takes COPY).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scripts.settings import NOT_A_FILE, Target, load_target

# SQLSTATE 42501, PostgreSQL's insufficient_privilege.
INSUFFICIENT_PRIVILEGE = "42501"
# SQLSTATE 23505, PostgreSQL's unique_violation.
UNIQUE_VIOLATION = "23505"


class WarehouseError(Exception):
    """The warehouse could not be reached or refused a statement."""


class WarehouseInUseError(WarehouseError):
    """Another process holds the DuckDB file (DuckDB allows one writer at a time)."""


class NoWarehouseError(WarehouseError):
    """A reader of what dbt built was pointed at a DuckDB path with no file."""


def duckdb_file(target: Target) -> Path | None:
    """The local file a DuckDB target opens; None for another engine, an in-memory
    database (`:memory:`, `:memory:name`) or a MotherDuck one (`md:`)."""
    if target.type != "duckdb":
        return None
    path = str(target.duckdb_path)
    return None if path.startswith(NOT_A_FILE) else Path(path)


def require_built(target: Target) -> None:
    """Refuse a DuckDB path with no file, for commands that read what dbt built: opening
    it would create an empty warehouse at a mistyped path and report "not built yet"."""
    file = duckdb_file(target)
    if file is not None and not file.exists():
        raise NoWarehouseError(
            f"no warehouse at {target.duckdb_path}: load the data and run `dbt build` "
            "first (or set AUDIENCES_DUCKDB_PATH to the warehouse)"
        )


class Warehouse:
    """A connection to the target's database, in autocommit mode unless in transaction()."""

    def __init__(self, target: Target):
        self.target = target
        self.dialect = target.type
        self._in_transaction = False
        # Whether opening it made a new DuckDB file: a command that writes can say so, as
        # a relative path read from another working directory names a new, empty file.
        self.created = False
        if self.dialect == "duckdb":
            import duckdb

            file = duckdb_file(target)
            self.created = file is not None and not file.exists()
            try:
                self._conn = duckdb.connect(
                    target.duckdb_path, config=target.duckdb_settings
                )
            except duckdb.Error as exc:
                # A held file lock becomes a type callers can catch. DuckDB names it
                # only in its message ("Could not set lock on file ...: Conflicting lock
                # is held in ..."); a bare "lock" would also match a setting's name,
                # such as block_allocator_memory.
                if "could not set lock on file" in str(exc).lower():
                    raise WarehouseInUseError(
                        f"cannot open {target.describe()}: {exc}. Another process (dbt, "
                        "a loader or the sync) may hold it; DuckDB allows one writer at "
                        "a time."
                    ) from None
                # Anything else is the file or a setting (profiles.yml's config_options,
                # the AUDIENCES_DUCKDB_* variables), not another process.
                raise WarehouseError(
                    f"cannot open {target.describe()}: {exc}"
                ) from None
        elif self.dialect == "postgres":
            import psycopg2

            opts = target.options
            try:
                self._conn = psycopg2.connect(
                    host=opts.get("host"),
                    port=opts.get("port"),
                    user=opts.get("user"),
                    password=opts.get("password") or None,
                    dbname=opts.get("dbname"),
                    connect_timeout=10,
                    application_name="engagement-audiences",
                )
            except psycopg2.Error as exc:
                # psycopg2's message names host and user, never the password.
                raise WarehouseError(
                    f"cannot connect to {target.describe()}: {str(exc).strip()}"
                ) from None
            self._conn.autocommit = True
        else:
            raise WarehouseError(
                f"target {target.name!r} is a {target.type} warehouse; the loaders and "
                "the sync support duckdb and postgres"
            )

    # ------------------------------------------------------------------ basics
    @property
    def raw_connection(self) -> Any:
        return self._conn

    def _sql(self, sql: str) -> str:
        if self.dialect == "duckdb":
            return sql.replace("%s", "?").replace("%%", "%")
        return sql

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.dialect == "duckdb":
            # A DuckDB cursor is a separate connection with its own transaction, so
            # statements inside transaction() must run on the connection itself.
            self._conn.execute(self._sql(sql), params or ())
            return
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), params or ())
        finally:
            cur.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "duckdb":
            self._conn.executemany(self._sql(sql), rows)
            return
        from psycopg2.extras import execute_batch

        cur = self._conn.cursor()
        try:
            execute_batch(cur, sql, rows, page_size=1000)
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        if self.dialect == "duckdb":
            return list(self._conn.execute(self._sql(sql), params or ()).fetchall())
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), params or ())
            return list(cur.fetchall())
        finally:
            cur.close()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All or nothing: a crash or exception inside leaves the warehouse untouched."""
        if self._in_transaction:
            yield self
            return
        self.execute("begin")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            with contextlib.suppress(Exception):
                self.execute("rollback")
            raise
        self._in_transaction = False
        self.execute("commit")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------- introspection
    def table_exists(self, schema: str, table: str) -> bool:
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables "
                "where table_schema = %s and table_name = %s",
                (schema, table),
            )
        )

    def ensure_schema(self, schema: str) -> None:
        try:
            self.execute(f"create schema if not exists {schema}")
        except Exception as exc:
            code = getattr(exc, "pgcode", None)
            # Two sessions creating the same schema at once (two first syncs, two
            # loaders): PostgreSQL's IF NOT EXISTS looks before it inserts, so the second
            # fails on pg_namespace's unique index once the first commits. The schema
            # exists, as asked. Inside a transaction the error has aborted it: raise.
            if code == UNIQUE_VIOLATION and not self._in_transaction:
                return
            # PostgreSQL checks CREATE on the database even when the schema exists.
            if code != INSUFFICIENT_PRIVILEGE:
                raise
            opts = self.target.options
            raise WarehouseError(
                f"role {opts.get('user')} may not create schema {schema}: it needs "
                f"CREATE on database {opts.get('dbname')} (grant connect, create, "
                f"temporary on database {opts.get('dbname')} to {opts.get('user')})"
            ) from None

    # ----------------------------------------------------------- type names
    @property
    def json_type(self) -> str:
        return "jsonb" if self.dialect == "postgres" else "json"

    @property
    def timestamp_type(self) -> str:
        """Timestamps are stored as UTC wall time without zone on every engine."""
        return "timestamp"


def new_file_note(wh: Warehouse) -> str | None:
    """What a command that writes says when it made a new DuckDB file: its full path.
    A relative AUDIENCES_DUCKDB_PATH (or the default warehouse.duckdb) is read from the
    working directory, so a command started elsewhere would otherwise fill a new, empty
    warehouse there in silence."""
    if not wh.created:
        return None
    return (
        f"note: no warehouse was at {duckdb_file(wh.target)}: a new one "
        "is created there (AUDIENCES_DUCKDB_PATH, or the default warehouse.duckdb, is "
        "read relative to the working directory)"
    )


def connect(target_name: str | None = None, *, built: bool = False) -> Warehouse:
    """Open the warehouse of a profiles.yml target (default: the profile's own target);
    `built`: only one that exists (require_built)."""
    target = load_target(target_name)
    if built:
        require_built(target)
    return Warehouse(target)
