"""The one request-rate limiter: every outgoing HTTP client of the project paces through it.

Requests are spaced at least 1/rate apart (no bursts), so no one-second window holds more
than the rate allows plus the one request on its edge; callers that must stay strictly
under a vendor's per-second limit pace a little below it. Each caller reserves its start
time under a lock and sleeps outside it, so threads sharing a limiter queue up in order
without holding the lock while they wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`acquire()` returns when the caller may start its next request."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        self._interval = 1.0 / rate_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_at = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_at)
            self._next_at = start + self._interval
        if start > now:
            self._sleep(start - now)  # pacing real requests, not synchronisation
