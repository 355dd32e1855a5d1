"""Whether an error means a disk the load writes to is full, not the file's fault.

A file that reached its size limit (EFBIG: `ulimit -f`, or the largest file a
filesystem allows, 4 GB on FAT32) is the same case: every later write fails alike.

A full disk would fail every later file the same way, so the loaders stop the run at
the first one (runner.DiskFullError) instead of counting files as unreadable, splitting
batches or recording a file as unreadable for good. What it looks like:

- in Python, the OS's errno: ENOSPC (no space left) or EDQUOT (quota exceeded);
- in DuckDB, the OS's words after the file it could not write, on the error's first
  line (a failed commit, a failed checkpoint, a failed write: the exception's type
  varies with the statement), or a block it could not spill to its temp_directory
  ("failed to offload data block", reported as out of memory, without the OS's words);
- in PostgreSQL, SQLSTATE 53100 `disk_full` (PostgreSQL: Appendix A, Error Codes).
"""

from __future__ import annotations

import errno
import os

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
POSTGRES_DISK_FULL = "53100"
# Lower case, matched in the first line of a DuckDB error only: DuckDB may quote a
# record's text on the lines after it, and a record may say anything.
DUCKDB_DISK_FULL_WORDS = (
    *(os.strerror(number).lower() for number in sorted(DISK_FULL_ERRNOS)),
    "failed to offload data block",
)


def is_disk_full(exc: BaseException) -> bool:
    import duckdb
    import psycopg2

    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, psycopg2.Error):
        # The server's first line may quote a value; its SQLSTATE cannot.
        return getattr(exc, "pgcode", None) == POSTGRES_DISK_FULL
    if isinstance(exc, duckdb.Error):
        first = first_line(exc).lower()
        return any(words in first for words in DUCKDB_DISK_FULL_WORDS)
    return False


def what_is_full(exc: BaseException) -> str:
    """What to call it in the line that stops the run: a full disk or a size limit."""
    size_limit = os.strerror(errno.EFBIG).lower()
    if (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or (
        not isinstance(exc, OSError) and size_limit in first_line(exc).lower()
    ):
        return (
            "a file reached its size limit (ulimit -f, or the largest file its "
            "filesystem allows)"
        )
    return "a disk is full"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
