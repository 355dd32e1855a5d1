"""The file loop every file loader shares: skip known files, stage, load atomically.

Per file: fingerprint it (sha256 of the stored bytes); skip it when
`raw_loader.loaded_files` already holds that checksum for this loader; stage it in
DuckDB; then in ONE warehouse transaction insert its rows, its rejects and its
`loaded_files` row. A process killed at any moment therefore leaves each file either
fully loaded or not at all, and the next run picks up exactly the files not recorded.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from scripts.loaders import ledger, validity
from scripts.loaders.bulk import FileContext, TableSpec, apply, ensure_table
from scripts.loaders.files import (
    Reject,
    SourceFile,
    detect_shape,
    discover,
    inspect,
    stage_lines,
)
from scripts.loaders.stage import (
    LINES,
    Check,
    classify_sql,
    create_empty_lines,
    drop_stage,
    read_lines,
    sql_literal,
    store_python_rejects,
)
from scripts.warehouse import Warehouse

DEFAULT_MAX_RECORD_BYTES = 1 << 20
MEMORY_LIMIT = os.environ.get("AUDIENCES_LOADER_MEMORY_LIMIT", "1GB")


class LoadFailedError(Exception):
    """A file could not be loaded; earlier files stay loaded, this one is untouched."""


class MissingRightsError(Exception):
    """The warehouse role may not create the loaders' schemas or tables."""


@dataclass(frozen=True)
class Options:
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    progress: bool = False


@dataclass
class Clock:
    """The instants one file is judged against, fixed once per file."""

    now: datetime  # UTC, naive: how timestamps are stored

    @property
    def future_limit(self) -> datetime:
        return self.now + validity.FUTURE_TOLERANCE


# A stager fills the staging tables (stage.CLASSIFIED, stage.PY_REJECTS) for one file.
Stager = Callable[[object, SourceFile, Path, Options, Clock], None]


def line_stager(
    paths: dict[str, str],
    derived: dict[str, str],
    checks: Callable[[Clock], Sequence[Check]],
    columns: dict[str, str],
    type_only: frozenset[str] = frozenset(),
) -> Stager:
    """Stager for JSON-per-record loaders whose validation is SQL (see stage.py)."""

    def stage(duck, source: SourceFile, workdir: Path, opts: Options, clock: Clock):
        rejects = read_json_lines(duck, source, workdir, opts.max_record_bytes)
        store_python_rejects(duck, rejects, workdir)
        duck.execute(
            classify_sql(
                paths,
                derived,
                checks(clock),
                columns,
                opts.max_record_bytes,
                type_only,
            )
        )
        duck.execute(f"drop table {LINES}")

    return stage


def read_json_lines(
    duck, source: SourceFile, workdir: Path, max_record_bytes: int
) -> list[Reject]:
    """Fill `_ld_lines`, directly from the file when it is plain NDJSON, else via Python."""
    import duckdb

    if source.gzip_error:
        create_empty_lines(duck)
        return [Reject(None, "invalid_gzip", source.gzip_error, "")]
    truncation = [source.truncation] if source.truncation else []
    if source.is_empty:
        create_empty_lines(duck)
        return truncation
    if source.fast_path_ok and detect_shape(source) == "ndjson":
        try:
            read_lines(duck, source.path, source.gzipped, max_record_bytes + 2)
            return []
        except duckdb.Error:
            pass  # e.g. a line longer than the limit: let Python find and reject it
    staged = stage_lines(source, workdir, max_record_bytes)
    try:
        read_lines(duck, staged.path, False, max_record_bytes + 2)
    finally:
        staged.path.unlink(missing_ok=True)
    return staged.rejects + truncation


def run(
    wh: Warehouse,
    spec: TableSpec,
    stager: Stager,
    paths: Sequence[str],
    extensions: tuple[str, ...],
    opts: Options,
) -> ledger.RunSummary:
    started = time.monotonic()
    files = discover(paths, extensions)
    summary = ledger.RunSummary(loader=spec.loader)
    _ensure_tables(wh, spec)
    with tempfile.TemporaryDirectory(prefix="audiences-load-") as tmp:
        workdir = Path(tmp)
        duck = _staging_connection(wh, workdir)
        iterator = _progress(files, spec.loader, opts.progress)
        with iterator as items, _Prefetcher(files) as sources:
            for path in items:
                try:
                    source = sources.take(path)
                    counts = _load_one(wh, duck, spec, stager, source, workdir, opts)
                except OSError as exc:
                    # The file went away or became unreadable mid-run: say which and
                    # go on; it is not in the ledger, so the next run tries it again.
                    if isinstance(exc, FileNotFoundError):
                        summary.files_vanished += 1
                    else:
                        summary.files_unreadable += 1
                    click.echo(_unreadable_line(spec.loader, path, exc), err=True)
                    continue
                if counts is None:
                    summary.files_skipped += 1
                else:
                    summary.files_loaded += 1
                    summary.counts.add(counts)
        if duck is not wh.raw_connection:
            duck.close()
    summary.seconds = time.monotonic() - started
    return summary


def _ensure_tables(wh: Warehouse, spec: TableSpec) -> None:
    def create() -> None:
        ledger.ensure_ledger(wh)
        ensure_table(wh, spec)

    ensure_rights(wh, create, spec.schema)


def ensure_rights(wh: Warehouse, create: Callable[[], None], schema: str) -> None:
    """Run `create` (the loader's DDL); a role without CREATE gets one clear line."""
    try:
        create()
    except Exception as exc:
        if getattr(exc, "pgcode", None) != INSUFFICIENT_PRIVILEGE:
            raise
        user, database = wh.query("select current_user, current_database()")[0]
        raise MissingRightsError(
            f"PostgreSQL role {user!r} may not create the loaders' schemas and tables "
            f"(raw_loader, {schema}): it needs CREATE on database {database!r}, "
            f"e.g. GRANT CREATE ON DATABASE {database} TO {user}; "
            f"the server said: {str(exc).strip().splitlines()[0]}"
        ) from None


# PostgreSQL's SQLSTATE for "permission denied" (insufficient_privilege).
INSUFFICIENT_PRIVILEGE = "42501"


def _unreadable_line(loader: str, path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        why = "it was deleted or moved during the run"
    else:
        why = exc.strerror or str(exc)
    return f"{loader}: not loaded: {path}: {why} (other files go on; rerun to retry)"


def _staging_connection(wh: Warehouse, workdir: Path):
    import duckdb

    if wh.dialect == "duckdb":
        duck = wh.raw_connection
    else:
        duck = duckdb.connect()
        duck.execute(f"set temp_directory = {sql_literal(str(workdir))}")
    # Wall-clock conversions (ISO strings without a zone, timestamptz -> timestamp) in UTC.
    duck.execute("set TimeZone = 'UTC'")
    # DuckDB would take 80% of RAM; a bounded buffer pool spills big files to disk
    # instead, keeping the loader's peak memory predictable beside dbt and the sync.
    duck.execute(f"set memory_limit = {sql_literal(MEMORY_LIMIT)}")
    return duck


class _NoProgress:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        return False


def _progress(files: list[Path], loader: str, enabled: bool):
    if enabled and sys.stdout.isatty() and files:
        return click.progressbar(
            files, label=f"{loader}: {len(files)} files", show_pos=True
        )
    return _NoProgress(files)


class _Prefetcher:
    """Fingerprints the next file in a thread while the current one loads.

    hashlib releases the GIL on large buffers, so the sha256 pass overlaps DuckDB's work
    instead of adding to it. Files are still loaded one at a time, in order.
    """

    def __init__(self, files: Sequence[Path]):
        self.files = list(files)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        self.pending: dict[Path, Future[SourceFile]] = {}
        self.position = 0

    def __enter__(self) -> _Prefetcher:
        self._submit_next()
        return self

    def __exit__(self, *exc) -> None:
        for future in self.pending.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def _submit_next(self) -> None:
        if self.position < len(self.files):
            path = self.files[self.position]
            self.pending[path] = self.pool.submit(inspect, path)
            self.position += 1

    def take(self, path: Path) -> SourceFile:
        future = self.pending.pop(path)
        self._submit_next()  # before result(): a vanished file must not stall the rest
        return future.result()


def _load_one(
    wh: Warehouse,
    duck,
    spec: TableSpec,
    stager: Stager,
    source: SourceFile,
    workdir: Path,
    opts: Options,
) -> ledger.Counts | None:
    path = source.path
    if ledger.is_loaded(wh, spec.loader, source.sha256):
        return None
    clock = Clock(now=datetime.now(UTC).replace(tzinfo=None))
    ctx = FileContext(
        source_file=str(path),
        sha256=source.sha256,
        loaded_at=clock.now,
        workdir=workdir,
    )
    try:
        stager(duck, source, workdir, opts, clock)
        with wh.transaction():
            counts = apply(wh, duck, spec, ctx)
            ledger.resolve_fixed_rejects(
                wh,
                duck,
                spec.loader,
                ctx.source_file,
                source.sha256,
                file_complete=not (source.truncation or source.gzip_error),
                resolved_at=clock.now,
            )
            ledger.record_file(
                wh,
                spec.loader,
                source.sha256,
                str(path),
                source.size,
                counts,
                clock.now,
            )
    except Exception as exc:
        if _is_database_error(exc):
            raise LoadFailedError(
                f"{path}: {str(exc).strip().splitlines()[0]}"
            ) from exc
        raise
    finally:
        drop_stage(duck)
    if not counts.reconciles:  # a bug, not bad input: say so loudly
        raise LoadFailedError(f"{path}: counts do not reconcile: {counts}")
    return counts


def _is_database_error(exc: Exception) -> bool:
    import duckdb
    import psycopg2

    return isinstance(exc, duckdb.Error | psycopg2.Error)


def timestamp_literal(moment: datetime) -> str:
    return sql_literal(moment.isoformat(sep=" "))
