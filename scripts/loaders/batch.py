"""Many small files in one transaction, still one ledger row (and exact counts) per file.

A receiver rotates its landing file every minute: 1,440 files a day of a few dozen
records each. Loaded one by one, each file pays a dozen statements and a commit, which
dwarfs the work on its rows (150x a bare `read_json` of the same files). Consecutive
small plain-NDJSON files are therefore read by ONE `read_csv` over the list, classified
by ONE statement and applied in ONE transaction that also writes every file's
`loaded_files` row. A kill at any moment leaves each file of the batch either loaded
with its ledger row or absent, and the next run loads exactly the absent ones.

The outcome equals loading the files one by one in order: the first copy of a key (by
file, then line) wins; a later copy with a different body is noted as a conflict naming
the copy it differs from, the one a load of its file alone would compare it with (its
file's first copy, or the row loaded before it: from the table or an earlier file of
the batch); counts, rejects and line numbers are per file.
Only DuckDB targets and event tables (no version column) are batched; runner.py sends
every other file through the per-file path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scripts.loaders.bulk import (
    MAX_RAW_SQL,
    REJECT_COLUMNS,
    TableSpec,
    _conflict_condition,
    _conflict_detail,
    drop_same_bodies,
    loaded_rows,
    with_payload_columns,
)
from scripts.loaders.files import LINE_DELIMITER, UTF8_CHECK_BYTES, Reject, SourceFile
from scripts.loaders.ledger import CONFLICT_REASON, Counts
from scripts.loaders.stage import (
    CLASSIFIED,
    LINES,
    PY_REJECTS,
    check_lines_read,
    sql_literal,
    store_python_rejects,
)

# Content (decompressed) bytes up to which a file joins a batch, and a batch's total.
# Bounded by content, not stored size, so a batch of .gz files holds no more in memory
# than one of plain files. Past MAX_FILE_BYTES a file loads alone, bounded by itself.
# Why batches this large: a transaction's cost grows with the table it writes to. Loading
# a year of daily files (722 files, 5.3 GB, 12.5 M events) into one warehouse, 220
# transactions (files up to 4 MB batched, 128 MB a batch) spent 59 s of 200 s in commit;
# 23 transactions (64 MB, 256 MB) took 99 s in all, 0.5 s of it in commit, for 10 % more
# peak memory (1.2 GB). Within the profile's memory_limit (3GB by default), 512 MB
# batches took 55-58 s against 58-60 s for 256 MB, at the same peak RSS (2.6-2.9 GB);
# 1 GB batches were no faster (53-62 s) and held more (3.2 GB). Under a 1GB limit, 512 MB
# batches load, spilling to temp_directory, in about the time of 256 MB ones (67 s against
# 64 s, one run each); DuckDB spills rather than fails down to a limit of about 64MB
# (60 MB of files in one batch under 128MB loaded whole). Below that its own fixed needs
# dominate: 20 MB of files under 32MB sometimes failed as a whole and loaded in halves,
# and so did 5 MB batches (a cap at a share of the limit, tried and not kept).
# benchmarks/results.md has the latest run.
MAX_FILE_BYTES = UTF8_CHECK_BYTES  # checked for UTF-8 while hashed
MAX_BATCH_BYTES = 512 << 20
# Files per transaction; overridable to make a batch boundary observable (tests, tuning).
MAX_BATCH_FILES = max(2, int(os.environ.get("AUDIENCES_LOADER_BATCH_FILES", "500")))

FILES = "_ld_files"
BATCH_CLASS = "_ld_bclass"
BATCH_KEEP = "_ld_bkeep"
BATCH_CONFLICTS = "_ld_bconflicts"
BATCH_EXISTING = "_ld_bexisting"
BATCH_COUNTS = "_ld_bcounts"
BATCH_PY_REJECTS = "_ld_bpyrejects"
BATCH_LOSERS = "_ld_blosers"
BATCH_REPEATED = "_ld_brepeated"
# Views before the tables they read: drop() goes in this order.
BATCH_TABLES = (
    BATCH_KEEP, BATCH_CLASS, FILES, BATCH_CONFLICTS, BATCH_EXISTING, BATCH_PY_REJECTS,
    BATCH_LOSERS, BATCH_REPEATED,
)  # fmt: skip


@dataclass(frozen=True)
class FileResult:
    source: SourceFile
    counts: Counts


def fits(source: SourceFile) -> bool:
    """Whether a file may join a batch: NDJSON with some content, up to MAX_FILE_BYTES
    of it. DuckDB reads it as it is, or, when it needs Python's staging first
    (`read_directly`), its staged copy; so a file with one bad record does not split a
    receiver's folder in two."""
    from scripts.loaders.files import detect_shape

    return (
        source.content_bytes <= MAX_FILE_BYTES
        and not source.unreadable
        and not source.is_empty
        and detect_shape(source) == "ndjson"
    )


def read_directly(source: SourceFile) -> bool:
    """Whether DuckDB may read the file itself: clean UTF-8 without CR, the delimiter
    byte or a BOM, and, if gzipped, named `.gz` (DuckDB picks the decompression by the
    lower-case extension). Else its lines are staged by Python (files.stage_lines), with
    a reject for each record DuckDB would refuse the whole file for."""
    if source.gzipped and not source.path.name.endswith(".gz"):
        return False
    return source.fast_path_ok


def stage(
    duck,
    sources: Sequence[SourceFile],
    reads: Sequence[Path],
    lines_held: Sequence[int],
    max_line_bytes: int,
    classify: Callable[[Sequence[str]], None],
    workdir: Path,
    python_rejects: Sequence[tuple[int, Reject]] = (),
) -> None:
    """Read all files' lines into `_ld_lines` (global numbering), then classify once.

    `reads[i]` is what DuckDB reads for `sources[i]`: the file itself or its staged copy,
    in which line N is still the file's record N (blank where Python rejected it), and
    `lines_held[i]` the lines it holds.
    `python_rejects` are those rejects, as (index in `sources`, reject with the file's
    own line number).

    `preserve_insertion_order` (DuckDB's default) keeps rowid in list order, so the
    files' lines are consecutive and each file's first line number is known from the
    line counts. Raises duckdb.Error when DuckDB refuses any file, and
    stage.LinesLeftOutError when it returns fewer lines of one than it holds (the caller
    then loads them one by one, where the odd file is found and handled).
    """
    files = ", ".join(sql_literal(str(path)) for path in reads)
    duck.execute(
        f"create or replace temp table {LINES} as select filename, line from read_csv("
        f"[{files}], columns = {{'line': 'VARCHAR'}}, "
        f"delim = {sql_literal(LINE_DELIMITER)}, quote = '', escape = '', "
        "header = false, auto_detect = false, strict_mode = true, "
        f"new_line = '\\n', max_line_size = {max_line_bytes}, "
        "compression = 'auto', filename = true)"
    )
    counts = dict(
        duck.execute(f"select filename, count(*) from {LINES} group by 1").fetchall()
    )
    # Each line finds its file by this name (below); a name DuckDB reports other than
    # as given would drop its lines from every count, so it stops the load instead.
    unknown = set(counts) - {str(path) for path in reads}
    if unknown:
        raise RuntimeError(
            f"DuckDB read lines from {sorted(unknown)[:3]}, which is not a file of this "
            "batch; nothing of the batch was loaded"
        )
    rows = []
    first = 1
    for number, (source, read) in enumerate(zip(sources, reads, strict=True)):
        lines = counts.get(str(read), 0)
        check_lines_read(lines, lines_held[number], source.path)
        rows.append(
            f"({number}, {sql_literal(str(source.path))}, {sql_literal(str(read))}, "
            f"{sql_literal(source.sha256)}, {source.size}, {first})"
        )
        first += lines
    duck.execute(
        f"create or replace temp table {FILES} (file_no integer, source_file varchar, "
        "read_file varchar, sha256 varchar, file_bytes bigint, first_line bigint)"
    )
    duck.execute(f"insert into {FILES} values {', '.join(rows)}")
    duck.execute(
        f"create or replace temp table {BATCH_PY_REJECTS} (file_no integer, "
        "line_no bigint, reason varchar, detail varchar, raw varchar)"
    )
    for number in sorted({number for number, _ in python_rejects}):
        # the per-file path's own table and writer (raw text may hold any byte)
        mine = [reject for n, reject in python_rejects if n == number]
        store_python_rejects(duck, mine, workdir)
        duck.execute(
            f"insert into {BATCH_PY_REJECTS} select {number}, * from {PY_REJECTS}"
        )
    store_python_rejects(duck, [], workdir)
    # Each line keeps the name of the file it was read from, so the batch's view of the
    # classified rows finds its file by a join on the batch's few hundred files. Copying
    # the rows to add their file (an as-of join on line numbers) cost 18 s of a year of
    # daily files' 115 s: every payload written once more.
    classify(("filename",))
    duck.execute(
        f"create or replace temp view {BATCH_CLASS} as select f.file_no, "
        "c.line_no - f.first_line + 1 as file_line, c.* exclude (filename) "
        f"from {CLASSIFIED} as c inner join {FILES} as f on c.filename = f.read_file"
    )


def apply(
    duck, spec: TableSpec, loaded_at: datetime, sources: Sequence[SourceFile]
) -> list[FileResult]:
    """Insert the staged batch, its rejects and one ledger row per file.

    Call inside the warehouse transaction (DuckDB target: `duck` is the warehouse).
    """
    key = spec.key
    stamp = f"{sql_literal(loaded_at.isoformat(sep=' '))}::timestamp"
    # The keys valid more than once in the batch, with the line of the copy that wins
    # (the first): found by one grouping, which every step below reuses.
    duck.execute(
        f"create or replace temp table {BATCH_REPEATED} as select {key}, "
        f"min(line_no) as kept_line_no from {BATCH_CLASS} where reason is null "
        f"group by {key} having count(*) > 1"
    )
    duck.execute(
        f"create or replace temp table {BATCH_CONFLICTS} (file_no integer, "
        "line_no bigint, detail varchar, raw varchar, other varchar)"
    )
    repeated = duck.execute(f"select count(*) from {BATCH_REPEATED}").fetchone()[0]
    if not repeated:
        # The usual case: no key twice in the batch.
        duck.execute(
            f"create or replace temp view {BATCH_KEEP} as select * from {BATCH_CLASS} "
            "where reason is null"
        )
    else:
        # Every later copy of a repeated key, with the copy a load of its file alone
        # would compare it with (`ref_line_no`): for a repeat inside a file, that
        # file's first copy (bulk._pick_kept); for a file's first copy, the loaded row,
        # which is the batch's first copy unless the key was in the table before the
        # batch (then the table's row, compared below). Keys and line numbers only:
        # no payload is read here.
        duck.execute(
            f"create or replace temp table {BATCH_LOSERS} as select line_no, "
            f"{key}, kept_line_no, file_first_line_no, case when line_no = "
            "file_first_line_no then kept_line_no else file_first_line_no end "
            f"as ref_line_no from (select v.line_no, v.{key}, r.kept_line_no, "
            f"min(v.line_no) over (partition by v.{key}, v.file_no) "
            f"as file_first_line_no from {BATCH_CLASS} as v inner join "
            f"{BATCH_REPEATED} as r on v.{key} = r.{key} where v.reason is null) "
            "where line_no <> kept_line_no"
        )
        # The kept rows stay a view: copying every payload of the batch to drop a few
        # hundred later copies cost more.
        duck.execute(
            f"create or replace temp view {BATCH_KEEP} as select * from {BATCH_CLASS} "
            f"where reason is null and line_no not in (select line_no from {BATCH_LOSERS})"
        )
    # Keys already loaded, found by reading only the raw table's key column.
    duck.execute(
        f"create or replace temp table {BATCH_EXISTING} as select v.line_no "
        f"from {BATCH_KEEP} as v semi join {spec.qualified} as t on t.{key} = v.{key}"
    )
    existing = duck.execute(f"select count(*) from {BATCH_EXISTING}").fetchone()[0]
    if repeated:
        # Only the repeated keys' rows are joined, so only their payloads are compared.
        duck.execute(
            f"insert into {BATCH_CONFLICTS} select v.file_no, v.file_line, "
            f"case when l.ref_line_no = l.file_first_line_no then '{key} ' || v.{key} "
            "|| ' also on line ' || k.file_line || ' of this file with a different "
            f"body; the kept copy wins' else '{key} ' || v.{key} || ' already loaded "
            "from ' || kf.source_file || ' line ' || k.file_line || ' with a "
            "different body; the loaded copy wins' end, v.payload, k.payload "
            f"from {BATCH_LOSERS} as l inner join {BATCH_CLASS} as v "
            f"on v.line_no = l.line_no inner join {BATCH_CLASS} as k "
            f"on k.line_no = l.ref_line_no inner join {FILES} as kf "
            "on kf.file_no = k.file_no "
            "where (l.line_no <> l.file_first_line_no or l.kept_line_no not in "
            f"(select line_no from {BATCH_EXISTING})) "
            # Both rows are valid JSON, but DuckDB may evaluate the comparison before
            # the joins have left only them (on a torn line of the batch): CASE keeps
            # json() to valid rows. A failure here rejects no line; it splits the batch
            # in halves down to single files (runner._load_batch), silently and slowly.
            "and case when v.reason is null and k.reason is null "
            "then json(v.payload)::varchar <> json(k.payload)::varchar else false end"
        )
    if existing:
        loaded = loaded_rows(
            duck, spec, f"select v.{key} from {BATCH_KEEP} as v "
            f"where v.line_no in (select line_no from {BATCH_EXISTING})",
        )  # fmt: skip
        # Compared with the loaded row: each kept row whose key is loaded and, of such a
        # key, every later file's first copy (loaded one by one, it meets that row too).
        compared = f"select line_no from {BATCH_EXISTING}"
        if repeated:
            compared += (
                f" union all select line_no from {BATCH_LOSERS} "
                "where line_no = file_first_line_no and kept_line_no in "
                f"(select line_no from {BATCH_EXISTING})"
            )
        duck.execute(
            f"insert into {BATCH_CONFLICTS} select v.file_no, v.file_line, "
            f"{_conflict_detail(spec, 't')}, v.payload, t.payload from {BATCH_CLASS} as v "
            f"inner join {loaded} as t on t.{key} = v.{key} "
            f"where v.reason is null and v.line_no in ({compared}) "
            # v holds the batch's torn lines too: CASE keeps json() to valid rows,
            # whatever order DuckDB evaluates the conditions in (see above).
            "and case when v.reason is null "
            f"then {_conflict_condition(spec, 'v', 't', 'duckdb')} else false end"
        )
    drop_same_bodies(duck, BATCH_CONFLICTS)
    columns = ", ".join(spec.names)
    values = ", ".join(f"v.{name}" for name in spec.names)
    # Not sorted by line: a row's origin is its _source_file and _source_line, and no
    # reader depends on the raw table's physical order. Sorting each batch's rows with
    # their payloads was a fifth of the insert (5 s of a year of daily files' 25 s).
    duck.execute(
        f"insert into {spec.qualified} ({columns}, payload, _source_file, "
        f"_source_line, _loaded_at) select {values}, v.payload::json, f.source_file, "
        f"v.file_line, {stamp} from {with_payload_columns(spec, BATCH_KEEP)} as v "
        f"inner join {FILES} as f "
        f"on f.file_no = v.file_no where v.line_no not in "
        f"(select line_no from {BATCH_EXISTING})"
    )
    duck.execute(
        f"create or replace temp table {BATCH_COUNTS} as "
        # Python's rejects (lines blanked in a staged copy) are read and rejected too.
        f"with c as (select file_no, count(*) as n_read, count(reason) as n_rejected "
        f"from (select file_no, reason from {BATCH_CLASS} union all "
        f"select file_no, reason from {BATCH_PY_REJECTS}) group by 1), "
        f"l as (select file_no, count(*) as n_loaded from {BATCH_KEEP} "
        f"where line_no not in (select line_no from {BATCH_EXISTING}) group by 1), "
        f"x as (select file_no, count(*) as n_conflicting from {BATCH_CONFLICTS} "
        "group by 1) "
        "select f.file_no, coalesce(c.n_read, 0) as n_read, "
        "coalesce(l.n_loaded, 0) as n_loaded, "
        "coalesce(c.n_read, 0) - coalesce(c.n_rejected, 0) - coalesce(l.n_loaded, 0) "
        "as n_duplicate, coalesce(c.n_rejected, 0) as n_rejected, "
        f"coalesce(x.n_conflicting, 0) as n_conflicting from {FILES} as f "
        "left join c using (file_no) left join l using (file_no) "
        "left join x using (file_no)"
    )
    duck.execute(
        f"insert into raw_loader.rejects ({REJECT_COLUMNS}) select "
        f"{sql_literal(spec.loader)}, f.source_file, r.line_no, r.reason, "
        f"replace(left(r.raw, {MAX_RAW_SQL}), chr(0), '\\0'), {stamp}, r.detail, "
        f"f.sha256 from (select file_no, file_line as line_no, reason, detail, "
        f"payload as raw from {BATCH_CLASS} where reason is not null union all "
        f"select file_no, line_no, reason, detail, raw from {BATCH_PY_REJECTS} "
        f"union all select file_no, line_no, '{CONFLICT_REASON}', detail, raw "
        f"from {BATCH_CONFLICTS}) as r inner join {FILES} as f using (file_no)"
    )
    duck.execute(
        "insert into raw_loader.loaded_files (loader, file_sha256, source_file, "
        "file_bytes, records_read, records_loaded, records_duplicate, records_rejected, "
        f"records_conflicting, loaded_at) select {sql_literal(spec.loader)}, f.sha256, "
        "f.source_file, f.file_bytes, c.n_read, c.n_loaded, c.n_duplicate, "
        f"c.n_rejected, c.n_conflicting, {stamp} from {FILES} as f "
        f"inner join {BATCH_COUNTS} as c using (file_no)"
    )
    rows = duck.execute(
        f"select file_no, n_read, n_loaded, n_duplicate, n_rejected, n_conflicting "
        f"from {BATCH_COUNTS} order by file_no"
    ).fetchall()
    return [
        FileResult(sources[row[0]], Counts(*row[1:]))  # read, loaded, dup, rej, conf
        for row in rows
    ]


def drop(duck) -> None:
    kinds = dict(
        duck.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'main' and table_catalog = 'temp'"
        ).fetchall()
    )
    for name in (*BATCH_TABLES, BATCH_COUNTS):
        if name in kinds:
            kind = "view" if kinds[name] == "VIEW" else "table"
            duck.execute(f"drop {kind} {name}")
