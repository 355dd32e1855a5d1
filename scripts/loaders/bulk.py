"""Moving one staged file into the warehouse in bulk: dedupe, insert, rejects.

Runs inside the file's transaction. DuckDB targets insert straight from the staging temp
tables (`insert … select … where not exists`, an anti join, no row-by-row work).
PostgreSQL targets receive the staged rows through `COPY … FROM STDIN` into a temp table,
then `insert … on conflict`. The raw tables keep the key unique:

- event tables (`version is None`): the first body seen for a key wins; later copies are
  duplicates, and a copy with a different body is also noted as a conflict;
- versioned tables (orders): the row with the latest `version` column wins; an older or
  equal version does not overwrite, and columns the newer record leaves null keep their
  known values (a refund event without `ordered_at` must not erase it). Within a file,
  as across files: of equal versions the first seen wins (the first line, the first
  file loaded), and what the kept copy leaves null takes the value of the newest older
  copy in the file that has one and is newer than the row already loaded.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from scripts.loaders.disk_full import first_line, is_disk_full
from scripts.loaders.ledger import CONFLICT_REASON, Counts
from scripts.loaders.stage import CLASSIFIED, PY_REJECTS, Column, sql_literal
from scripts.warehouse import INSUFFICIENT_PRIVILEGE, Warehouse, WarehouseError

MAX_RAW_SQL = 65536


@dataclass(frozen=True)
class TableSpec:
    loader: str
    schema: str
    table: str
    key: str
    columns: tuple[Column, ...]  # typed columns, key included, payload and stamps not
    version: str | None = None
    keep_known: tuple[
        str, ...
    ] = ()  # versioned tables: columns a null never overwrites

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def ensure_table(
    wh: Warehouse, spec: TableSpec, say: Callable[[str], None] = lambda _: None
) -> None:
    wh.ensure_schema(spec.schema)
    wh.execute(_create_table_sql(wh, spec, spec.table, if_not_exists=True))
    add_payload_columns(wh, spec, say)


def _create_table_sql(
    wh: Warehouse, spec: TableSpec, table: str, if_not_exists: bool
) -> str:
    columns = ",\n    ".join(f"{c.name} {c.type}" for c in spec.columns)
    # DuckDB's anti join beats maintaining an ART index on millions of event keys; the
    # upsert of versioned tables needs the constraint, and PostgreSQL's ON CONFLICT too.
    key = (
        f",\n    primary key ({spec.key})"
        if wh.dialect == "postgres" or spec.version
        else ""
    )
    # DuckDB's automatic choice for long text (dictionary/FSST) spends more time analysing
    # and compressing the payload than parsing it; zstd is faster and smaller for JSON.
    payload = wh.json_type + (
        " using compression zstd" if wh.dialect == "duckdb" else ""
    )
    exists = "if not exists " if if_not_exists else ""
    return (
        f"create table {exists}{spec.schema}.{table} (\n    {columns},\n"
        f"    payload {payload},\n    _source_file varchar,\n"
        f"    _source_line bigint,\n    _loaded_at timestamp{key}\n)"
    )


STAMP_COLUMNS = ("payload", "_source_file", "_source_line", "_loaded_at")


def add_payload_columns(
    wh: Warehouse, spec: TableSpec, say: Callable[[str], None] = lambda _: None
) -> None:
    """Give a raw table an earlier version wrote the payload columns it lacks.

    The columns are filled from the rows' own payloads, so the table reads as if every
    row had been loaded by this version; all in one transaction, so a kill leaves the
    table as it was and the next load starts over. On DuckDB the table is rewritten
    under a new name and swapped in (an UPDATE of every row holds all the new values in
    memory: it ran out of a 3 GB limit at 12.5 M events, where the rewrite takes about
    40 s); PostgreSQL adds the columns and updates them in place.
    """
    columns_sql = (
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position"
    )
    present = [row[0] for row in wh.query(columns_sql, (spec.schema, spec.table))]
    missing = [c for c in spec.columns if c.name not in present]
    if not missing:
        return
    expected = {*spec.names, *STAMP_COLUMNS}
    unknown = [c.name for c in missing if c.payload_path is None] + [
        name for name in present if name not in expected
    ]
    if unknown:
        raise WarehouseError(
            f"{spec.qualified} does not have the columns this version expects "
            f"({', '.join(unknown)} differ) and only payload columns can be added; "
            "was it created by another tool?"
        )
    rows = wh.scalar(f"select count(*) from {spec.qualified}")
    say(
        f"{spec.qualified}: adding the payload columns this version reads "
        f"({len(missing)}) and filling them from its {rows:,} rows; once, and a large "
        "table takes a while (40 s at 12.5 million rows on 2 cores)"
    )
    try:
        with wh.transaction():
            if wh.dialect == "duckdb":
                # One writer per DuckDB file: no other process can be adding them too.
                _rewrite_with_payload_columns(wh, spec, present, missing)
            else:
                # A second loader doing the same waits here, then finds them added.
                wh.execute(f"lock table {spec.qualified} in access exclusive mode")
                now = {
                    row[0] for row in wh.query(columns_sql, (spec.schema, spec.table))
                }
                missing = [c for c in missing if c.name not in now]
                for column in missing:
                    wh.execute(
                        f"alter table {spec.qualified} "
                        f"add column {column.name} {column.type}"
                    )
                sets = ", ".join(
                    f"{c.name} = payload #>> {sql_literal(_postgres_path(c))}"
                    for c in missing
                )
                if sets:
                    wh.execute(f"update {spec.qualified} set {sets}")
    except Exception as exc:
        if getattr(exc, "pgcode", None) == INSUFFICIENT_PRIVILEGE:
            raise  # ensure_rights turns it into one clear line
        if is_disk_full(exc):
            raise  # not the table's fault: the load stops as on any full disk
        raise WarehouseError(
            f"could not add the payload columns ({', '.join(c.name for c in missing)}) "
            f"to {spec.qualified}, which an earlier version created; nothing was "
            f"changed: {first_line(exc)}"
        ) from None


def _postgres_path(column: Column) -> str:
    """'$.data.identifiers.id' -> '{data,identifiers,id}' (for jsonb's #>>)."""
    path = column.payload_path or ""
    if not path.startswith("$."):
        raise ValueError(
            f"{column.name}: payload path must start with '$.', got {path!r}"
        )
    return "{" + ",".join(path[2:].split(".")) + "}"


def _rewrite_with_payload_columns(
    wh: Warehouse, spec: TableSpec, present: list[str], missing: list[Column]
) -> None:
    rewritten = f"{spec.table}__with_payload_columns"
    wh.execute(f"drop table if exists {spec.schema}.{rewritten}")
    wh.execute(_create_table_sql(wh, spec, rewritten, if_not_exists=False))
    # One parse per row for all the values (the list form of json_extract_string).
    paths = ", ".join(sql_literal(str(c.payload_path)) for c in missing)
    values = ", ".join(f"parsed[{i}]" for i in range(1, len(missing) + 1))
    names = ", ".join([*present, *(c.name for c in missing)])
    wh.execute(
        f"insert into {spec.schema}.{rewritten} ({names}) "
        f"select {', '.join(present)}, {values} from ("
        f"select *, json_extract_string(payload, [{paths}]) as parsed "
        f"from {spec.qualified})"
    )
    wh.execute(f"drop table {spec.qualified}")
    wh.execute(f"alter table {spec.schema}.{rewritten} rename to {spec.table}")


@dataclass
class FileContext:
    source_file: str
    sha256: str
    loaded_at: datetime
    workdir: Path


def count_staged(duck) -> tuple[Counts, int]:
    """Counts known before touching the warehouse, and how many records are valid."""
    read, rejected, valid = duck.execute(
        f"select count(*), count(reason), count(*) - count(reason) from {CLASSIFIED}"
    ).fetchone()
    python_rejected = duck.execute(f"select count(*) from {PY_REJECTS}").fetchone()[0]
    counts = Counts(read=read + python_rejected, rejected=rejected + python_rejected)
    return counts, valid


def _pick_kept(duck, spec: TableSpec) -> str:
    """Choose one record per key inside the file; returns the relation to load from.

    Conflicting in-file copies go to `_ld_conflicts`. Only the copies that lose are
    written down (`_ld_losers`, found by a window over the key and line number alone):
    ranking whole records would carry every payload through the window, and a file
    repeats few keys.
    """
    valid = f"(select * from {CLASSIFIED} where reason is null)"
    if spec.version is None:
        distinct, total = duck.execute(
            f"select count(distinct {spec.key}), count(*) from {CLASSIFIED} "
            "where reason is null"
        ).fetchone()
        if distinct == total:
            return valid
        order = "line_no"
        ranked = f"{spec.key}, line_no"
        same_version = "true"
    else:
        # Of equal versions the first line wins: a later file's equal version does not
        # overwrite either (_upsert_clause).
        order = f"{spec.version} desc nulls last, line_no"
        ranked = f"{spec.key}, line_no, {spec.version}"
        same_version = f"v.{spec.version} = k.{spec.version}"
    duck.execute(
        f"create or replace temp table _ld_losers as select line_no, {spec.key} from ("
        f"select {spec.key}, line_no, row_number() over (partition by {spec.key} "
        f"order by {order}) as copy_rank from (select {ranked} from {CLASSIFIED} "
        "where reason is null)) where copy_rank > 1"
    )
    kept = (
        f"(select * from {CLASSIFIED} where reason is null "
        "and line_no not in (select line_no from _ld_losers))"
    )
    duck.execute(
        "insert into _ld_conflicts select v.line_no, "
        f"'{spec.key} ' || v.{spec.key} || ' also on line ' || k.line_no || "
        "' of this file with a different body; the kept copy wins', v.payload, "
        "k.payload "
        # Both sides narrowed to the repeated keys before the join, so only their
        # payloads are read.
        f"from (select * from {CLASSIFIED} where line_no in "
        "(select line_no from _ld_losers)) as v "
        f"inner join (select * from {kept} where {spec.key} in "
        f"(select {spec.key} from _ld_losers)) as k on v.{spec.key} = k.{spec.key} "
        f"where {same_version} "
        "and json(v.payload)::varchar <> json(k.payload)::varchar"
    )
    return kept


def _with_known_values(wh: Warehouse, duck, spec: TableSpec, kept: str) -> str:
    """`kept`, where a column a null never overwrites takes, when the kept copy leaves it
    null, the value of the newest other copy in the file that has one and is newer than
    the row already loaded (if any): a completion and its refund in one file keep the
    order's total, as two files would, and copies older than the loaded row change
    nothing, as they would not in a file of their own. The upsert then keeps the loaded
    row's value under anything still null (_upsert_clause). Only repeated keys are read.
    """
    key, version = spec.key, spec.version
    if not duck.execute("select count(*) from _ld_losers").fetchone()[0]:
        return kept
    if wh.dialect == "duckdb":  # the staging connection is the warehouse's
        duck.execute(
            f"create or replace temp table _ld_loaded as select {key}, {version} "
            f"from {spec.qualified} where {key} in (select {key} from _ld_losers)"
        )
    else:
        repeated = duck.execute(f"select distinct {key} from _ld_losers").fetchall()
        keys = [row[0] for row in repeated]
        rows = wh.query(
            f"select {key}, {version} from {spec.qualified} where {key} = any(%s)",
            (keys,),
        )
        duck.execute(
            f"create or replace temp table _ld_loaded ({key} varchar, {version} timestamp)"
        )
        if rows:
            duck.executemany("insert into _ld_loaded values (?, ?)", rows)
    known = ", ".join(
        f"first(c.{name} order by c.{version} desc, c.line_no) "
        f"filter (where c.{name} is not null) as {name}"
        for name in spec.keep_known
    )
    duck.execute(
        f"create or replace temp table _ld_known as select c.{key}, {known} "
        f"from {CLASSIFIED} as c inner join {kept} as k on k.{key} = c.{key} "
        f"left join _ld_loaded as l on l.{key} = c.{key} "
        f"where c.reason is null and c.{key} in (select {key} from _ld_losers) "
        f"and c.{version} < k.{version} "
        f"and (l.{key} is null or c.{version} > l.{version}) group by c.{key}"
    )
    filled = ", ".join(
        f"coalesce(k.{name}, n.{name}) as {name}" for name in spec.keep_known
    )
    return (
        f"(select k.* replace ({filled}) from {kept} as k left join _ld_known as n "
        f"on n.{key} = k.{key})"
    )


# A JSON string, escapes included: what is left without them is punctuation, numbers,
# true, false and null, so a letter sequence "nan" or "inf" there is a NaN or Infinity.
_JSON_STRING = r'"(\\.|[^"\\])*"'
NOT_A_NUMBER_REASON = "invalid_number"
DUPLICATE_KEY_REASON = "duplicate_json_key"


def _reject_what_postgres_refuses(duck, spec: TableSpec) -> None:
    """What DuckDB's JSON reader takes and PostgreSQL's jsonb does not, or reads another
    way. On DuckDB these records load, as DuckDB reads them back the same way; finding
    them costs a pass over every line, a tenth of a load at a brand's size.

    - NaN and Infinity (any case): jsonb refuses them, and one such record failed the
      whole file.
    - the same key twice in an object this loader reads from (the root, and the
      objects holding the payload columns): DuckDB reads the first copy, into the typed
      columns, jsonb keeps the last, into the payload and its columns, so the row would
      disagree with itself.
    """
    # CASE keeps json() to the valid rows whatever order DuckDB evaluates the conditions
    # in: on a torn line it would fail the statement (as in batch.py).
    duck.execute(
        f"update {CLASSIFIED} set reason = {sql_literal(NOT_A_NUMBER_REASON)}, "
        "detail = 'NaN or Infinity is not a JSON number (PostgreSQL cannot store it)' "
        "where case when reason is null then regexp_matches(regexp_replace("
        f"json(payload)::varchar, {sql_literal(_JSON_STRING)}, '', 'g'), '(?i)nan|inf') "
        "else false end"
    )
    objects = sorted(
        {"$"}
        | {
            column.payload_path.rsplit(".", 1)[0]
            for column in spec.columns
            if column.payload_path and column.payload_path.count(".") > 1
        }
    )
    repeated = " or ".join(
        f"len(json_keys(payload, {sql_literal(path)})) "
        f"<> len(list_distinct(json_keys(payload, {sql_literal(path)})))"
        for path in objects
    )
    duck.execute(
        f"update {CLASSIFIED} set reason = {sql_literal(DUPLICATE_KEY_REASON)}, "
        "detail = 'an object has the same key twice: PostgreSQL would keep the last "
        "copy, the columns were read from the first' "
        f"where case when reason is null then ({repeated}) else false end"
    )


def apply(wh: Warehouse, duck, spec: TableSpec, ctx: FileContext) -> Counts:
    """Load the staged file; returns its full counts. Call inside wh.transaction()."""
    if wh.dialect == "postgres":
        _reject_what_postgres_refuses(duck, spec)
    counts, valid = count_staged(duck)
    duck.execute(
        "create or replace temp table _ld_conflicts "
        "(line_no bigint, detail varchar, raw varchar, other varchar)"
    )
    kept = _pick_kept(duck, spec) if valid else None
    if kept is not None and spec.version is not None and spec.keep_known:
        kept = _with_known_values(wh, duck, spec, kept)
    existing_conflicts = 0
    loaded = 0
    if kept is not None:
        if wh.dialect == "duckdb":
            existing_conflicts, loaded = _apply_duckdb(duck, spec, ctx, kept)
        else:
            existing_conflicts, loaded = _apply_postgres(wh, duck, spec, ctx, kept)
    counts.loaded = loaded
    counts.duplicate = valid - loaded
    drop_same_bodies(duck, "_ld_conflicts")
    in_file_conflicts = duck.execute("select count(*) from _ld_conflicts").fetchone()[0]
    counts.conflicting = existing_conflicts + in_file_conflicts
    _write_rejects(wh, duck, spec, ctx)
    return counts


def drop_same_bodies(duck, conflicts: str) -> None:
    """Take back the conflicts (rows of `conflicts`: raw, the copy's body; other, the
    body it lost to) whose bodies differ only as text: the same keys in another order,
    other spacing or number spelling, as a relay that re-encodes a resent event writes
    them. SQL compares the texts, fast, for every re-sent key; the few that differ are
    compared here as JSON values, as PostgreSQL's jsonb compares them."""
    rows = duck.execute(f"select rowid, raw, other from {conflicts}").fetchall()
    same = [row for row, raw, other in rows if _same_json_text(raw, other)]
    if same:
        duck.execute(
            f"delete from {conflicts} where rowid in "
            f"({', '.join(str(int(row)) for row in same)})"
        )


def _same_json_text(first: str | None, second: str | None) -> bool:
    try:
        return _same_json(_exact_json(first), _exact_json(second))
    except (ValueError, RecursionError):
        return False  # unreadable here (NaN, nesting): the texts differ, so they differ


def _exact_json(text: str | None) -> object:
    """Numbers exactly, as jsonb's numeric holds them (a float would make 2**70 and
    2**70 + 1 equal); NaN and Infinity refused, as jsonb refuses them."""

    def refuse(constant: str) -> object:
        raise ValueError(constant)

    return json.loads(text or "", parse_float=Decimal, parse_constant=refuse)


def _same_json(first: object, second: object) -> bool:
    """JSON equality: objects by key whatever their order, numbers by value; true is
    not 1 (Python's == would say it is)."""
    if isinstance(first, dict):
        return (
            isinstance(second, dict)
            and first.keys() == second.keys()
            and all(_same_json(first[key], second[key]) for key in first)
        )
    if isinstance(first, list):
        return (
            isinstance(second, list)
            and len(first) == len(second)
            and all(map(_same_json, first, second))
        )
    numbers = (int, Decimal)
    if isinstance(first, numbers) and not isinstance(first, bool):
        return (
            isinstance(second, numbers)
            and not isinstance(second, bool)
            and first == second
        )
    return type(first) is type(second) and first == second


def _select_columns(spec: TableSpec, alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in spec.names)


def with_payload_columns(spec: TableSpec, relation: str) -> str:
    """The staged rows of `relation` with the spec's payload columns added (DuckDB).

    Each is a value of the record's payload as text (Column.payload_path), all taken by
    one json_extract_string per row as the rows are inserted, so the table's spec is
    the one place that lists them (PostgreSQL takes the same paths from the jsonb).
    Taken in the classifying statement instead, every value was written into the
    staging table and read back: the classify is 25 % faster without them, the insert
    slower by about as much (a year of daily files: within the noise overall).
    Only valid records (`reason is null`) are parsed.
    """
    copied = [c for c in spec.columns if c.payload_path]
    if not copied:
        return relation
    paths = ", ".join(sql_literal(str(c.payload_path)) for c in copied)
    values = ", ".join(
        f"_copied[{number}] as {c.name}" for number, c in enumerate(copied, start=1)
    )
    return (
        f"(select * exclude (_copied), {values} from (select *, case when reason is "
        f"null then json_extract_string(payload, [{paths}]) end as _copied "
        f"from {relation}))"
    )


# Up to this many re-sent keys are listed as constants (see loaded_rows).
MAX_LISTED_KEYS = 5000


def loaded_rows(duck, spec: TableSpec, keys_select: str) -> str:
    """The raw table's rows for the keys `keys_select` returns, as a relation.

    Comparing a re-sent record with its loaded copy needs the loaded payload. A join on
    the key would read the payload column of the whole (growing) table; constants in an
    IN list reach the table scan as a filter, so only the matching rows' payloads are
    read. Past MAX_LISTED_KEYS (a whole file sent again) the subquery is cheaper to plan.
    """
    keys = [row[0] for row in duck.execute(keys_select).fetchall()]
    if len(keys) > MAX_LISTED_KEYS:
        return f"(select * from {spec.qualified} where {spec.key} in ({keys_select}))"
    listed = ", ".join(sql_literal(str(key)) for key in keys) or "null"
    return f"(select * from {spec.qualified} where {spec.key} in ({listed}))"


def _conflict_condition(spec: TableSpec, new: str, old: str, dialect: str) -> str:
    if dialect == "postgres":
        differs = f"{old}.payload <> {new}.payload"
    else:
        differs = f"json({old}.payload)::varchar <> json({new}.payload)::varchar"
    if spec.version:
        return f"{new}.{spec.version} = {old}.{spec.version} and {differs}"
    return differs


def _conflict_detail(spec: TableSpec, old: str) -> str:
    return (
        f"'{spec.key} ' || {old}.{spec.key} || ' already loaded from ' || "
        f"{old}._source_file || ' line ' || {old}._source_line || "
        "' with a different body; the loaded copy wins'"
    )


def _upsert_clause(spec: TableSpec, table_alias: str) -> str:
    if spec.version is None:
        return f"on conflict ({spec.key}) do nothing"
    sets = []
    for name in [*spec.names, "payload", "_source_file", "_source_line", "_loaded_at"]:
        if name == spec.key:
            continue
        if name in spec.keep_known:
            sets.append(f"{name} = coalesce(excluded.{name}, {table_alias}.{name})")
        else:
            sets.append(f"{name} = excluded.{name}")
    return (
        f"on conflict ({spec.key}) do update set {', '.join(sets)} "
        f"where excluded.{spec.version} > {table_alias}.{spec.version}"
    )


def _apply_duckdb(
    duck, spec: TableSpec, ctx: FileContext, kept: str
) -> tuple[int, int]:
    # Keys already loaded, found by reading only the raw table's key column: a join that
    # also projected its payload would read the whole (growing) table for every file.
    duck.execute(
        f"create or replace temp table _ld_existing as select v.line_no "
        f"from {kept} as v semi join {spec.qualified} as t on t.{spec.key} = v.{spec.key}"
    )
    if duck.execute("select count(*) from _ld_existing").fetchone()[0]:
        # Re-sent keys are rare; only then are the loaded copies' bodies compared.
        loaded = loaded_rows(
            duck, spec, f"select v.{spec.key} from {kept} as v "
            "where v.line_no in (select line_no from _ld_existing)",
        )  # fmt: skip
        duck.execute(
            f"insert into _ld_conflicts select v.line_no, {_conflict_detail(spec, 't')}, "
            f"v.payload, t.payload from {kept} as v inner join {loaded} as t "
            f"on t.{spec.key} = v.{spec.key} "
            "where v.line_no in (select line_no from _ld_existing) "
            f"and {_conflict_condition(spec, 'v', 't', 'duckdb')}"
        )
    existing = 0  # counted with the in-file ones from _ld_conflicts
    columns = ", ".join(spec.names)
    target = (
        f"{spec.qualified} ({columns}, payload, _source_file, _source_line, _loaded_at)"
    )
    select = (
        f"select {_select_columns(spec, 'v')}, v.payload::json, "
        f"{sql_literal(ctx.source_file)}, v.line_no, "
        f"{sql_literal(ctx.loaded_at.isoformat(sep=' '))}::timestamp "
        f"from {with_payload_columns(spec, kept)} as v"
    )
    if spec.version is None:
        statement = (
            f"insert into {target} {select} where v.line_no not in "
            "(select line_no from _ld_existing)"
        )
    else:
        statement = f"insert into {target} {select} {_upsert_clause(spec, spec.table)}"
    loaded = duck.execute(statement).fetchone()[0]
    duck.execute("drop table _ld_existing")
    return existing, int(loaded)


def _apply_postgres(
    wh: Warehouse, duck, spec: TableSpec, ctx: FileContext, kept: str
) -> tuple[int, int]:
    # The payload columns are taken from the jsonb on the server (#>>), as the upgrade of
    # an older table does: the same text for a row loaded now and a row loaded before.
    typed = [c for c in spec.columns if c.payload_path is None]
    column_defs = ", ".join(f"{c.name} {c.type}" for c in typed)
    typed_names = ", ".join(c.name for c in typed)
    columns = ", ".join(spec.names)
    values = ", ".join(
        f"s.payload #>> {sql_literal(_postgres_path(c))}"
        if c.payload_path
        else f"s.{c.name}"
        for c in spec.columns
    )
    conn = wh.raw_connection
    with conn.cursor() as cur:
        cur.execute(
            f"create temp table _ld_stage (line_no bigint, {column_defs}, payload jsonb) "
            "on commit drop"
        )
        # json() re-serialises DuckDB's lenient JSON (e.g. trailing commas) strictly.
        _copy_from_duck(
            duck,
            cur,
            f"select line_no, {typed_names}, json(payload) from {kept}",
            f"_ld_stage (line_no, {typed_names}, payload)",
            ctx.workdir,
        )
        cur.execute(
            "insert into raw_loader.rejects (loader, source_file, source_line, reason, "
            "raw_text, rejected_at, detail, file_sha256) "
            f"select %s, %s, s.line_no, %s, left(s.payload::text, {MAX_RAW_SQL}), %s, "
            f"{_conflict_detail(spec, 't')}, %s from _ld_stage as s inner join "
            f"{spec.qualified} as t on t.{spec.key} = s.{spec.key} "
            f"where {_conflict_condition(spec, 's', 't', 'postgres')}",
            (
                spec.loader,
                ctx.source_file,
                CONFLICT_REASON,
                ctx.loaded_at,
                ctx.sha256,
            ),
        )
        existing = cur.rowcount
        cur.execute(
            f"insert into {spec.qualified} as t ({columns}, payload, _source_file, "
            f"_source_line, _loaded_at) select {values}, s.payload, "
            f"%s, s.line_no, %s from _ld_stage as s {_upsert_clause(spec, 't')}",
            (ctx.source_file, ctx.loaded_at),
        )
        loaded = cur.rowcount
    return existing, loaded


def _rejects_select(spec: TableSpec, ctx: FileContext) -> str:
    conflicts = (
        f" union all select line_no, '{CONFLICT_REASON}' as reason, detail, raw "
        "from _ld_conflicts"
    )
    return (
        f"select {sql_literal(spec.loader)}, {sql_literal(ctx.source_file)}, line_no, "
        f"reason, replace(left(raw, {MAX_RAW_SQL}), chr(0), '\\0'), "
        f"{sql_literal(ctx.loaded_at.isoformat(sep=' '))}::timestamp, detail, "
        f"{sql_literal(ctx.sha256)} from ("
        f"select line_no, reason, detail, payload as raw from {CLASSIFIED} "
        "where reason is not null "
        f"union all select line_no, reason, detail, raw from {PY_REJECTS}{conflicts})"
    )


REJECT_COLUMNS = (
    "loader, source_file, source_line, reason, raw_text, rejected_at, detail, "
    "file_sha256"
)


def _write_rejects(wh: Warehouse, duck, spec: TableSpec, ctx: FileContext) -> None:
    select = _rejects_select(spec, ctx)
    if wh.dialect == "duckdb":
        duck.execute(f"insert into raw_loader.rejects ({REJECT_COLUMNS}) {select}")
        return
    with wh.raw_connection.cursor() as cur:
        _copy_from_duck(
            duck, cur, select, f"raw_loader.rejects ({REJECT_COLUMNS})", ctx.workdir
        )


def _copy_from_duck(duck, cur, select: str, target: str, workdir: Path) -> None:
    """DuckDB writes the rows as CSV, PostgreSQL reads them with COPY FROM STDIN."""
    with tempfile.NamedTemporaryFile(
        dir=workdir, suffix=".csv", delete=False
    ) as handle:
        path = Path(handle.name)
    try:
        duck.execute(
            f"copy ({select}) to {sql_literal(str(path))} (format csv, header false)"
        )
        with path.open("rb") as data:
            cur.copy_expert(f"copy {target} from stdin with (format csv)", data)
    finally:
        path.unlink(missing_ok=True)
