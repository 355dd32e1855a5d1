"""The shared request-rate limiter (scripts/ratelimit.py), used by the App API client and
the Segment sync: requests start at least 1/rate apart, the first one at once, and an
idle pause does not bank a burst. Time is an injected clock, so the test is exact."""

from __future__ import annotations

import pytest

from scripts.ratelimit import RateLimiter


class Clock:
    """A clock that advances only when the limiter sleeps (or the test waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _starts(limiter: RateLimiter, clock: Clock, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        limiter.acquire()
        starts.append(clock.now)
    return starts


def test_ratelimit__spaces_requests_evenly_from_the_first():
    clock = Clock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)

    starts = _starts(limiter, clock, 5)

    assert starts == pytest.approx([1000.0, 1000.25, 1000.5, 1000.75, 1001.0])
    # No one-second window [t, t + 1) holds more than the rate.
    assert max(sum(s <= x < s + 1 for x in starts) for s in starts) == 4


def test_ratelimit__idle_time_is_not_banked_as_a_burst():
    clock = Clock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 10.0  # idle for a long time

    starts = _starts(limiter, clock, 3)

    assert starts == pytest.approx([1010.0, 1010.5, 1011.0])


def test_ratelimit__rejects_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)
