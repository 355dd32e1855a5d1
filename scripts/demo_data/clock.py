"""The simulated period: day indexes, UTC day names and fast ISO-8601 formatting."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

DAY = 86_400
HOUR = 3_600
MINUTE = 60


@lru_cache(maxsize=1)
def _times_of_day() -> tuple[str, ...]:
    """'HH:MM:SS' for every second of a day: a table lookup beats strftime per event."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


class Period:
    """`days` whole UTC days ending with `end_date` (inclusive)."""

    def __init__(self, end_date: dt.date, days: int) -> None:
        self.days = days
        self.end_date = end_date
        self.start_date = end_date - dt.timedelta(days=days - 1)
        start = dt.datetime.combine(self.start_date, dt.time(), tzinfo=dt.UTC)
        self.start_ts = int(start.timestamp())
        self.end_ts = self.start_ts + days * DAY  # exclusive
        self.day_names = [
            (self.start_date + dt.timedelta(days=d)).isoformat()
            for d in range(days + 60)
        ]
        self._tod = _times_of_day()

    def day_of(self, ts: int) -> int:
        return (ts - self.start_ts) // DAY

    def day_start(self, day: int) -> int:
        return self.start_ts + day * DAY

    def iso(self, ts: int) -> str:
        """'2025-03-14T10:22:31.000Z' (Segment's timestamp format)."""
        offset = ts - self.start_ts
        return f"{self.day_names[offset // DAY]}T{self._tod[offset % DAY]}.000Z"

    def iso_plain(self, ts: int) -> str:
        """'2025-03-14T10:22:31Z' (the orders export)."""
        offset = ts - self.start_ts
        return f"{self.day_names[offset // DAY]}T{self._tod[offset % DAY]}Z"

    def weekday(self, day: int) -> int:
        """Monday = 0, as `date.weekday()`."""
        return (self.start_date.weekday() + day) % 7
