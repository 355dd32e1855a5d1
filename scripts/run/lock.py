"""One tick at a time on this machine: an exclusive, non-blocking `flock` on a file.

The kernel drops an flock when its holder exits, however it exits (kill -9 included), so a
crashed tick never leaves a stale lock to clean up. The tick's steps inherit the locked
descriptor (scripts/run/steps.py): a step outlives a tick killed with -9, and holds the
lock until it ends, so the next tick cannot start a second writer beside it. The sync
keeps its own warehouse lock (segment_sync.lock), which also guards ticks scheduled on
different machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class RunLockedError(Exception):
    """Another tick holds the lock."""


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold the lock; yields its file descriptor, for the steps to inherit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(
                f"another `audiences run` holds {path} (pid {holder}, or a step it "
                "started, which outlives it); this tick does nothing and the next "
                "one will catch up"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle.fileno()
    finally:
        handle.close()  # closing the descriptor releases the flock
