"""The file loop every file loader shares: skip known files, stage, load atomically.

Per file: fingerprint it (sha256 of the stored bytes); skip it when
`raw_loader.loaded_files` already holds that checksum for this loader; stage it in
DuckDB; then in ONE warehouse transaction insert its rows, its rejects and its
`loaded_files` row. A process killed at any moment therefore leaves each file either
fully loaded or not at all, and the next run picks up exactly the files not recorded.
Consecutive small files take the same steps together, one transaction per batch with
still one `loaded_files` row per file (batch.py), because per-file statements and
commits, not their rows, were the cost of a landing folder of one file a minute.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from scripts.loaders import batch, ledger, validity
from scripts.loaders.bulk import FileContext, TableSpec, apply, ensure_table
from scripts.loaders.disk_full import first_line, is_disk_full, what_is_full
from scripts.loaders.files import (
    InputError,
    Reject,
    SourceFile,
    StagedLines,
    clock_disagrees,
    detect_shape,
    discover,
    display_name,
    duckdb_reads_literally,
    inspect,
    reading,
    stage_lines,
    still_being_written,
    storable_name,
)
from scripts.loaders.stage import (
    LINES,
    Check,
    LinesLeftOutError,
    check_lines_read,
    classify_sql,
    create_empty_lines,
    drop_stage,
    lines_read,
    read_lines,
    sql_literal,
    store_python_rejects,
)
from scripts.warehouse import INSUFFICIENT_PRIVILEGE, Warehouse, WarehouseError

DEFAULT_MAX_RECORD_BYTES = 1 << 20
# The most --max-record-bytes may be: a record is held whole in memory while it is
# checked, and DuckDB takes the limit as a BIGINT (a larger number failed every file).
MAX_RECORD_BYTES_CEILING = 256 << 20
# The buffer pool of the scratch DuckDB that stages files for a PostgreSQL target. On a
# DuckDB target the staging runs in the warehouse itself, inside the profile's
# memory_limit and temp_directory (profiles.yml), the same limits as a build, and this
# variable is not used: the load says so rather than let an operator believe it applies.
STAGING_MEMORY_LIMIT_ENV = "AUDIENCES_LOADER_MEMORY_LIMIT"
STAGING_MEMORY_LIMIT = os.environ.get(STAGING_MEMORY_LIMIT_ENV, "1GB")
# How much of DuckDB's error a batch split quotes on stderr: its first line names the
# file and the fault; the rest (a record's text, a hint) is for a debugger, not a log.
SPLIT_CAUSE_CHARS = 200


class LoadFailedError(Exception):
    """A file could not be loaded; earlier files stay loaded, this one is untouched."""


class DiskFullError(LoadFailedError):
    """A disk the load writes to filled up (disk_full.py): every later file would fail
    the same way, so the run stops there."""


class MissingRightsError(Exception):
    """The warehouse role may not create the loaders' schemas or tables."""


class LoadInProgressError(WarehouseError):
    """Another run of the same loader holds the PostgreSQL warehouse (exit 2, as the
    DuckDB file's own lock gives)."""


# The first key of the PostgreSQL advisory lock a loader holds while it runs (any fixed
# 32-bit number; the second is the loader's name, hashed).
LOAD_LOCK_CLASS = 0x6C6F6164  # "load"


@dataclass(frozen=True)
class Options:
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    progress: bool = False
    # Set for loaders of formats whose cut rows parse (CSV): a file that may still be
    # being written waits for a later run (files.still_being_written).
    settle_seconds: float | None = None
    # The name of the stop signal that arrived (command._stop_signals), else None:
    # read before each file or batch, which then stops the run (StopRequested).
    stop_requested: Callable[[], str | None] = lambda: None


class StopRequested(BaseException):
    """A stop signal arrived: the run stops before its next file or batch, whatever it
    has loaded committed and the rest untouched, its work folder removed on the way
    out. Raised there, not by the signal's handler: one raised inside a DuckDB call
    interrupts the query, and the error it becomes could be taken for a file's.
    A BaseException, as KeyboardInterrupt is: no `except Exception` takes it."""


def stop_if_requested(opts: Options) -> None:
    name = opts.stop_requested()
    if name is not None:
        raise StopRequested(name)


@dataclass
class Clock:
    """The instants one file is judged against, fixed once per file."""

    now: datetime  # UTC, naive: how timestamps are stored

    @property
    def future_limit(self) -> datetime:
        return self.now + validity.FUTURE_TOLERANCE


# A stager fills the staging tables (stage.CLASSIFIED, stage.PY_REJECTS) for one file.
Stager = Callable[[object, SourceFile, Path, Options, Clock], None]


@dataclass(frozen=True)
class LineStager:
    """Stager for JSON-per-record loaders whose validation is SQL (see stage.py).

    `classify` alone turns whatever `_ld_lines` holds into `_ld_class`, so a batch of
    small files (batch.py) can be read into `_ld_lines` at once and classified once.
    """

    paths: dict[str, str]
    derived: dict[str, str]
    checks: Callable[[Clock], Sequence[Check]]
    columns: dict[str, str]
    type_only: frozenset[str] = frozenset()

    def __call__(
        self, duck, source: SourceFile, workdir: Path, opts: Options, clock: Clock
    ) -> None:
        rejects = read_json_lines(duck, source, workdir, opts.max_record_bytes)
        store_python_rejects(duck, rejects, workdir)
        self.classify(duck, opts, clock)

    def classify(
        self, duck, opts: Options, clock: Clock, carry: Sequence[str] = ()
    ) -> None:
        duck.execute(
            classify_sql(
                self.paths,
                self.derived,
                self.checks(clock),
                self.columns,
                opts.max_record_bytes,
                self.type_only,
                carry,
            )
        )
        duck.execute(f"drop table {LINES}")


def line_stager(
    paths: dict[str, str],
    derived: dict[str, str],
    checks: Callable[[Clock], Sequence[Check]],
    columns: dict[str, str],
    type_only: frozenset[str] = frozenset(),
) -> LineStager:
    return LineStager(paths, derived, checks, columns, type_only)


def read_json_lines(
    duck, source: SourceFile, workdir: Path, max_record_bytes: int
) -> list[Reject]:
    """Fill `_ld_lines`, directly from the file when it is plain NDJSON, else via Python."""
    import duckdb

    if source.unreadable:
        create_empty_lines(duck)
        return [source.unreadable]
    truncation = [source.truncation] if source.truncation else []
    if source.is_empty:
        create_empty_lines(duck)
        return truncation
    if source.fast_path_ok and detect_shape(source) == "ndjson":
        try:
            read_lines(duck, source.path, source.gzipped, max_record_bytes + 2)
            check_lines_read(lines_read(duck), source.content_lines, source.path)
            return []
        except (duckdb.Error, LinesLeftOutError):
            pass  # e.g. a line longer than the limit: let Python find and reject it
    staged = stage_lines(source, workdir, max_record_bytes)
    try:
        read_lines(duck, staged.path, False, max_record_bytes + 2)
        # A staged copy holds no line over the limit: a shortfall here is not the
        # input's doing, and stops the load before the file counts as loaded.
        check_lines_read(lines_read(duck), staged.written, source.path)
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
    discovered = discover(paths, extensions)
    found = discovered.files
    # Left out before they are fingerprinted: nothing of them could be recorded.
    files = [path for path in found if storable_name(path)]
    summary = ledger.RunSummary(loader=spec.loader)
    _one_run_per_loader(wh, spec.loader)
    _ensure_tables(wh, spec)
    _remove_abandoned_work_folders()
    with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as tmp:
        workdir = Path(tmp)
        if not duckdb_reads_literally(workdir):
            # Every staged copy lives here and is read by DuckDB, which would take the
            # path for a glob pattern (files.GLOB_CHARACTERS).
            raise InputError(
                f"the temporary folder {tmp} holds a character DuckDB reads as a glob "
                "pattern (* ? [ ] { }); set TMPDIR to a folder without one"
            )
        duck = _staging_connection(wh, workdir)
        iterator = _progress(files, spec.loader, opts.progress)
        loop = _Loop(wh, duck, spec, stager, workdir, opts, summary)
        for path in found:
            if not storable_name(path):
                loop.unstorable(path)
        for folder, exc in discovered.unlisted:
            loop.unreadable(folder, exc)
        for folder, others in discovered.only_other_files:
            click.echo(
                f"{spec.loader}: {display_name(folder)}: no file to load: its {others} "
                f"file(s) have other extensions than {', '.join(extensions)} "
                "(each optionally .gz)",
                err=True,
            )
        with iterator as items, _Prefetcher(files, loop.prestage) as sources:
            for path in items:
                stop_if_requested(opts)
                try:
                    source = sources.take(path)
                except OSError as exc:
                    loop.unreadable(path, exc)
                    continue
                if opts.settle_seconds is not None and loop.waits(
                    source, opts.settle_seconds
                ):
                    continue
                loop.add(source)
            loop.flush()
        loop.close()
        if duck is not wh.raw_connection:
            duck.close()
    summary.seconds = time.monotonic() - started
    return summary


class _Loop:
    """Loads files in order: small plain ones in batches (batch.py), others one by one."""

    def __init__(self, wh, duck, spec, stager, workdir, opts, summary):
        self.wh, self.duck, self.spec, self.stager = wh, duck, spec, stager
        self.workdir, self.opts, self.summary = workdir, opts, summary
        self.pending: list[SourceFile] = []
        self.pending_bytes = 0
        self.batching = (
            wh.dialect == "duckdb"
            and spec.version is None
            and isinstance(stager, LineStager)
        )
        # The prefetch thread's own connection to the warehouse (DuckDB: a cursor, one
        # per thread), to leave files already loaded unstaged (prestage).
        self.ledger_cursor = wh.raw_connection.cursor() if self.batching else None
        # Content bytes of the copies staged ahead and not yet taken by a batch: kept
        # within one batch's worth (batch.MAX_BATCH_BYTES), whatever the prefetcher's
        # window of stored bytes holds (a .gz expands), so the work folder holds at
        # most the loading batch's copies plus one batch's worth staged ahead.
        self.staged_ahead_bytes = 0
        self.staged_ahead_lock = threading.Lock()

    def prestage(self, source: SourceFile) -> None:
        """In the prefetch thread: stage a batch's file that needs Python's copy
        (batch.read_directly) while DuckDB loads the batch before it, instead of on
        the main thread between batches. A year of daily files holds 187 such files
        (one bad line each); staged on the main thread, they held the load up by about
        4 s of 74.

        Best effort: a copy not made here (a full disk, a file gone, a file already
        loaded, one batch's worth of copies already waiting) is made, or its failure
        reported, by the main thread as before."""
        with contextlib.suppress(Exception):
            if (
                self.ledger_cursor is None
                or not batch.fits(source)
                or batch.read_directly(source)
            ):
                return
            with self.staged_ahead_lock:
                waiting = self.staged_ahead_bytes
            if waiting + source.content_bytes > batch.MAX_BATCH_BYTES:
                return
            loaded = self.ledger_cursor.execute(
                "select count(*) from raw_loader.loaded_files "
                "where loader = ? and file_sha256 = ?",
                [self.spec.loader, source.sha256],
            ).fetchone()[0]
            if not loaded:
                source.staged = stage_lines(
                    source, self.workdir, self.opts.max_record_bytes
                )
                with self.staged_ahead_lock:
                    self.staged_ahead_bytes += source.content_bytes

    def take_staged(self, source: SourceFile) -> StagedLines | None:
        """The copy staged ahead for `source`, now the caller's to remove; None if
        none was."""
        staged, source.staged = source.staged, None
        if staged is not None:
            with self.staged_ahead_lock:
                self.staged_ahead_bytes -= source.content_bytes
        return staged

    def drop_staged(self, source: SourceFile) -> None:
        """Remove a copy staged ahead for a file that will not be read from it."""
        staged = self.take_staged(source)
        if staged is not None:
            staged.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.ledger_cursor is not None:
            self.ledger_cursor.close()

    def add(self, source: SourceFile) -> None:
        if self.batching and batch.fits(source):
            self.pending.append(source)
            self.pending_bytes += source.content_bytes
            if (
                len(self.pending) >= batch.MAX_BATCH_FILES
                or self.pending_bytes >= batch.MAX_BATCH_BYTES
            ):
                self.flush()
            return
        self.flush()  # files load in order: what came before goes first
        self.single(source)

    def unreadable(self, path: Path, exc: OSError) -> None:
        # The file went away or became unreadable mid-run: say which and go on; it is
        # not in the ledger, so the next run tries it again. A full disk is not the
        # file's fault and would fail every file after it: the run stops.
        if is_disk_full(exc):
            raise self.disk_full(path, exc) from exc
        if isinstance(exc, FileNotFoundError):
            self.summary.files_vanished += 1
        else:
            self.summary.files_unreadable += 1
        click.echo(_unreadable_line(self.spec.loader, path, exc), err=True)

    def waits(self, source: SourceFile, settle_seconds: float) -> bool:
        """Whether a file that may be mid-write is left for a later run (said on
        stderr; not in the ledger, so the next run reads it again; not an error)."""
        now = time.time()
        name = display_name(source.path)
        if clock_disagrees(source, now, settle_seconds):
            click.echo(
                f"{self.spec.loader}: {name}: it ends mid-row and was modified "
                f"{source.modified_at - now:.0f} s in the future by this machine's "
                "clock, so whether it is still being written cannot be told; loading it",
                err=True,
            )
            return False
        if not still_being_written(source, now, settle_seconds):
            return False
        self.drop_staged(source)
        self.summary.files_waiting += 1
        if source.changed_while_read:
            why = "it changed while it was read"
        else:
            age = now - source.modified_at
            when = f"{age:.0f} s ago" if age >= 0 else f"{-age:.0f} s in the future"
            why = (
                "it ends mid-row (no line break after its last line, or a quoted "
                f"field still open) and was modified {when}, within --settle-seconds "
                f"{settle_seconds:g}"
            )
        click.echo(
            f"{self.spec.loader}: not loaded yet: {name}: {why}, so a writer may be "
            "mid-row; a later run loads it",
            err=True,
        )
        return True

    def disk_full(self, path: Path, exc: BaseException) -> DiskFullError:
        cause = first_line(exc)
        if isinstance(exc, OSError) and not exc.filename:
            cause += f", writing in {self.workdir}"  # our own staging copies
        elif "offload" in cause:  # DuckDB names neither the folder nor the OS's words
            cause += f", spilling to DuckDB's temp_directory {self._spill_folder()}"
        # "Nothing of it was kept" is not said: DuckDB may fail at the checkpoint after
        # a batch's commit, which its write-ahead log keeps (the rerun skips it).
        return DiskFullError(
            f"{self.spec.loader}: stopped at {display_name(path)}: "
            f"{what_is_full(exc)} ({cause}). Each file is loaded whole or not at all, "
            f"and the {self.summary.files_loaded} file(s) loaded before it stay loaded. "
            "Free space on the disk named (the warehouse's, its DuckDB temp_directory, "
            f"or the temporary folder TMPDIR, {tempfile.gettempdir()}), or raise the "
            "limit named, then rerun: it loads exactly the files not loaded yet."
        )

    def _spill_folder(self) -> str:
        try:
            return str(self.duck.execute("select current_setting('temp_directory')")
                       .fetchone()[0])  # fmt: skip
        except Exception:
            return "(unknown)"

    def unstorable(self, path: Path) -> None:
        # Counted with the unreadable files: not loaded, and the exit status says so.
        self.summary.files_unreadable += 1
        click.echo(
            f"{self.spec.loader}: not loaded: {display_name(path)}: its name is not "
            "valid UTF-8, which the warehouse cannot record (other files go on; rename "
            "it to load it)",
            err=True,
        )

    def split(self, sources: list[SourceFile], exc: Exception) -> None:
        self.summary.batches_split += 1
        cause = (str(exc).strip().splitlines() or [""])[0]
        if len(cause) > SPLIT_CAUSE_CHARS:
            cause = cause[:SPLIT_CAUSE_CHARS] + "..."
        click.echo(
            f"{self.spec.loader}: a batch of {len(sources)} files "
            f"({display_name(sources[0].path)} to {display_name(sources[-1].path)}) "
            f"failed as a whole ({type(exc).__name__}: {cause}); loading it in halves",
            err=True,
        )

    def single(self, source: SourceFile) -> None:
        stop_if_requested(self.opts)
        try:
            counts = _load_one(
                self.wh,
                self.duck,
                self.spec,
                self.stager,
                source,
                self.workdir,
                self.opts,
            )
        except Exception as exc:
            if is_disk_full(exc):
                raise self.disk_full(source.path, exc) from exc
            if not isinstance(exc, OSError):
                raise
            self.unreadable(source.path, exc)
            return
        self._count(counts)

    def _count(self, counts: ledger.Counts | None) -> None:
        if counts is None:
            self.summary.files_skipped += 1
        else:
            self.summary.files_loaded += 1
            self.summary.counts.add(counts)

    def flush(self) -> None:
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        if not pending:
            return
        loader = self.spec.loader
        earlier = ledger.earlier_loads(self.wh, loader, [s.sha256 for s in pending])
        # A path with rejects a new version may fix goes alone: resolving them compares
        # its lines with the earlier load's (ledger.resolve_fixed_rejects). So does a
        # file read again under a new name (read_again), whose ledger row it replaces.
        fixable = ledger.paths_with_open_rejects(
            self.wh, loader, [str(s.path) for s in pending]
        )
        seen: set[str] = set()  # the same bytes twice in a run: the second is skipped
        run: list[SourceFile] = []
        for source in pending:
            before = earlier.get(source.sha256)
            if source.sha256 in seen or (before and not read_again(before, source)):
                self.drop_staged(source)
                self._count(None)
            elif before or str(source.path) in fixable:
                self.drop_staged(source)  # the per-file path stages its own copy
                self._load_batch(run)
                run = []
                self.single(source)
            else:
                run.append(source)
            seen.add(source.sha256)
        self._load_batch(run)

    def _load_batch(self, sources: list[SourceFile]) -> None:
        stop_if_requested(self.opts)
        import duckdb

        if len(sources) < 2:
            for source in sources:
                self.drop_staged(source)
                self.single(source)
            return
        clock = Clock(now=datetime.now(UTC).replace(tzinfo=None))
        stager = self.stager
        assert isinstance(stager, LineStager)
        reads, lines, python_rejects, staged_copies = self._reads(sources)
        if len(sources) < 2:  # the others vanished while being staged
            _remove(staged_copies)
            for source in sources:
                self.single(source)
            return
        try:
            batch.stage(
                self.duck,
                sources,
                reads,
                lines,
                self.opts.max_record_bytes + 2,
                lambda carry: stager.classify(self.duck, self.opts, clock, carry),
                self.workdir,
                python_rejects,
            )
            with self.wh.transaction():
                results = batch.apply(self.duck, self.spec, clock.now, sources)
        except (duckdb.Error, LinesLeftOutError, OSError) as exc:
            if is_disk_full(exc):  # halves would fail the same way, one by one
                raise self.disk_full(sources[0].path, exc) from exc
            if isinstance(exc, OSError):
                raise
            # One file DuckDB refuses (invalid UTF-8, an oversized line, a file gone
            # since it was hashed), or reads short, fails the batch as a whole and
            # nothing of it is kept. Halves are retried, in order, until that file
            # loads alone by the per-file path, which finds and handles it: a few bad
            # files cost a few extra reads, not a whole batch loaded one by one. Each
            # split is said on stderr and counted in the summary: an error in our own
            # SQL takes the same path, and would otherwise show only as a slow load.
            self.split(sources, exc)
            results = None
        finally:
            # Best effort, as drop_stage: after a failed checkpoint DuckDB refuses every
            # statement until reopened, and this must not hide the error being raised.
            with contextlib.suppress(duckdb.Error):
                batch.drop(self.duck)
            drop_stage(self.duck)
            _remove(staged_copies)
        if results is None:
            middle = len(sources) // 2
            self._load_batch(sources[:middle])
            self._load_batch(sources[middle:])
            return
        for result in results:
            if not result.counts.reconciles:  # a bug, not bad input: say so loudly
                raise LoadFailedError(
                    f"{result.source.path}: counts do not reconcile: {result.counts}"
                )
            self._count(result.counts)

    def _reads(
        self, sources: list[SourceFile]
    ) -> tuple[list[Path], list[int], list[tuple[int, Reject]], list[Path]]:
        """What DuckDB reads for each file of a batch: the file, or the copy Python
        staged for it (bad records blanked, each a reject), and how many lines each
        holds. A file that vanished or became unreadable is reported and left out of
        `sources` (in place)."""
        reads: list[Path] = []
        lines: list[int] = []
        python_rejects: list[tuple[int, Reject]] = []
        staged_copies: list[Path] = []
        kept: list[SourceFile] = []
        for source in sources:
            if batch.read_directly(source):
                reads.append(source.path)
                lines.append(source.content_lines)
            else:
                try:
                    # Staged ahead by the prefetch thread, or now. Taken once: the
                    # batch removes its copies, and a retry in halves stages again.
                    staged = self.take_staged(source) or stage_lines(
                        source, self.workdir, self.opts.max_record_bytes
                    )
                except OSError as exc:
                    if is_disk_full(exc):  # the batch stops here, from its first file
                        _remove(staged_copies)
                        raise self.disk_full(sources[0].path, exc) from exc
                    self.unreadable(source.path, exc)
                    continue
                staged_copies.append(staged.path)
                reads.append(staged.path)
                lines.append(staged.written)
                found = [*staged.rejects, *filter(None, [source.truncation])]
                python_rejects.extend((len(kept), reject) for reject in found)
            kept.append(source)
        sources[:] = kept
        return reads, lines, python_rejects, staged_copies


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _one_run_per_loader(wh: Warehouse, loader: str) -> None:
    """One run of a loader at a time on a PostgreSQL warehouse, as DuckDB's file lock
    gives on DuckDB. Two at once kept the data whole (the ledger's key lets one copy of
    a file in), but the second failed with the database's words: a race on the tables'
    creation (`pg_type_typname_nsp_index`) or on the ledger's key. The lock is the
    session's: it goes with the connection, even after kill -9."""
    if wh.dialect != "postgres":
        return
    ((locked,),) = wh.query(
        "select pg_try_advisory_lock(%s, hashtext(%s))", (LOAD_LOCK_CLASS, loader)
    )
    if not locked:
        raise LoadInProgressError(
            f"another `audiences load {loader}` is running on "
            f"{wh.target.describe()}; nothing was loaded. Rerun when it has ended: a "
            "load takes exactly the files not loaded yet"
        )


def _ensure_tables(wh: Warehouse, spec: TableSpec) -> None:
    def create() -> None:
        ledger.ensure_ledger(wh)
        ensure_table(wh, spec, say=lambda line: click.echo(line, err=True))

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


def _unreadable_line(loader: str, path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        why = "it was deleted or moved during the run"
    else:
        why = exc.strerror or str(exc)
    return f"{loader}: not loaded: {path}: {why} (other files go on; rerun to retry)"


# A load's work folder (its staged copies) in the temporary folder, named with its pid.
WORK_PREFIX = "audiences-load-"


def _remove_abandoned_work_folders() -> None:
    """Remove the work folders of loads that were killed: kill -9 runs no cleanup, and
    each left its folder behind with up to a batch of staged copies. A folder is
    abandoned when the pid in its name runs no process; one whose pid is alive again
    (reused), or of another user, stays."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name.removeprefix(WORK_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            if folder.stat().st_uid != os.geteuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # gone already, or alive as another user's process
            continue


def _staging_connection(wh: Warehouse, workdir: Path):
    import duckdb

    if wh.dialect == "duckdb":
        # Opened with the profile's memory_limit and temp_directory, which stay: a
        # loader's own smaller limit (1 GB until 2026-12) overrode the user's setting
        # and, at each eviction, made DuckDB hand all freed memory back to the OS and
        # fault it in again (a year of daily files: 23 s of system time against 17 s,
        # and 58-61 s against 61-64 s in all at the default 3GB).
        duck = wh.raw_connection
        if os.environ.get(STAGING_MEMORY_LIMIT_ENV):
            click.echo(
                f"{STAGING_MEMORY_LIMIT_ENV} is for a PostgreSQL target and is not used "
                "here: a DuckDB target's loads stage inside the profile's memory_limit "
                "(AUDIENCES_DUCKDB_MEMORY_LIMIT)",
                err=True,
            )
    else:
        # DuckDB would take 80% of RAM; a bounded buffer pool spills big files to
        # disk instead, keeping the loader's peak memory predictable.
        duck = duckdb.connect(
            config={
                "memory_limit": STAGING_MEMORY_LIMIT,
                "temp_directory": str(workdir),
            }
        )
    # Wall-clock conversions (ISO strings without a zone, timestamptz -> timestamp) in UTC.
    duck.execute("set TimeZone = 'UTC'")
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
    """Fingerprints the files ahead of the one being loaded, in a thread.

    hashlib and zlib release the GIL on large buffers, so the sha256 and gzip passes
    overlap DuckDB's work instead of adding to it. It runs ahead by up to one batch
    (batch.MAX_BATCH_FILES files, batch.MAX_BATCH_BYTES stored; at least one file), so
    while a batch loads the next one is being fingerprinted; files are still loaded in
    order. It keeps no content, only each file's first bytes. Measured on a year of
    daily files: 8 MB ahead, 115 s; one batch ahead, 90 s, the same peak memory.
    `prepare` runs on each file after it is fingerprinted, in the same thread: the
    loop stages there the copies Python must write (_Loop.prestage), up to one
    batch's worth of content (batch.MAX_BATCH_BYTES) waiting at a time.
    """

    def __init__(
        self,
        files: Sequence[Path],
        prepare: Callable[[SourceFile], None] = lambda _: None,
    ):
        self.files = list(files)
        self.prepare = prepare
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        self.pending: dict[Path, tuple[Future[SourceFile], int]] = {}
        self.pending_bytes = 0
        self.position = 0

    def __enter__(self) -> _Prefetcher:
        self._submit_ahead()
        return self

    def __exit__(self, *exc) -> None:
        for future, _ in self.pending.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def _submit_ahead(self) -> None:
        while self.position < len(self.files) and (
            not self.pending
            or (
                len(self.pending) < batch.MAX_BATCH_FILES
                and self.pending_bytes < batch.MAX_BATCH_BYTES
            )
        ):
            path = self.files[self.position]
            try:
                size = path.stat().st_size
            except OSError:
                size = 0  # inspect() will say what is wrong with it
            self.pending[path] = (self.pool.submit(self._fetch, path), size)
            self.pending_bytes += size
            self.position += 1

    def _fetch(self, path: Path) -> SourceFile:
        source = inspect(path)
        self.prepare(source)
        return source

    def take(self, path: Path) -> SourceFile:
        future, size = self.pending.pop(path)
        self.pending_bytes -= size
        self._submit_ahead()  # before result(): a vanished file must not stall the rest
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
    before = ledger.earlier_loads(wh, spec.loader, [source.sha256]).get(source.sha256)
    if before and not read_again(before, source):
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
            if before:
                ledger.supersede(
                    wh, spec.loader, source.sha256, before, counts, clock.now
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
        if is_database_error(exc) and not is_disk_full(exc):
            raise LoadFailedError(f"{path}: {first_line(exc)}") from exc
        raise
    finally:
        drop_stage(duck)
    if not counts.reconciles:  # a bug, not bad input: say so loudly
        raise LoadFailedError(f"{path}: counts do not reconcile: {counts}")
    return counts


def read_again(earlier: ledger.EarlierLoad, source: SourceFile) -> bool:
    """Whether bytes already recorded are loaded again: only when nothing of them landed
    and their name now reads them otherwise (files.reading). A misnamed file (plain
    NDJSON named `.gz`, a CSV named `.json`, gzip named `.ndjson`) is one reject that
    says so; renamed, it loads, instead of being "skipped unchanged" forever. Bytes
    whose records landed are never read twice, whatever their name."""
    return earlier.records_landed == 0 and reading(Path(earlier.source_file)) != (
        reading(source.path)
    )


def is_database_error(exc: BaseException) -> bool:
    import duckdb
    import psycopg2

    return isinstance(exc, duckdb.Error | psycopg2.Error)


def timestamp_literal(moment: datetime) -> str:
    return sql_literal(moment.isoformat(sep=" "))
