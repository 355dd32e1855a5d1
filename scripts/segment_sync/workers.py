"""Sending in one process or in several, behind the same prepare/submit/complete calls.

One process tops out near one core: the library's consumer thread re-serialises every
message (twice: once to size the batch, once for the body) and shares the GIL with the
thread that builds and enqueues. `WorkerPool` runs N sending processes instead, each
with its own `segment.analytics.Client` (thread=1, never sync_mode: see
docs/segment-http-api.md) wrapped in a `SegmentSender`, so every guarantee of client.py
holds per process.

- **Ownership.** The parent alone touches the warehouse (DuckDB has one writer). It sends
  each worker its slice of the group as outbox rows; a worker builds the payloads, sends
  them and answers with a `GroupResult` (confirmed and failed ids). Rows are split by a
  hash of `user_id`, so one person's messages (an identify and its track, in seq order)
  stay in one process and reach Segment in order.
- **Completeness.** Every id a worker was given and did not report (it died, or answered
  with an error) counts as a transient failure: it stays `pending` and the next run
  resends it with the same id. A dead worker also stops the run (exit 5 after the group
  is recorded), so nothing is sent without a process to confirm it.
- **No orphans.** A worker asks the kernel for SIGKILL when its parent dies
  (prctl PR_SET_PDEATHSIG, Linux) and otherwise watches its parent pid; a worker whose
  parent was killed with -9 therefore stops sending at once, and its unconfirmed
  messages are still pending in the outbox. Workers ignore SIGINT, SIGTERM and SIGHUP
  (scripts/stop_signals.py): the parent gets them too (same process group), finishes
  the group and closes the workers, which flush() and join() their clients before
  exiting.
- **Rate.** Each of N workers paces its requests at max_rps / N, so the combined rate
  stays under --max-rps.

Workers are `python -m scripts.segment_sync.workers <parent pid>` subprocesses talking
over their stdin/stdout pipes with `multiprocessing.connection` framing (pickles between
our own processes only). Not `multiprocessing.Process`: its spawn mode re-imports the
caller's `__main__`, which breaks any script without a main guard, and fork would copy
a process holding DuckDB's threads. The write key travels in the first message on the
pipe, never in argv or a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, cast

from scripts import stop_signals
from scripts.segment_sync.client import Failure, GroupResult, SegmentSender
from scripts.segment_sync.payloads import PayloadBuilder, build_from_row
from scripts.segment_sync.redact import Redactor, library_logging

# Below this many pending messages one process is as fast (a worker costs ~1 s to start).
AUTO_WORKERS_FROM = 50_000
AUTO_WORKERS = 2
# How long close() waits for a worker to finish its group, flush and join.
CLOSE_TIMEOUT = 120.0
PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class SenderConfig:
    write_key: str = field(repr=False)
    host: str
    upload_size: int
    group_size: int
    max_rps: float
    max_retries: int
    timeout: float
    gzip: bool
    max_rate_limit_seconds: float


def choose_workers(requested: int | None, pending: int) -> int:
    if requested is not None:
        return requested
    if pending < AUTO_WORKERS_FROM:
        return 1
    return max(1, min(AUTO_WORKERS, os.cpu_count() or 1))


def _segment_sender(config: SenderConfig, redact: Redactor) -> SegmentSender:
    return SegmentSender(
        config.write_key,
        config.host,
        redact=redact,
        upload_size=config.upload_size,
        group_size=config.group_size,
        max_rps=config.max_rps,
        max_retries=config.max_retries,
        timeout=config.timeout,
        gzip=config.gzip,
        max_rate_limit_seconds=config.max_rate_limit_seconds,
    )


class LocalSender:
    """One process: this thread builds and enqueues, the library's thread uploads."""

    workers = 1

    def __init__(self, config: SenderConfig, redact: Redactor):
        self._sender = _segment_sender(config, redact)
        self._builder = PayloadBuilder()

    def prepare(self, rows: list[tuple]) -> list[dict[str, Any]]:
        builder = self._builder
        return [build_from_row(builder, row) for row in rows]

    def submit(self, prepared: list[dict[str, Any]]) -> None:
        self._sender.submit(prepared)

    def complete(self) -> GroupResult:
        return self._sender.complete()

    def close(self) -> None:
        self._sender.close()


class WorkerPool:
    """N sending processes; see the module docstring for what each guarantees."""

    def __init__(self, config: SenderConfig, redact: Redactor, workers: int):
        if workers < 2:
            raise ValueError("a pool has at least two workers; use LocalSender")
        self.workers = workers
        self._redact = redact
        share = asdict(replace(config, max_rps=config.max_rps / workers))
        self._procs: list[subprocess.Popen[bytes]] = []
        self._to: list[Connection] = []
        self._from: list[Connection] = []
        self._dead: dict[int, str] = {}
        self._in_flight: list[list[tuple]] | None = None
        try:
            for _ in range(workers):
                proc = subprocess.Popen(  # noqa: S603 (our interpreter, our module)
                    [sys.executable, "-m", __name__, str(os.getpid())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                self._procs.append(proc)
                assert proc.stdin is not None
                assert proc.stdout is not None
                self._to.append(Connection(os.dup(proc.stdin.fileno()), readable=False))
                self._from.append(
                    Connection(os.dup(proc.stdout.fileno()), writable=False)
                )
                proc.stdin.close()
                proc.stdout.close()
                self._to[-1].send(share)
        except BaseException:
            self.close()
            raise

    def prepare(self, rows: list[tuple]) -> list[list[tuple]]:
        slices: list[list[tuple]] = [[] for _ in range(self.workers)]
        n = self.workers
        for row in rows:
            slices[hash(row[6]) % n].append(row)
        return slices

    def submit(self, prepared: list[list[tuple]]) -> None:
        if self._in_flight is not None:
            raise RuntimeError("complete() the previous group first")
        self._in_flight = prepared
        for number, rows in enumerate(prepared):
            if rows and number not in self._dead:
                try:
                    self._to[number].send(("group", rows))
                except OSError:
                    self._mark_dead(number)

    def complete(self) -> GroupResult:
        prepared, self._in_flight = self._in_flight or [], None
        result = GroupResult()
        waiting = {
            self._from[number]: number
            for number, rows in enumerate(prepared)
            if rows and number not in self._dead
        }
        while waiting:
            for ready in wait(list(waiting)):
                conn = cast(Connection, ready)  # wait() returns what it was given
                number = waiting.pop(conn)
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    self._mark_dead(number)
                    continue
                if kind == "ok":
                    self._merge(result, payload, prepared[number])
                else:
                    self._mark_dead(number, f"sending process failed: {payload}")
        for number, rows in enumerate(prepared):
            if rows and number in self._dead:
                reason = self._dead[number]
                for row in rows:
                    result.failed[row[1]] = Failure(reason, row_level=False)
                result.fatal = result.fatal or reason
        return result

    def _merge(self, result: GroupResult, part: GroupResult, rows: list[tuple]) -> None:
        given = {row[1] for row in rows}
        confirmed = [mid for mid in part.confirmed if mid in given]
        result.confirmed.extend(confirmed)
        result.failed.update(
            (mid, failure) for mid, failure in part.failed.items() if mid in given
        )
        unreported = given.difference(confirmed, part.failed)
        for mid in unreported:  # defensive: never count an unreported id as sent
            result.failed[mid] = Failure("not reported by its sending process", False)
        result.fatal = result.fatal or part.fatal
        result.requests_bisected += part.requests_bisected

    def _mark_dead(self, number: int, reason: str | None = None) -> None:
        if number in self._dead:
            return
        proc = self._procs[number]
        if reason is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            reason = f"sending process {number} died (exit code {proc.returncode})"
        self._dead[number] = self._redact(reason)[:500]

    def close(self) -> None:
        """Ask every worker to flush and join its client, then reap it (idempotent)."""
        for number, conn in enumerate(self._to):
            if number not in self._dead:
                with contextlib.suppress(OSError):
                    conn.send(("close", None))
        for proc in self._procs:
            try:
                proc.wait(timeout=CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:  # stuck: what it had is still pending
                proc.kill()
                proc.wait()
        for conn in (*self._to, *self._from):
            conn.close()
        self._to, self._from, self._procs = [], [], []


class Sender(Protocol):
    """What the run sees of LocalSender and WorkerPool: `prepare` rows (its own
    representation), `submit` one group, `complete` it, `close` on every exit path."""

    workers: int

    def prepare(self, rows: list[tuple]) -> Any: ...

    def submit(self, prepared: Any) -> None: ...

    def complete(self) -> GroupResult: ...

    def close(self) -> None: ...


def open_sender(config: SenderConfig, redact: Redactor, workers: int) -> Sender:
    if workers <= 1:
        return LocalSender(config, redact)
    return WorkerPool(config, redact, workers)


# ---------------------------------------------------------------------- worker side
def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if not armed:
        threading.Thread(
            target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch"
        ).start()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(PARENT_POLL_SECONDS):  # polling: no portable death signal
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker_main(parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    for sig in stop_signals.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    # The pipes are the channel: keep stray prints out of it.
    out = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    inbox = Connection(os.dup(0), writable=False)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        config = SenderConfig(**inbox.recv())
    except EOFError:
        return
    redact = Redactor(config.write_key)
    try:
        with library_logging(redact):
            sender = _segment_sender(config, redact)
            try:
                _serve(inbox, out, sender)
            finally:
                sender.close()
    except Exception as exc:
        with contextlib.suppress(OSError):
            out.send(("error", redact(f"{type(exc).__name__}: {exc}")[:500]))


def _serve(inbox: Connection, out: Connection, sender: SegmentSender) -> None:
    builder = PayloadBuilder()
    while True:
        try:
            kind, rows = inbox.recv()
        except EOFError:  # the parent is gone
            return
        if kind == "close":
            return
        messages = [build_from_row(builder, row) for row in rows]
        out.send(("ok", sender.send(messages)))


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]))
