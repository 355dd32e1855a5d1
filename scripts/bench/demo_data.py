"""Benchmark `audiences demo-data` at the scale the benchmarks need.

Generates 200,000 people over 365 days (the foundation issue's floor: >= 10 M webhook
events "in well under 2 minutes on 2 cores with bounded memory"), then prints wall time,
peak RSS of the largest process (each shard runs in its own worker process) and the event
counts from manifest.json. The output is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from scripts.bench.machine import append_section, describe

GOAL_EVENTS = 10_000_000
GOAL_SECONDS = 120


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    host = describe()
    audiences = str(Path(sys.executable).parent / "audiences")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        out = Path(tmp) / "demo"
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 (our own entry point)
            [audiences, "demo-data", "--out", str(out), "--people", str(args.people),
             "--days", str(args.days), "--seed", "1", "--end-date", "2026-06-30"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _, status, _ = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("demo-data failed")
        # ru_maxrss of RUSAGE_CHILDREN is the largest single descendant (a shard worker).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        manifest = json.loads((out / "manifest.json").read_text())
        events = manifest["totals"]["webhook_events"]
        segment = manifest["totals"]["segment_events"]
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    verdict = "meets" if events >= GOAL_EVENTS and elapsed < GOAL_SECONDS else "misses"
    section = f"""
## demo-data, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

- `audiences demo-data --people {args.people:,} --days {args.days}` (2 shard workers)
- {events:,} webhook events + {segment:,} Segment events, {size / 1e9:.2f} GB on disk
- wall time **{elapsed:.1f}s** ({events / elapsed:,.0f} webhook events/s); peak RSS of the
  largest process {peak / 2**20:,.0f} MiB
- goal: >= {GOAL_EVENTS:,} events in well under {GOAL_SECONDS}s with bounded memory:
  **{verdict}** it (ratio to the {GOAL_SECONDS}s ceiling: {elapsed / GOAL_SECONDS:.2f})
- machine: {host}
"""
    append_section(section)


if __name__ == "__main__":
    main()
