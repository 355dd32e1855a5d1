"""Durable NDJSON landing files with group commit and atomic rotation.

A request thread calls `append()` and gets control back only once its line is fsync'd,
so the receiver never answers 2xx for bytes a crash could lose. Concurrent callers share
one write and one fsync (group commit): whoever finds the writer idle flushes everything
queued so far.

Files grow as `DIR/.incoming/<name>.ndjson.part` and are renamed into `DIR/` when they
reach the size or age limit. A rename inside one filesystem is atomic, and both
directories are fsync'd, so `audiences load webhooks DIR` sees either no file or a
complete one. A crash leaves a `.part` behind; `recover()` cuts a torn last line (never
acknowledged) and finalises it.

One receiver per landing directory: `claim()` locks `.incoming/` for the process's life
before `recover()` runs, so a second receiver started on the same directory (by mistake,
or while the first still runs) is refused instead of publishing the first one's open
file under it. A `.part` that cannot be published (the landing directory read-only for
a while) stays listed and is published by a later rotation, not only by a restart.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

INCOMING = ".incoming"
PART_SUFFIX = ".part"
PROBE_PREFIX = ".probe-"
# Held locked (flock) by the receiver that lands into the directory; holds its pid.
LOCK_NAME = ".receiver.lock"
_TAIL_CHUNK = 64 * 1024
# How long a failed append keeps /healthz unhealthy even if the probe passes: a one-byte
# probe can succeed while full-size events still fail (size limits, an almost-full disk),
# but a health check that never recovers without traffic would hold a load balancer off.
RECENT_FAILURE_SECONDS = 60.0


# At most one disk probe per this many seconds while the disk is healthy, whatever the rate
# of /healthz calls: the endpoint is unauthenticated, and each probe creates, syncs and
# removes a file, so a flood of health checks was a flood of synced writes. A failed probe
# is not kept: the next call probes again, so recovery shows at once.
PROBE_EVERY_SECONDS = 1.0


class LandingError(Exception):
    """A line could not be made durable; the caller must not acknowledge it."""


class LandingBusyError(Exception):
    """Another receiver lands into the same directory."""


@dataclass
class _Pending:
    data: bytes
    done: bool = False
    error: OSError | None = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe_os_error(exc: OSError) -> str:
    """`ENOSPC No space left on device`: what the system said, without the path."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{name} {text}".strip()


def _sync_data(fd: int) -> None:
    # fdatasync also persists the file size, which is all a reader needs.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _last_newline_end(path: Path, size: int) -> int:
    """Length of the file up to and including its last newline (0 if none)."""
    with path.open("rb") as handle:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            handle.seek(start)
            chunk = handle.read(end - start)
            index = chunk.rfind(b"\n")
            if index >= 0:
                return start + index + 1
            end = start
    return 0


class LandingWriter:
    """Appends lines to the current landing file; thread-safe (module docstring)."""

    def __init__(
        self,
        landing_dir: Path,
        *,
        rotate_bytes: int,
        rotate_seconds: float,
        prefix: str = "webhooks",
        log: Callable[[str], None] = lambda message: None,
        probe_every_seconds: float = PROBE_EVERY_SECONDS,
    ):
        self.landing_dir = Path(landing_dir)
        self.incoming_dir = self.landing_dir / INCOMING
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.prefix = prefix
        self._log = log
        self.probe_every_seconds = probe_every_seconds
        # One probe at a time; callers meanwhile wait for its answer and share it.
        self._probe_lock = threading.Lock()
        self._last_healthy_probe: float | None = None  # time.monotonic()
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False  # one thread at a time writes, syncs or rotates
        self._closed = False
        self._fd: int | None = None
        self._part: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._lines_in_file = 0
        self._sequence = 0
        self.files_finalized = 0
        self.bytes_written = 0
        self.events_accepted = 0
        self.fsyncs = 0
        self._last_append_error: tuple[float, str] | None = None
        self._lock_fd: int | None = None
        # Finished files whose rename into the landing directory failed: retried.
        self._unpublished: list[Path] = []

    # ------------------------------------------------------------------ recovery
    def claim(self) -> None:
        """Lock the directory for this process (LandingBusyError if another holds it).

        The lock goes with the process, however it ends (kill -9 included), so a
        `.part` found by the next receiver's `recover()` is never one being written.
        """
        fd = os.open(
            self.incoming_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LandingBusyError(
                f"another receiver (pid {holder}) lands into this directory; run one "
                "receiver per landing directory (give each its own, under one parent "
                "the loader reads)"
            ) from None
        with contextlib.suppress(OSError):  # the pid is for the message above only
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._lock_fd = fd

    def recover(self) -> list[Path]:
        """Finalise `.part` files left by a previous process; return them."""
        finalized = []
        for part in sorted(self.incoming_dir.glob(f"*{PART_SUFFIX}")):
            size = part.stat().st_size
            keep = _last_newline_end(part, size)
            if keep == 0:
                part.unlink()
                self._log(f"recovery: removed {part.name} (no complete line)")
                continue
            if keep < size:
                with part.open("r+b") as handle:
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
                self._log(
                    f"recovery: cut a torn last line of {size - keep} bytes "
                    f"from {part.name}"
                )
            final = self._publish(part)
            self._log(f"recovery: finalized {final.name} ({keep} bytes)")
            finalized.append(final)
        if finalized:
            _fsync_dir(self.incoming_dir)
        return finalized

    # ------------------------------------------------------------------ writing
    def append(self, line: bytes) -> None:
        """Block until `line` plus a newline is fsync'd, else raise LandingError."""
        item = _Pending(line + b"\n")
        with self._cond:
            if self._closed:
                raise LandingError("the landing writer is closed")
            self._queue.append(item)
            while not item.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch, self._queue = self._queue, []
                self._busy = True
                self._cond.release()
                error: OSError | None = None
                try:
                    self._write_batch(batch)
                except OSError as exc:
                    error = exc
                finally:
                    self._cond.acquire()
                for pending in batch:
                    pending.done = True
                    pending.error = error
                if error is None:
                    self.events_accepted += len(batch)
                    self._last_append_error = None
                else:
                    self._last_append_error = (
                        time.monotonic(),
                        describe_os_error(error),
                    )
                self._busy = False
                self._cond.notify_all()
        if item.error is not None:
            raise LandingError(f"landing write failed: {item.error}") from None

    def _write_batch(self, batch: list[_Pending]) -> None:
        if self._fd is None:
            self._open_new()
        assert self._fd is not None
        data = b"".join(pending.data for pending in batch)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            _sync_data(self._fd)
            if os.fstat(self._fd).st_nlink == 0:
                # Deleted under us (the landing directory removed): the bytes are
                # synced into a file nobody can reach, so they are not acknowledged.
                raise FileNotFoundError(
                    errno.ENOENT, "the landing file was deleted while being written"
                )
        except OSError:
            self._abandon_current()
            raise
        self.fsyncs += 1
        self._size += len(data)
        self._lines_in_file += len(batch)
        self.bytes_written += len(data)
        if self._size >= self.rotate_bytes or self._age() >= self.rotate_seconds:
            self._finalize_current()

    def _age(self) -> float:
        return time.monotonic() - self._opened_at

    def _open_new(self) -> None:
        while True:
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            name = f"{self.prefix}-{stamp}-{os.getpid()}-{self._sequence:06d}.ndjson"
            part = self.incoming_dir / (name + PART_SUFFIX)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
            try:
                self._fd = os.open(part, flags, 0o644)
            except FileExistsError:
                continue
            except FileNotFoundError:
                # The directory was removed (by hand, or a cleanup job): made again,
                # so that the receiver lands again without a restart.
                self.incoming_dir.mkdir(parents=True, exist_ok=True)
                self._log(f"made {self.incoming_dir} again: it had been removed")
                self._fd = os.open(part, flags, 0o644)
            break
        # The new directory entry must survive a crash too, or acked lines vanish.
        _fsync_dir(self.incoming_dir)
        self._part = part
        self._opened_at = time.monotonic()
        self._size = 0
        self._lines_in_file = 0

    def _publish(self, part: Path) -> Path:
        """Rename a complete `.part` into the landing dir, never overwriting a file."""
        final = self.landing_dir / part.name[: -len(PART_SUFFIX)]
        counter = 0
        while final.exists():
            counter += 1
            final = (
                self.landing_dir
                / f"{part.name[: -len(PART_SUFFIX) - 7]}-{counter}.ndjson"
            )
        os.rename(part, final)
        _fsync_dir(self.landing_dir)
        return final

    def _finalize_current(self) -> None:
        if self._fd is None or self._part is None:
            return
        fd, part, size, lines = self._fd, self._part, self._size, self._lines_in_file
        self._fd = None
        self._part = None
        os.close(fd)
        if size == 0:
            part.unlink()
            return
        try:
            final = self._publish(part)
        except OSError as exc:
            if not part.exists():  # its directory was moved or removed
                self._log(f"error: {part.name} is no longer at {part.parent}")
                return
            # Its lines are durable (acknowledged); the rename is retried by the next
            # rotations (publish_left_over), and /healthz says why it waits.
            self._unpublished.append(part)
            self._log(
                f"error: could not publish {part.name} into {self.landing_dir} "
                f"({describe_os_error(exc)}); retried at each rotation"
            )
            return
        _fsync_dir(self.incoming_dir)
        self.files_finalized += 1
        self._log(f"rotated {final.name} ({size} bytes, {lines} events)")

    def publish_left_over(self) -> None:
        """Publish the finished files an earlier rename failed for (caller is busy)."""
        waiting, self._unpublished = self._unpublished, []
        for position, part in enumerate(waiting):
            try:
                final = self._publish(part)
            except FileNotFoundError:
                self._log(f"error: {part.name} is no longer at {part.parent}")
                continue
            except OSError:
                self._unpublished.extend(waiting[position:])
                return
            self.files_finalized += 1
            self._log(f"published {final.name}, which had waited")

    def _abandon_current(self) -> None:
        """After a failed write: drop the unacknowledged tail and start a fresh file."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        try:
            self._finalize_current()
        except OSError as exc:
            self._log(f"error: could not finalize after a failed write: {exc}")
            self._fd = None
            self._part = None

    # ------------------------------------------------------------------ health
    def probe(self) -> str | None:
        """Why a write would fail now, or None: create, write, fsync, unlink a file.

        The same steps an append takes (a new file in `.incoming/`, a data block, a sync),
        so a read-only directory, a full disk or a vanished directory all show up here.
        """
        name = f"{PROBE_PREFIX}{os.getpid()}-{threading.get_ident()}"
        probe = self.incoming_dir / name
        published = self.landing_dir / name  # hidden: the loader never reads it
        try:
            fd = os.open(
                probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600
            )
            try:
                os.write(fd, b"\n")
                _sync_data(fd)
            finally:
                os.close(fd)
            try:
                os.rename(probe, published)  # what a rotation does
            except OSError as exc:
                return (
                    "cannot publish finished files into the landing directory: "
                    f"{describe_os_error(exc)}"
                )
        except OSError as exc:
            return f"cannot write to the landing directory: {describe_os_error(exc)}"
        finally:
            for path in (probe, published):
                with contextlib.suppress(OSError):
                    path.unlink()
        return None

    def recent_probe(self) -> str | None:
        """probe(), or None when a probe passed less than probe_every_seconds ago."""
        with self._probe_lock:
            last = self._last_healthy_probe
            if last is not None and time.monotonic() - last < self.probe_every_seconds:
                return None
            problem = self.probe()
            self._last_healthy_probe = time.monotonic() if problem is None else None
            return problem

    def health_problem(self) -> str | None:
        """Why the receiver cannot land events now (probe or a recent failed append)."""
        problem = self.recent_probe()
        if problem is not None:
            return problem
        with self._cond:
            failure = self._last_append_error
            waiting = len(self._unpublished)
        if (
            failure is not None
            and time.monotonic() - failure[0] < RECENT_FAILURE_SECONDS
        ):
            return f"the last event could not be stored: {failure[1]}"
        if waiting:
            return f"{waiting} finished file(s) wait to be published"
        return None

    # ------------------------------------------------------------------ rotation
    def rotate_if_due(self, force: bool = False) -> None:
        """Finalise the current file if it is old enough (or always, with force)."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            due = self._fd is not None and (force or self._age() >= self.rotate_seconds)
            if not due and not self._unpublished:
                return
            self._busy = True
        try:
            if self._unpublished:
                self.publish_left_over()
            if due:
                self._finalize_current()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def close(self) -> None:
        """Finalise the current file; later appends fail."""
        with self._cond:
            self._closed = True
        self.rotate_if_due(force=True)

    def status(self) -> dict[str, object]:
        with self._cond:
            return {
                "files": self.files_finalized,
                "bytes": self.bytes_written,
                "events": self.events_accepted,
                "current_file_bytes": self._size if self._fd is not None else 0,
            }
