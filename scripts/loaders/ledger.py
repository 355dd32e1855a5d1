"""The loaders' bookkeeping in `raw_loader`: which files are loaded, what was rejected.

`loaded_files` has one row per (loader, content sha256) fully loaded, written in the same
transaction as the file's rows, so "is this file loaded?" is answered by the warehouse
itself and a crash can never leave a file half-recorded. Its counts reconcile:
`records_read = records_loaded + records_duplicate + records_rejected`.

`rejects` has one row per rejected record with a machine `reason` code, a human `detail`
and the raw text (first 64 KB). One reason is not a rejection: a record whose key is
already known but whose body differs is counted as a duplicate (the first body wins and
stays) and also noted here as `duplicate_key_different_body`, so a conflicting re-send is
visible instead of silently dropped. Those rows are excluded from `records_rejected`.
Reject rows are never deleted; one that a later load of the same file fixed (a torn
last line, a cut .gz) gets `resolved_at` (see `resolve_fixed_rejects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scripts.warehouse import Warehouse

CONFLICT_REASON = "duplicate_key_different_body"

LOADED_FILES_DDL = """
create table if not exists raw_loader.loaded_files (
    loader varchar not null,
    file_sha256 varchar not null,
    source_file varchar,
    file_bytes bigint,
    records_read bigint,
    records_loaded bigint,
    records_duplicate bigint,
    records_rejected bigint,
    records_conflicting bigint,
    loaded_at timestamp,
    primary key (loader, file_sha256)
)"""

# The column list `load api` writes too (scripts/loaders/api_store.py); extra columns are added
# below with `add column if not exists` so either loader may create the table first.
REJECTS_DDL = """
create table if not exists raw_loader.rejects (
    loader varchar,
    source_file varchar,
    source_line bigint,
    reason varchar,
    raw_text varchar,
    rejected_at timestamp
)"""
REJECTS_EXTRA_COLUMNS = (
    "detail varchar",
    "file_sha256 varchar",
    # Set when a later load of the same file fixed what was rejected (see below).
    "resolved_at timestamp",
    "resolved_by_sha256 varchar",
)
# Rejects a writer's next version of the same file can fix: a torn last line (the
# writer was mid-line when the file was read) and a .gz cut short or still being
# written. Any other reason is about the record's content and stays until a person acts.
TORN_LINE_REASONS = ("invalid_json",)
WHOLE_FILE_REASONS = ("truncated_gzip", "invalid_gzip")


def ensure_ledger(wh: Warehouse) -> None:
    wh.ensure_schema("raw_loader")
    wh.execute(LOADED_FILES_DDL)
    wh.execute(REJECTS_DDL)
    for column in REJECTS_EXTRA_COLUMNS:
        wh.execute(f"alter table raw_loader.rejects add column if not exists {column}")


def resolve_fixed_rejects(
    wh: Warehouse,
    duck,
    loader: str,
    source_file: str,
    sha256: str,
    file_complete: bool,
    resolved_at: datetime,
) -> None:
    """Mark earlier rejects of this path that the file now being loaded fixes.

    Runs in the file's transaction, after its rows are staged in `_ld_class`. A torn
    line is fixed when the same line of the same path is now a valid record; a cut or
    unreadable .gz is fixed when the same path now reads to its end. The reject rows
    stay (history), with `resolved_at` and the sha256 of the load that fixed them.
    """
    torn = ", ".join(f"'{reason}'" for reason in TORN_LINE_REASONS)
    lines = [
        row[0]
        for row in wh.query(
            "select distinct source_line from raw_loader.rejects where loader = %s "
            f"and source_file = %s and resolved_at is null and reason in ({torn}) "
            "and file_sha256 <> %s and source_line is not null",
            (loader, source_file, sha256),
        )
    ]
    fixed: list[int] = []
    if lines:
        fixed = [
            row[0]
            for row in duck.execute(
                "select line_no from _ld_class where reason is null and line_no in "
                f"({', '.join(str(int(line)) for line in lines)})"
            ).fetchall()
        ]
    conditions = []
    if fixed:
        conditions.append(
            f"(reason in ({torn}) and source_line in "
            f"({', '.join(str(int(line)) for line in fixed)}))"
        )
    if file_complete:
        whole = ", ".join(f"'{reason}'" for reason in WHOLE_FILE_REASONS)
        conditions.append(f"reason in ({whole})")
    if not conditions:
        return
    wh.execute(
        "update raw_loader.rejects set resolved_at = %s, resolved_by_sha256 = %s "
        "where loader = %s and source_file = %s and resolved_at is null "
        f"and file_sha256 <> %s and ({' or '.join(conditions)})",
        (resolved_at, sha256, loader, source_file, sha256),
    )


@dataclass(frozen=True)
class EarlierLoad:
    """A load already recorded for a file's bytes: under which name, and how many of its
    records landed (loaded or duplicate)."""

    source_file: str
    records_landed: int


def earlier_loads(
    wh: Warehouse, loader: str, checksums: list[str]
) -> dict[str, EarlierLoad]:
    """The recorded loads of these file checksums: one query for a whole batch."""
    if not checksums:
        return {}
    marks = ", ".join(["%s"] * len(checksums))
    return {
        row[0]: EarlierLoad(row[1], int(row[2] or 0) + int(row[3] or 0))
        for row in wh.query(
            "select file_sha256, source_file, records_loaded, records_duplicate "
            f"from raw_loader.loaded_files where loader = %s and file_sha256 in ({marks})",
            (loader, *checksums),
        )
    }


def supersede(
    wh: Warehouse,
    loader: str,
    sha256: str,
    earlier: EarlierLoad,
    counts: Counts,
    resolved_at: datetime,
) -> None:
    """In the transaction of a load that reads the same bytes again under another name
    (a misnamed file renamed: runner.read_again), before its own ledger row is written:
    the earlier row, whose load landed nothing, goes (the ledger has one row per
    loader and checksum), and the earlier load's rejects are marked resolved by this
    one when it landed records. They stay, as every reject does."""
    wh.execute(
        "delete from raw_loader.loaded_files where loader = %s and file_sha256 = %s",
        (loader, sha256),
    )
    if counts.loaded + counts.duplicate == 0:
        return
    wh.execute(
        "update raw_loader.rejects set resolved_at = %s, resolved_by_sha256 = %s "
        "where loader = %s and file_sha256 = %s and source_file = %s "
        "and resolved_at is null",
        (resolved_at, sha256, loader, sha256, earlier.source_file),
    )


def paths_with_open_rejects(wh: Warehouse, loader: str, paths: list[str]) -> set[str]:
    """Paths whose earlier loads left rejects a new version may fix (see above)."""
    if not paths:
        return set()
    reasons = ", ".join(f"'{r}'" for r in (*TORN_LINE_REASONS, *WHOLE_FILE_REASONS))
    marks = ", ".join(["%s"] * len(paths))
    return {
        row[0]
        for row in wh.query(
            "select distinct source_file from raw_loader.rejects where loader = %s "
            f"and resolved_at is null and reason in ({reasons}) "
            f"and source_file in ({marks})",
            (loader, *paths),
        )
    }


@dataclass
class Counts:
    """Records of one file or one run; `read` always equals the sum of the other three."""

    read: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0
    conflicting: int = 0

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.loaded += other.loaded
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.conflicting += other.conflicting

    @property
    def reconciles(self) -> bool:
        return self.read == self.loaded + self.duplicate + self.rejected

    @property
    def reject_pct(self) -> float:
        return 100.0 * self.rejected / self.read if self.read else 0.0


def record_file(
    wh: Warehouse,
    loader: str,
    sha256: str,
    path: str,
    size: int,
    counts: Counts,
    loaded_at: datetime,
) -> None:
    wh.execute(
        "insert into raw_loader.loaded_files (loader, file_sha256, source_file, "
        "file_bytes, records_read, records_loaded, records_duplicate, records_rejected, "
        "records_conflicting, loaded_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            loader,
            sha256,
            path,
            size,
            counts.read,
            counts.loaded,
            counts.duplicate,
            counts.rejected,
            counts.conflicting,
            loaded_at,
        ),
    )


@dataclass
class RunSummary:
    loader: str
    counts: Counts = field(default_factory=Counts)
    files_loaded: int = 0
    files_skipped: int = 0
    files_vanished: int = 0  # deleted or moved during the run: not an error
    # may still be being written (files.still_being_written): a later run loads them
    files_waiting: int = 0
    # could not be read (permissions, I/O) or named (not UTF-8): exit 4
    files_unreadable: int = 0
    # batches DuckDB failed as a whole, loaded again in halves (runner._load_batch)
    batches_split: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        c = self.counts
        text = (
            f"{self.loader}: read {c.read} = loaded {c.loaded} + duplicate "
            f"{c.duplicate} + rejected {c.rejected} (files: {self.files_loaded} loaded, "
            f"{self.files_skipped} skipped unchanged) in {self.seconds:.1f}s"
        )
        if self.files_vanished or self.files_unreadable:
            text += (
                f"; not loaded: {self.files_vanished} vanished during the run, "
                f"{self.files_unreadable} unreadable"
            )
        if self.files_waiting:
            text += (
                f"; {self.files_waiting} may still be being written, left for a later "
                "run (stderr names them)"
            )
        if self.batches_split:
            text += (
                f"; {self.batches_split} batches failed as a whole and were loaded "
                "again in halves (stderr says why)"
            )
        if c.conflicting:
            text += (
                f"; {c.conflicting} duplicates had a different body "
                f"(raw_loader.rejects reason {CONFLICT_REASON})"
            )
        return text
