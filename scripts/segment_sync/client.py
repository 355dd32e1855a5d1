"""Delivery through segment-analytics-python 2.4.0, with per-message confirmation.

The library batches, retries with backoff and honours `Retry-After`, but reports only
failures (`on_error(exc, batch)`) and drops silently when its queue is full or the process
exits unflushed (docs/segment-http-api.md, "analytics-python"). So a `SegmentSender` sends *groups*:

1. put every message of the group on the library's queue; `queue.Full` (the library's
   own "queue is full" condition) is handled by flushing and retrying, never ignored;
2. `flush()`: it returns once every item was uploaded or handed to `on_error`
   (on_error runs before the consumer marks the items done, and rate-limited batches
   are re-queued before theirs are, so nothing is still in flight);
3. every message of the group that no `on_error` call reported is confirmed (2xx).

A batch refused with 400/413/422 (Segment refuses a whole batch for one bad event) is
split in halves and each half sent again until the refused messages are alone; those are
row-level failures, the rest are confirmed. Other failures (5xx or network errors after
the library's retries, rate-limit budget exceeded) are transient: those messages stay
pending for the next run. 401/403/404 mean the key or host is wrong: the run stops.

Library settings: `thread=1` (thread>1 leaks consumers) and never `sync_mode` (no
retries, broken `join()`), both in docs/segment-http-api.md; `upload_size` ≤ 2500
(Segment answers 200 and drops bigger batches); the library caps each batch at 475,000
bytes. `close()` flushes and joins, and the caller runs it on every exit path.

The library's own `flush()` is `queue.join()`, with no timeout: a message its consumer
drops without `task_done()` (one over 32 KB as it measures, or one `json.dumps` cannot
serialise: `Consumer.next`) makes it wait for ever, and the sync with it. So the sender
waits on the queue itself and watches for progress: a request started or ended, or the
count of unfinished messages changed. With none for `stall_seconds` (by default twice the
longest quiet spell the library allows itself, a 300 s Retry-After, plus a minute) the
group is given up: its unreported messages stay pending (they are resent with the same
messageIds, which Segment dedupes) and the run stops (`GroupResult.fatal`).

The requests-per-second ceiling is enforced on every HTTP request the library makes
(retries included) by a pacing adapter mounted on the library's `requests` session for
this host only.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from segment.analytics import Client
from segment.analytics import request as segment_request
from segment.analytics.request import MAX_RETRY_AFTER_SECONDS

from scripts.ratelimit import RateLimiter

MAX_UPLOAD_SIZE = 2500
ROW_LEVEL_STATUSES = frozenset({400, 413, 422})
FATAL_STATUSES = frozenset({401, 403, 404})
# How long the consumer waits to fill a batch. Groups are enqueued in one burst, so a
# short wait only trims the tail batch of each group instead of idling 0.5 s per group.
UPLOAD_INTERVAL = 0.05
SWITCH_INTERVAL = 0.05
# How often a waiting flush looks for progress (it wakes at once when the queue drains).
DRAIN_POLL_SECONDS = 1.0
# The library's longest quiet spells: a Retry-After wait (capped) and a retry backoff.
LIBRARY_BACKOFF_CAP_SECONDS = 60.0


def default_stall_seconds(timeout: float) -> float:
    """No progress for this long means the library lost track of a message."""
    quiet = max(MAX_RETRY_AFTER_SECONDS, LIBRARY_BACKOFF_CAP_SECONDS, timeout)
    return 2 * quiet + 60.0


@dataclass
class Failure:
    reason: str
    row_level: bool  # refused on its own (isolated), not a transient delivery failure


@dataclass
class GroupResult:
    confirmed: list[str] = field(default_factory=list)
    failed: dict[str, Failure] = field(default_factory=dict)
    fatal: str | None = None
    requests_bisected: int = 0


class _PacedAdapter(HTTPAdapter):
    """Mounts the project's RateLimiter on the library's session: every request it
    makes, retries included, waits for its turn. It also tells whether a request is
    under way, or when one last ended: the sender's sign that the library is at work
    (a slow answer is bounded by the library's `timeout`, not by the stall watch)."""

    def __init__(self, max_rps: float):
        super().__init__(pool_connections=1, pool_maxsize=2)
        self._limiter = RateLimiter(max_rps)
        self._under_way = 0
        self._last_ended = time.monotonic()

    def last_activity(self) -> float:
        return time.monotonic() if self._under_way else self._last_ended

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._limiter.acquire()
        self._under_way += 1  # one consumer thread: no lock needed
        try:
            return super().send(request, *args, **kwargs)
        finally:
            self._under_way -= 1
            self._last_ended = time.monotonic()


class SegmentSender:
    def __init__(
        self,
        write_key: str,
        host: str,
        *,
        redact: Callable[[str], str],
        upload_size: int = MAX_UPLOAD_SIZE,
        group_size: int = 20_000,
        max_rps: float = 100.0,
        max_retries: int = 10,
        timeout: float = 15.0,
        gzip: bool = False,
        max_rate_limit_seconds: float = 1800.0,
        stall_seconds: float | None = None,
    ):
        if not 1 <= upload_size <= MAX_UPLOAD_SIZE:
            raise ValueError(f"upload_size must be 1..{MAX_UPLOAD_SIZE}")
        self._redact = redact
        self._stall_seconds = (
            default_stall_seconds(timeout) if stall_seconds is None else stall_seconds
        )
        # Set when a flush gave up: the library's queue then never drains again.
        self._stalled: str | None = None
        self._errors: list[tuple[BaseException, list[dict[str, Any]]]] = []
        self._errors_lock = threading.Lock()
        self._closed = False
        prefix = host.rstrip("/") + "/"
        self._adapter = _PacedAdapter(max_rps)
        segment_request._session.mount(prefix, self._adapter)
        self._client = Client(
            write_key,
            host=host,
            on_error=self._on_error,
            # Room for a whole group plus a re-queued batch, so a put never meets a
            # full queue in normal operation.
            max_queue_size=group_size + 2 * upload_size,
            upload_size=upload_size,
            upload_interval=UPLOAD_INTERVAL,
            gzip=gzip,
            max_retries=max_retries,
            timeout=timeout,
            thread=1,
            sync_mode=False,
            max_rate_limit_duration=max_rate_limit_seconds,
        )
        self.queue_full_waits = 0
        self._in_flight: list[dict[str, Any]] | None = None
        # The producer (this thread) and the library's consumer share the GIL. With the
        # default 5 ms switch interval they preempt each other on every queue operation;
        # 50 ms lets each run in long stretches (measured 19 s → 13 s for 200k messages).
        # Blocking I/O still releases the GIL at once.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)

    # ------------------------------------------------------------------ library hooks
    def _on_error(self, error: BaseException, batch: list[dict[str, Any]]) -> None:
        with self._errors_lock:
            self._errors.append((error, list(batch)))

    def _put_all(self, messages: list[dict[str, Any]]) -> None:
        put = self._client.queue.put_nowait
        for message in messages:
            if self._stalled:
                return  # the group is given up whole (complete() reports it)
            try:
                put(message)
            except queue.Full:
                # The library would drop the message here; wait for room instead.
                self.queue_full_waits += 1
                if self._drain():
                    put(message)

    def _drain(self) -> bool:
        """The library's flush() with a stall watch: True once every queued message
        was uploaded or handed to on_error; False (and `_stalled` set) when nothing
        moved for `stall_seconds`."""
        if self._stalled:
            return False
        waiting = self._client.queue
        with waiting.all_tasks_done:
            unfinished = waiting.unfinished_tasks
            moved_at = time.monotonic()
            while waiting.unfinished_tasks:
                waiting.all_tasks_done.wait(DRAIN_POLL_SECONDS)
                now = time.monotonic()
                if waiting.unfinished_tasks != unfinished:
                    unfinished, moved_at = waiting.unfinished_tasks, now
                quiet = now - max(moved_at, self._adapter.last_activity())
                if waiting.unfinished_tasks and quiet >= self._stall_seconds:
                    self._stalled = (
                        f"the delivery library stopped accounting for {unfinished} "
                        f"message(s): nothing moved for {quiet:.0f} s (it drops a "
                        "message it cannot serialise without telling its queue); "
                        "this group stays pending and is resent with the same "
                        "messageIds next run"
                    )
                    return False
        return True

    def _collect(self) -> list[tuple[BaseException, list[dict[str, Any]]]]:
        self._drain()
        with self._errors_lock:
            errors, self._errors = self._errors, []
        return errors

    def _deliver(
        self, messages: list[dict[str, Any]]
    ) -> list[tuple[BaseException, list[dict[str, Any]]]]:
        self._put_all(messages)
        return self._collect()

    # ------------------------------------------------------------------ public
    def submit(self, messages: list[dict[str, Any]]) -> None:
        """Start sending a group; the caller may do other work, then `complete()` it.

        Only one group may be in flight: its errors are told apart from the next
        group's because `complete()` drains the queue before the next `submit()`."""
        if self._in_flight is not None:
            raise RuntimeError("complete() the previous group first")
        self._in_flight = messages
        self._put_all(messages)

    def complete(self) -> GroupResult:
        """Wait for the submitted group; every message ends up confirmed or failed."""
        messages, self._in_flight = self._in_flight or [], None
        result = GroupResult()
        if messages:
            self._classify(messages, self._collect(), result)
        if self._stalled:
            self._give_up(messages, result)
        return result

    def _give_up(self, messages: list[dict[str, Any]], result: GroupResult) -> None:
        """After a stall no message of the group is known delivered: all stay pending."""
        assert self._stalled is not None
        result.fatal = result.fatal or self._stalled
        result.confirmed.clear()
        for message in messages:
            result.failed.setdefault(
                message["messageId"], Failure(self._stalled, row_level=False)
            )

    def send(self, messages: list[dict[str, Any]]) -> GroupResult:
        self.submit(messages)
        return self.complete()

    def _reason(self, error: BaseException) -> str:
        status = getattr(error, "status", None)
        text = str(error) if status is None else f"HTTP {status}: {error}"
        if status is None:
            text = f"{type(error).__name__}: {text}"
        return self._redact(text)[:500]

    def _round(self, messages: list[dict[str, Any]], result: GroupResult) -> None:
        self._classify(messages, self._deliver(messages), result)

    def _classify(
        self,
        messages: list[dict[str, Any]],
        errors: list[tuple[BaseException, list[dict[str, Any]]]],
        result: GroupResult,
    ) -> None:
        failed_here: set[str] = set()
        for _, batch in errors:
            failed_here.update(m["messageId"] for m in batch)
        result.confirmed.extend(
            m["messageId"] for m in messages if m["messageId"] not in failed_here
        )
        for error, batch in errors:
            status = getattr(error, "status", None)
            reason = self._reason(error)
            if status in ROW_LEVEL_STATUSES and result.fatal is None:
                if len(batch) == 1:
                    result.failed[batch[0]["messageId"]] = Failure(
                        reason, row_level=True
                    )
                    continue
                middle = len(batch) // 2
                result.requests_bisected += 1
                self._round(batch[:middle], result)
                self._round(batch[middle:], result)
                continue
            if status in FATAL_STATUSES:
                result.fatal = reason
            for message in batch:
                result.failed[message["messageId"]] = Failure(reason, row_level=False)

    def close(self) -> None:
        """Flush what is queued, then stop the consumer thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._drain():
                self._client.join()
            else:
                # join() would wait on a consumer that may be inside a request; it is
                # a daemon thread, so stopping it is enough for the process to exit.
                for consumer in self._client.consumers:
                    consumer.pause()
        finally:
            sys.setswitchinterval(self._switch_interval)
