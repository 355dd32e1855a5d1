"""The faults a loader must survive, injected at low rates and counted exactly.

- duplicate: the same event delivered twice with an identical body (a retry);
- conflicting duplicate: the same `event_id` with a different body (very rare);
- late: the event lands in a later day's file than its timestamp says;
- malformed: a truncated JSON line, a line of garbage bytes, or a JSON array line.

Each kind also happens at fixed early positions of every shard's stream, so even a tiny
run carries at least one of each for the tests.
"""

from __future__ import annotations

import math
import random

from scripts.demo_data.clock import DAY, HOUR, Period
from scripts.demo_data.writer import DayFiles

MALFORMED_KINDS = ("truncated_json", "garbage_bytes", "json_array")


class Dirt:
    """Files lines into a `DayFiles`, making every n-th one dirty.

    The gap to the next dirty line is drawn from a geometric distribution, so the clean
    path costs one comparison instead of a random draw per line.
    """

    def __init__(
        self,
        rng: random.Random,
        sink: DayFiles,
        period: Period,
        *,
        late: float,
        duplicate: float,
        conflicting: float,
        malformed: float,
        forced: dict[int, str],
    ) -> None:
        self.rand = rng.random
        self.add = sink.add
        self.pending = sink.pending
        self.sink = sink
        self.period = period
        total = late + duplicate + conflicting + malformed
        self.kinds = (
            (late / total, "late"),
            ((late + duplicate) / total, "duplicate"),
            ((late + duplicate + conflicting) / total, "conflicting"),
            (1.0, "malformed"),
        )
        self.log_keep = math.log(1.0 - total)
        self.forced = dict(forced)
        self.n = 0
        self.next_random = self._gap()
        self.next_dirty = min(
            self.next_random, min(self.forced, default=self.next_random)
        )
        self.counts = {
            "late_events": 0,
            "duplicate_identical": 0,
            "duplicate_conflicting": 0,
            **{kind: 0 for kind in MALFORMED_KINDS},
        }

    def _gap(self) -> int:
        return self.n + 1 + int(math.log(1.0 - self.rand()) / self.log_keep)

    def emit(self, day: int, ts: int, line: str) -> None:
        """File `line` (an event at `ts`, on `day`), perhaps with one kind of dirt."""
        self.n += 1
        if self.n != self.next_dirty:
            # The sink's add(), inlined: this runs once per line.
            bucket = self.pending.get(day)
            if bucket is None:
                self.add(day, ts, line)
            else:
                bucket.append((ts, line))
            return
        n = self.n
        if n in self.forced:
            kind = self.forced.pop(n)
        else:
            x = self.rand()
            kind = next(name for bound, name in self.kinds if x < bound)
            if kind == "malformed":
                kind = MALFORMED_KINDS[int(self.rand() * 3)]
        if n == self.next_random:
            self.next_random = self._gap()
        self.next_dirty = min(
            self.next_random, min(self.forced, default=self.next_random)
        )
        self._dirty(kind, day, ts, line)

    def _dirty(self, kind: str, day: int, ts: int, line: str) -> None:
        if kind == "late":
            self._late(day, ts, line)
        elif kind == "duplicate":
            self.add(day, ts, line)
            self._again(ts + 30 + int(self.rand() * 12 * HOUR), ts, line)
            self.counts["duplicate_identical"] += 1
        elif kind == "conflicting":
            self.add(day, ts, line)
            # A retry rendered again with a recomputed timestamp: same id, other bytes.
            other = line.replace(f'"timestamp":{ts},', f'"timestamp":{ts + 1},', 1)
            self._again(ts + 60 + int(self.rand() * 3 * HOUR), ts + 1, other)
            self.counts["duplicate_conflicting"] += 1
        else:
            self.add(day, ts, line)
            self.add(day, ts, self._malformed(kind, line))
            self.counts[kind] += 1

    def _late(self, day: int, ts: int, line: str) -> None:
        late_day = day + 1 + int(self.rand() * 3)
        if late_day >= self.period.days:
            self.sink.add(day, ts, line)
            return
        arrival = self.period.day_start(late_day) + int(self.rand() * DAY)
        self.sink.add(late_day, arrival, line)
        self.sink.mark_late(late_day)
        self.counts["late_events"] += 1

    def _again(self, arrival: int, ts: int, line: str) -> None:
        period = self.period
        arrival = min(arrival, period.end_ts - 1)
        arrival_day = period.day_of(arrival)
        self.sink.add(arrival_day, arrival, line)
        if arrival_day > period.day_of(ts):
            self.sink.mark_late(arrival_day)
            self.counts["late_events"] += 1

    def _malformed(self, kind: str, line: str) -> str:
        if kind == "truncated_json":
            return line[: max(12, int(len(line) * (0.2 + 0.6 * self.rand())))] + "\n"
        if kind == "garbage_bytes":
            # Lone surrogates are written as raw bytes 0x80-0xFF (surrogateescape).
            noise = "".join(chr(0xDC80 + int(self.rand() * 128)) for _ in range(24))
            return f"\x00\udcff{noise}PK\x03\x04{noise}\n"  # 0xFF is never UTF-8
        return f"[{line[:-1]}]\n"
