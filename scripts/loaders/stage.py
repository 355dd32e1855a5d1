"""Per-file staging in DuckDB: lines in, classified records and rejects out.

Every loader ends a file's first phase with the same temp tables in a DuckDB connection
(the target itself on `dev`, an in-memory one when the target is PostgreSQL):

- `_ld_class(line_no, reason, detail, <the loader's columns>, payload)`: one row per
  record read; `reason is null` marks a valid record;
- `_ld_pyrejects(line_no, reason, detail, raw)`: records Python rejected before DuckDB
  saw them (invalid UTF-8, oversized, unreadable gzip).

`bulk.apply` then moves them into the warehouse. Validation for the line-based loaders
is SQL (`classify_sql` in each loader module): DuckDB parses and checks a whole file in
bulk, which is what keeps `load webhooks` within a small factor of a bare `read_json`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from scripts.loaders.files import LINE_DELIMITER, Reject

LINES = "_ld_lines"
CLASSIFIED = "_ld_class"
PY_REJECTS = "_ld_pyrejects"
# PostgreSQL stores U+0000 neither in text nor in jsonb; every loader, on every engine,
# rejects such a record with this one reason, so both engines keep the same rows.
NUL_REASON = "unsupported_nul_character"
NUL_DETAIL = "\\u0000 (NUL) cannot be stored by PostgreSQL"
# A NUL in JSON text is the escape \u0000 whose backslash is not itself escaped: an even
# run of backslashes (none, or escaped ones) before it. "\\u0000" is an escaped
# backslash and then the letters u0000, which every engine stores. RE2 (DuckDB) and
# Python's re read the pattern alike.
NUL_ESCAPE_PATTERN = r"(?:^|[^\\])(?:\\\\)*\\u0000"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a type both engines spell the same: varchar, bigint, timestamp
    # Set for a value copied out of the payload as text (a JSONPath such as
    # '$.data.delivery_id'): parsed when the record lands, so dbt's staging models read a
    # column instead of parsing every payload again (bulk.add_payload_columns).
    payload_path: str | None = None


def payload_columns(paths: dict[str, str]) -> tuple[Column, ...]:
    """Text columns copied from the payload, one per name -> JSONPath."""
    return tuple(Column(name, "varchar", path) for name, path in paths.items())


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_lines(duck, path: Path, gzipped: bool, max_line_bytes: int) -> None:
    """Load a file's lines as rows; rowid + 1 is the line number, blank lines are NULL.

    The CSV reader (no quoting, a delimiter JSON cannot contain) is DuckDB's fastest way
    to get raw lines with their order kept; `preserve_insertion_order` (DuckDB's default)
    makes rowid follow the file.
    """
    compression = "gzip" if gzipped else "none"
    duck.execute(
        f"create or replace temp table {LINES} as select line from read_csv("
        f"{sql_literal(str(path))}, columns = {{'line': 'VARCHAR'}}, "
        f"delim = {sql_literal(LINE_DELIMITER)}, quote = '', escape = '', "
        "header = false, auto_detect = false, strict_mode = true, "
        f"new_line = '\\n', max_line_size = {max_line_bytes}, "
        f"compression = '{compression}')"
    )


class LinesLeftOutError(Exception):
    """DuckDB's line reader returned fewer lines than the file holds, without an error.

    It does so for a last line longer than its buffer (about 32 MB): the line is neither
    read nor refused, and the file would count as loaded, its record lost without a
    reject. A file read directly is then read again from Python's staged copy, which
    rejects an oversized record (record_too_large) on its own line."""


def check_lines_read(read: int, expected: int, path: Path) -> None:
    """Raise LinesLeftOutError unless DuckDB returned every line of `path`."""
    if read != expected:
        raise LinesLeftOutError(
            f"{path}: DuckDB's line reader returned {read} of its {expected} lines"
        )


def lines_read(duck) -> int:
    return duck.execute(f"select count(*) from {LINES}").fetchone()[0]


def create_empty_lines(duck) -> None:
    duck.execute(f"create or replace temp table {LINES} (line varchar)")


def store_python_rejects(duck, rejects: Sequence[Reject], workdir: Path) -> None:
    duck.execute(
        f"create or replace temp table {PY_REJECTS} "
        "(line_no bigint, reason varchar, detail varchar, raw varchar)"
    )
    if not rejects:
        return
    path = workdir / f"pyrejects-{os.getpid()}.ndjson"
    with path.open("wb") as out:
        for reject in rejects:
            out.write(
                orjson.dumps(
                    {
                        "line_no": reject.line,
                        "reason": reject.reason,
                        "detail": reject.detail,
                        "raw": reject.raw,
                    }
                )
                + b"\n"
            )
    duck.execute(
        f"insert into {PY_REJECTS} select line_no, reason, detail, raw from read_json("
        f"{sql_literal(str(path))}, format = 'newline_delimited', columns = {{"
        "'line_no': 'BIGINT', 'reason': 'VARCHAR', 'detail': 'VARCHAR', "
        "'raw': 'VARCHAR'})"
    )
    path.unlink()


def drop_stage(duck) -> None:
    for table in (
        LINES,
        CLASSIFIED,
        PY_REJECTS,
        "_ld_losers",
        "_ld_conflicts",
        "_ld_existing",
        "_ld_known",
        "_ld_loaded",
    ):
        with contextlib.suppress(Exception):
            duck.execute(f"drop table if exists {table}")


def nonblank_lines_sql(carry: Sequence[str] = ()) -> str:
    """The records of `_ld_lines`: numbered, without blank (or Python-blanked) lines,
    with the `carry` columns of `_ld_lines` alongside."""
    carried = "".join(f"{name}, " for name in carry)
    return (
        f"select rowid + 1 as line_no, {carried}line from {LINES} "
        # trim() is slow on every line; CASE runs it only on lines starting blank.
        "where line is not null and case when left(line, 1) in (' ', chr(9)) "
        "then trim(line, ' ' || chr(9)) <> '' else true end"
    )


@dataclass(frozen=True)
class Check:
    """One rejection rule: rows matching `when` (SQL) get `reason` and `detail` (SQL)."""

    when: str
    reason: str
    detail: str


def classify_sql(
    paths: dict[str, str],
    derived: dict[str, str],
    checks: Sequence[Check],
    columns: dict[str, str],
    max_record_bytes: int,
    type_only: frozenset[str] = frozenset(),
    carry: Sequence[str] = (),
) -> str:
    """Build the statement that fills `_ld_class` from `_ld_lines`.

    Each line is parsed by DuckDB a few times (valid? types? values?), all vectorised.
    In `derived`, `checks` and `columns`, `t_<name>` is the JSON type at `paths[name]`
    (SQL NULL when absent, 'NULL' for JSON null) and `v_<name>` its value as text.
    Checks apply in order after the universal ones (size, JSON, object, NUL). Names in
    `type_only` get no `v_` (rendering an object as text costs a third of the parse).
    `carry` names columns of `_ld_lines` passed through to `_ld_class` as they are (a
    batch's `filename`, so that its rows need no second copy to learn their file).
    The payload columns are not taken here but at insert (bulk.with_payload_columns).
    """
    names = list(paths)
    valued = [name for name in names if name not in type_only]
    path_list = ", ".join(sql_literal(paths[name]) for name in names)
    value_list = ", ".join(sql_literal(paths[name]) for name in valued)
    derived_sql = "".join(f", {expr} as {name}" for name, expr in derived.items())
    universal = [
        Check(
            "too_large",
            "record_too_large",
            f"'record is ' || strlen(line) || ' bytes; the limit is {max_record_bytes}'",
        ),
        Check("not ok", "invalid_json", "'not valid JSON (truncated or malformed)'"),
        Check(
            "t_root <> 'OBJECT'",
            "not_an_object",
            "'a record must be a JSON object, got ' || lower(t_root)",
        ),
        Check(
            # contains() first: the regular expression runs on the rare lines with it.
            "contains(line, '\\u0000') and regexp_matches(line, "
            f"{sql_literal(NUL_ESCAPE_PATTERN)})",
            NUL_REASON,
            sql_literal(NUL_DETAIL),
        ),
    ]
    reason = " ".join(
        f"when {c.when} then {sql_literal(c.reason)}" for c in (*universal, *checks)
    )
    # Run the checks again only for rejected rows: a CASE evaluates a branch just for
    # the rows reaching it, so valid records (nearly all) skip this second pass.
    detail = "when reason is null then null " + " ".join(
        f"when {c.when} then {c.detail}" for c in (*universal, *checks)
    )
    column_sql = ", ".join(f"{expr} as {name}" for name, expr in columns.items())
    carried = "".join(f"{name}, " for name in carry)
    return f"""
create or replace temp table {CLASSIFIED} as
with src as ({nonblank_lines_sql(carry)}),
checked as (
    select
        line_no,
        {carried}line,
        strlen(line) > {max_record_bytes} as too_large,
        -- try() turns a parse error into NULL: one parse both validates and types.
        case when strlen(line) <= {max_record_bytes}
            then try(json_type(line, ['$', {path_list}])) end as ty
    from src
),
parsed as (
    select
        *,
        ty is not null as ok,
        case when ty is not null
            then json_extract_string(line, [{value_list}]) end as va
    from checked
),
named as (
    select line_no, {carried}line, too_large, ok, ty[1] as t_root,
        {", ".join(f"ty[{i + 2}] as t_{n}" for i, n in enumerate(names))},
        {", ".join(f"va[{i + 1}] as v_{n}" for i, n in enumerate(valued))}
    from parsed
),
derived as (select *{derived_sql} from named),
reasoned as (select *, case {reason} end as reason from derived)
select
    line_no,
    {carried}reason,
    case {detail} end as detail,
    {column_sql},
    line as payload
from reasoned
"""
