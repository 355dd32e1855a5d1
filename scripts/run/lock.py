"""One tick at a time on this machine: an exclusive, non-blocking `flock` on a file.

The kernel drops an flock when its holder exits, however it exits (kill -9 included), so a
crashed tick never leaves a stale lock to clean up. The tick's steps inherit the locked
descriptor (scripts/run/steps.py): a step outlives a tick killed with -9, and holds the
lock until it ends, so the next tick cannot start a second writer beside it. The sync
keeps its own warehouse lock (segment_sync.lock), which also guards ticks scheduled on
different machines.

The file holds the holder's pid and nothing else. A path that holds anything else (a
`--lock-file` pointed at the warehouse by mistake) is refused, never emptied. A lock
file removed while a tick holds it lets the next tick lock a new file at the same path
beside the running one; so the default one is not in target/, which `dbt clean`
removes, and a tick that has locked a file checks that it is still the one at the path
(it may have been replaced between opening and locking), and locks the new one if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# What this module writes: a pid and a newline (nothing in a file just created; a pid
# cut short by a full disk is still ours).
LOCK_CONTENT = re.compile(rb"(\d{1,10}\n?)?")


class RunLockedError(Exception):
    """Another tick holds the lock."""


class LockFileError(Exception):
    """The lock file cannot be used: not a lock file, or not a file that can be opened."""


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold the lock; yields its file descriptor, for the steps to inherit."""
    handle = _locked(path)
    try:
        handle.seek(0)
        if not LOCK_CONTENT.fullmatch(handle.read(16)):
            raise LockFileError(
                f"{path} holds something other than a tick's pid; it is left as it "
                "is: give --lock-file (AUDIENCES_RUN_LOCK) a path of its own"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        yield handle.fileno()
    finally:
        handle.close()  # closing the descriptor releases the flock


def _locked(path: Path) -> BinaryIO:
    """The file at `path`, locked, and still the file at `path` once locked."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LockFileError(f"cannot create the folder of {path}: {exc}") from None
    while True:
        try:
            handle = path.open("a+b")
        except OSError as exc:
            raise LockFileError(f"cannot open {path}: {exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(16).decode("ascii", "replace").strip() or "unknown"
            handle.close()
            raise RunLockedError(
                f"another `audiences run` holds {path} (pid {holder}, or a step it "
                "started, which outlives it); this tick does nothing and the next "
                "one will catch up"
            ) from None
        if _is_at(handle, path):
            return handle
        handle.close()  # removed or replaced while we locked it: lock what is there now


def _is_at(handle: BinaryIO, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)
