"""`make bench-load`: time `audiences load webhooks` against DuckDB's own read_json.

Generates EVENTS reporting-webhook events as NDJSON files in a temp folder, then times
(1) the floor: `create table t as select * from read_json(…)` into a fresh DuckDB file,
and (2) the loader, as a subprocess, into another fresh file, with its peak RSS. Appends
the figures and the machine to benchmarks/results.md (earlier sections are kept).

    .venv/bin/python -m scripts.bench.load [--events 5000000] [--files 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results.md"
METRICS = ("sent", "delivered", "opened", "clicked")
# One email event shaped like customerio.md §1.7 (~480 bytes per line).
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


def time_floor(folder: Path, db: Path) -> float:
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute(
            "create table t as select * from read_json("
            f"'{folder}/*.ndjson', format = 'newline_delimited')"
        )
        rows = con.execute("select count(*) from t").fetchone()[0]
    elapsed = time.perf_counter() - started
    print(f"floor: {rows} rows in {elapsed:.1f}s", flush=True)
    return elapsed


def time_loader(folder: Path, db: Path) -> tuple[float, int, str]:
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
    print(summary, flush=True)
    return elapsed, usage.ru_maxrss * 1024, summary


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram}, load average {load:.1f} at start, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=10)
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
        floor = time_floor(folder, Path(tmp) / "floor.duckdb")
        loader, rss, summary = time_loader(folder, Path(tmp) / "loader.duckdb")
    ratio = loader / floor
    section = f"""
## load webhooks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

- input: {args.events:,} events in {args.files} NDJSON files, {size / 1e9:.2f} GB
- floor (DuckDB `read_json` into a table): {floor:.1f}s, {args.events / floor:,.0f} events/s
- `audiences load webhooks`: {loader:.1f}s, {args.events / loader:,.0f} events/s
- ratio loader / floor: **{ratio:.2f}x** (goal <= 2.5x)
- loader peak RSS: **{rss / 2**30:.2f} GiB** (goal < 2 GiB)
- loader summary: `{summary}`
- machine: {host}
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(section)
    print(section)


if __name__ == "__main__":
    main()
