"""One sync at a time per warehouse: a single row in `segment_sync.lock`.

Taking the lock is an insert on the primary key, so two racing syncs cannot both win.
A row left behind by a dead process is recovered: on this host when its pid is gone (or a
zombie), on any host when its heartbeat is older than `stale_after`. The running sync
refreshes the heartbeat after every send group.

On DuckDB the file lock already keeps a second process out (DuckDB allows one writer);
the row still matters there, because a sync killed with -9 leaves it behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from scripts.segment_sync import outbox
from scripts.segment_sync.outbox import now_utc
from scripts.warehouse import Warehouse


class LockHeldError(Exception):
    """Another live sync holds the lock; the message names it."""


@dataclass(frozen=True)
class Holder:
    owner_token: str
    run_id: str | None
    pid: int
    hostname: str
    acquired_at: datetime
    heartbeat_at: datetime


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child its parent has not reaped yet still answers kill(0).
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split(":", 1)[1].split()[0]
    return True


def is_stale(holder: Holder, now: datetime, stale_after: timedelta) -> bool:
    if now - holder.heartbeat_at > stale_after:
        return True
    if holder.hostname == socket.gethostname():
        return holder.pid != os.getpid() and not _pid_alive(holder.pid)
    return False


def current_holder(wh: Warehouse) -> Holder | None:
    row = outbox.lock_row(wh)
    return Holder(*row) if row else None


def acquire(wh: Warehouse, run_id: str, stale_after: timedelta) -> str:
    """Take the lock or raise LockHeldError; return the token that proves ownership."""
    token = uuid.uuid4().hex
    for _ in range(2):
        now = now_utc()
        try:
            outbox.insert_lock(
                wh,
                token=token,
                run_id=run_id,
                pid=os.getpid(),
                hostname=socket.gethostname(),
                at=now,
            )
            return token
        except Exception:
            holder = current_holder(wh)
            if holder is None:
                continue
            if not is_stale(holder, now, stale_after):
                raise LockHeldError(
                    f"another sync is running (pid {holder.pid} on {holder.hostname}, "
                    f"run {holder.run_id}, started {holder.acquired_at:%Y-%m-%d %H:%M:%S} "
                    f"UTC, heartbeat {holder.heartbeat_at:%H:%M:%S})"
                ) from None
            # Delete only the row we judged stale, so a racing recoverer cannot
            # remove a lock someone else has just taken.
            outbox.delete_lock(wh, holder.owner_token)
    raise LockHeldError(
        "another sync took the lock while this one recovered a stale lock"
    )


def heartbeat(wh: Warehouse, token: str) -> None:
    outbox.touch_lock(wh, token, now_utc())


def release(wh: Warehouse, token: str) -> None:
    outbox.delete_lock(wh, token)
