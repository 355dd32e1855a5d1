"""`make bench-load`: time `audiences load webhooks` against DuckDB's own read_json.

Generates EVENTS reporting-webhook events as NDJSON files in a temp folder, then times
(1) the floor: `create table t as select * from read_json(…)` into a fresh DuckDB file,
and (2) the loader, as a subprocess, into another fresh file, with its peak RSS; the
pair is run --repeat times, alternating, and each side's median is reported. Prints
the figures and the machine (`make bench` owns benchmarks/results.md).

    .venv/bin/python -m scripts.bench.load [--events 5000000] [--files 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from scripts.bench.machine import append_section, describe

METRICS = ("sent", "delivered", "opened", "clicked")
# One email event shaped like Customer.io's reporting-webhook email events
# (docs/customerio-webhooks.md), ~480 bytes per line.
TEMPLATE = (
    '{"event_id":"01JB%022d","object_type":"email","metric":"%s","timestamp":%d,'
    '"data":{"campaign_id":12,"action_id":87,"journey_id":"01J9ZJ0000AAAABBBBCCCCDDDD",'
    '"trigger_event_id":null,"delivery_id":"RAEC%020d==","customer_id":"u_%d",'
    '"identifiers":{"id":"u_%d","email":"p%d@example.org","cio_id":"c%011d"},'
    '"recipient":"p%d@example.org","subject":"Your week in review",'
    '"href":"https://example.org/deals?utm_source=cio","link_id":4,"machine":false}}'
)


def generate(folder: Path, events: int, files: int) -> int:
    per_file = -(-events // files)
    total_bytes = 0
    start = 1727712000
    for f in range(files):
        lo, hi = f * per_file, min(events, (f + 1) * per_file)
        path = folder / f"webhooks-{f:03d}.ndjson"
        with path.open("w", encoding="ascii") as out:
            batch = []
            for i in range(lo, hi):
                p = i % 50000
                batch.append(
                    TEMPLATE % (i, METRICS[i % 4], start + i // 10, i, p, p, p, p, p)
                )
                if len(batch) == 20000:
                    out.write("\n".join(batch) + "\n")
                    batch = []
            if batch:
                out.write("\n".join(batch) + "\n")
        total_bytes += path.stat().st_size
    return total_bytes


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def time_floor(folder: Path, db: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the floor, up to durable completion.

    Leaving the `with` block closes the connection, which checkpoints the new table
    into the file; the loader's subprocess likewise closes (and checkpoints) before it
    exits. Both sides are timed to data on disk, with DuckDB's default thread count.
    """
    cpu_started = _cpu_seconds(resource.getrusage(resource.RUSAGE_SELF))
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute(
            "create table t as select * from read_json("
            f"'{folder}/*.ndjson', format = 'newline_delimited')"
        )
        rows = con.execute("select count(*) from t").fetchone()[0]
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_SELF)) - cpu_started
    print(f"floor: {rows} rows in {elapsed:.1f}s ({cpu:.1f} CPU s)", flush=True)
    return elapsed, cpu


def time_loader(folder: Path, db: Path) -> tuple[float, float, int, str]:
    env = {**os.environ, "AUDIENCES_DUCKDB_PATH": str(db)}
    env.pop("AUDIENCES_TARGET", None)
    audiences = str(Path(sys.executable).parent / "audiences")
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 (our own entry point)
        [audiences, "load", "webhooks", str(folder), "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"loader failed: {stderr.strip()}")
    summary = stdout.strip().splitlines()[-1]
    print(f"{summary} ({_cpu_seconds(usage):.1f} CPU s)", flush=True)
    return elapsed, _cpu_seconds(usage), usage.ru_maxrss * 1024, summary


def machine() -> str:
    return f"{describe()}, DuckDB {duckdb.__version__}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        started = time.perf_counter()
        size = generate(folder, args.events, args.files)
        print(
            f"generated {args.events} events, {size / 1e9:.2f} GB in "
            f"{time.perf_counter() - started:.1f}s",
            flush=True,
        )
        # On a shared machine one pair of runs can land on a busy and a quiet moment;
        # alternating the two sides and taking each side's median treats both alike.
        runs = []
        for attempt in range(args.repeat):
            floor_db = Path(tmp) / f"floor-{attempt}.duckdb"
            loader_db = Path(tmp) / f"loader-{attempt}.duckdb"
            runs.append((time_floor(folder, floor_db), time_loader(folder, loader_db)))
            floor_db.unlink()
            loader_db.unlink()
    floor = statistics.median(f[0] for f, _ in runs)
    floor_cpu = statistics.median(f[1] for f, _ in runs)
    loader = statistics.median(lo[0] for _, lo in runs)
    loader_cpu = statistics.median(lo[1] for _, lo in runs)
    rss = max(lo[2] for _, lo in runs)
    summary = runs[-1][1][3]
    pairs = ", ".join(f"{lo[0]:.1f}/{f[0]:.1f}s" for f, lo in runs)
    ratio = loader / floor
    section = f"""
## load webhooks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

- input: {args.events:,} events in {args.files} NDJSON files, {size / 1e9:.2f} GB
- {args.repeat} alternating runs of each side, medians below; loader/floor wall per
  run: {pairs}
- floor (DuckDB `read_json` into a table): {floor:.1f}s, {args.events / floor:,.0f} events/s
- `audiences load webhooks`: {loader:.1f}s, {args.events / loader:,.0f} events/s
- ratio loader / floor: **{ratio:.2f}x** (goal <= 2.5x); both timed to durable completion
  (connection closed and checkpointed)
- CPU seconds (user + system; steadier than wall time on a shared machine): floor
  {floor_cpu:.1f}, loader {loader_cpu:.1f}, ratio {loader_cpu / floor_cpu:.2f}x
- loader peak RSS: **{rss / 2**30:.2f} GiB** (DuckDB's share is bounded by the profile's
  memory_limit, 3GB by default; the floor is unbounded)
- loader summary: `{summary}`
- machine: {host}
"""
    append_section(section)


if __name__ == "__main__":
    main()
