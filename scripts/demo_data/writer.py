"""Daily NDJSON files, one set per shard, written as the simulation clock passes each day.

A line is filed under the day it *arrives* (its own day, or later when it is a late or
retried delivery) and files are sorted by arrival time, as a receiver appending to a
daily file would have them. Only days the clock has not yet passed stay in memory, so
memory is bounded by a few days of traffic, not by the run. Files of the oldest tenth of
the period are gzip-compressed, as a receiver's log rotation would leave them.
"""

from __future__ import annotations

import random
import zlib
from operator import itemgetter
from pathlib import Path

from scripts.demo_data.clock import Period

CHUNK_LINES = 8192


class DayFiles:
    def __init__(
        self,
        root: Path,
        folder: str,
        shard: int,
        period: Period,
        rng: random.Random,
        out_of_order_rate: float,
    ) -> None:
        self.dir = root / folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.shard = shard
        self.period = period
        self.rng = rng
        self.out_of_order_rate = out_of_order_rate
        self.gzip_days = period.days // 10
        self.pending: dict[int, list] = {}
        self.flushed = -1  # days <= this are on disk
        self.files: list[dict] = []
        self.late_by_day: dict[int, int] = {}
        self.out_of_order_files: list[str] = []

    def add(self, day: int, arrival: int, line: str) -> None:
        bucket = self.pending.get(day)
        if bucket is None:
            if day <= self.flushed:
                raise AssertionError(f"day {day} of {self.folder} was already written")
            bucket = self.pending[day] = []
        bucket.append((arrival, line))

    def mark_late(self, day: int) -> None:
        self.late_by_day[day] = self.late_by_day.get(day, 0) + 1

    def flush_before(self, day: int) -> None:
        """Write every day < `day`; nothing may be added to them afterwards."""
        for d in range(self.flushed + 1, min(day, self.period.days)):
            self._write(d, self.pending.pop(d, []))
            self.flushed = d

    def close(self) -> None:
        self.flush_before(self.period.days)
        if self.pending:
            raise AssertionError(
                f"{self.folder}: lines after the period: {sorted(self.pending)}"
            )

    def _write(self, day: int, bucket: list) -> None:
        if not bucket:
            return
        # Sorting on the int alone is much faster than comparing tuples; the sort is
        # stable, so equal arrival times keep emission order (still deterministic).
        bucket.sort(key=itemgetter(0))
        lines = list(map(itemgetter(1), bucket))
        bucket.clear()
        unordered = len(lines) >= 3 and (
            (day == 2 and self.shard == 0) or self.rng.random() < self.out_of_order_rate
        )
        if unordered:
            # Two receiver pods appended to the same file: arrival order is lost.
            third = len(lines) // 3
            lines = lines[2 * third :] + lines[:third] + lines[third : 2 * third]
        gz = day < self.gzip_days
        name = f"{self.period.day_names[day]}_s{self.shard:02d}.ndjson" + (
            ".gz" if gz else ""
        )
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gz else None
        with (self.dir / name).open("wb") as handle:
            # In chunks: a broadcast day joined whole would cost several times its size.
            for i in range(0, len(lines), CHUNK_LINES):
                data = "".join(lines[i : i + CHUNK_LINES]).encode(
                    "utf-8", "surrogateescape"
                )
                handle.write(compressor.compress(data) if compressor else data)
            if compressor:
                handle.write(compressor.flush())
        relative = f"{self.folder}/{name}"
        if unordered:
            self.out_of_order_files.append(relative)
        self.files.append(
            {
                "path": relative,
                "lines": len(lines),
                "late_lines": self.late_by_day.pop(day, 0),
            }
        )
