"""`make bench-sync`: the Segment sync end to end against the local receiver.

1. A fresh DuckDB file gets N new members (default 1,000,000 → 2,000,000 messages) in the
   contracted input table `analytics.sync_segment__audience_memberships`.
2. The receiver runs in its own process (`python -m scripts.fakes.segment_receiver`).
3. `audiences sync segment` runs as a subprocess, timed from launch to exit (plan, outbox,
   send, confirmation, state); the receiver must hold exactly 2N distinct ids.
4. The floor: the same payloads, read back from the outbox, serialised and posted as raw
   batches with `requests` (≤ 2500 events and ≤ 475,000 bytes each, the library's limits,
   since Segment refuses bodies over 500 KB) to the reset receiver, timed in the same run.
5. A no-change run over the same N members (goal ≤ 5 s).

Figures, machine and ratio are printed (appended to --results FILE if given; `make bench`
owns benchmarks/results.md). `make bench` reuses start_receiver, run_sync, stats and floor.

    python -m scripts.bench.sync [--members 1000000] [--results FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import requests

from scripts.bench.machine import describe
from scripts.segment_sync.payloads import PayloadBuilder

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_KEY = "bench-write-key"
BATCH_EVENTS, BATCH_BYTES = 2500, 475_000
GOAL_MSG_PER_S, GOAL_NO_CHANGE_S = 20_000, 5.0


def machine() -> str:
    return describe()


def fill_inputs(path: Path, members: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("create schema analytics")
    con.execute(
        """create table analytics.sync_segment__audience_memberships as
        select
            'bench_audience_' || cast(i % 4 as varchar) as audience_key,
            'Bench audience ' || cast(i % 4 as varchar) as audience_name,
            1 as audience_version,
            'p-' || cast(i as varchar) as person_id,
            'user-' || cast(i as varchar) as user_id,
            cast(now() as timestamp) as signal_at,
            cast(now() as timestamp) - interval 1 hour as entered_at
        from range(?) as t(i)""",
        [members],
    )
    con.execute(
        "create table analytics.sync_segment__audience_exits (audience_key varchar, "
        "user_id varchar, exit_reason varchar, exited_at timestamp)"
    )
    con.close()


def start_receiver() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.fakes.segment_receiver",
            "--port",
            "0",
            "--no-keep-messages",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEGMENT_WRITE_KEY": BENCH_KEY},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[-1]


def run_sync(db: Path, host: str, extra: list[str]) -> tuple[float, str]:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(db),
        "AUDIENCES_DBT_RUN_RESULTS": str(db.parent / "none.json"),
        "SEGMENT_WRITE_KEY": BENCH_KEY,
        "SEGMENT_HOST": host,
    }
    env.pop("AUDIENCES_TARGET", None)
    started = time.perf_counter()
    # extra holds only "--workers <int>" from this script's own parser
    proc = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "scripts.segment_sync",
            "segment",
            "--target",
            "dev",
            "--max-rps",
            "1000",
            "--group-size",
            "50000",
            *extra,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"sync failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return elapsed, proc.stdout


def stats(host: str) -> dict:
    return requests.get(f"{host}/control/stats", timeout=30).json()


def floor(db: Path, host: str) -> tuple[float, int]:
    """The same payloads as raw batches with requests; only serialise + post is timed."""
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "select message_id, call_type, audience_key, audience_name, audience_version, "
        "user_id, transition, is_member, exit_reason, occurred_at "
        "from segment_sync.outbox order by seq"
    ).fetchall()
    con.close()
    builder = PayloadBuilder()
    fields = (
        "message_id",
        "call_type",
        "audience_key",
        "audience_name",
        "audience_version",
        "user_id",
        "transition",
        "is_member",
        "exit_reason",
        "occurred_at",
    )
    messages = [builder.build(**dict(zip(fields, row, strict=True))) for row in rows]
    requests.post(f"{host}/control/reset", timeout=30)
    session = requests.Session()
    session.auth = (BENCH_KEY, "")
    url = f"{host}/v1/batch"
    started = time.perf_counter()
    batch: list[bytes] = []
    size = 0
    for message in messages:
        encoded = orjson.dumps(message)
        if batch and (len(batch) == BATCH_EVENTS or size + len(encoded) > BATCH_BYTES):
            _post(session, url, batch)
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        _post(session, url, batch)
    return time.perf_counter() - started, len(messages)


def _post(session: requests.Session, url: str, batch: list[bytes]) -> None:
    body = b'{"batch":[' + b",".join(batch) + b"]}"
    response = session.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    response.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument(
        "--workers", type=int, default=None, help="sending processes (default: auto)"
    )
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    messages = 2 * args.members
    host_line = machine()  # load average before this benchmark adds its own
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        db = Path(tmp) / "bench.duckdb"
        fill_inputs(db, args.members)
        receiver, host = start_receiver()
        try:
            extra = [] if args.workers is None else ["--workers", str(args.workers)]
            sync_s, sync_out = run_sync(db, host, extra)
            received = stats(host)
            if received["distinct_ids"] != messages:
                raise SystemExit(
                    f"receiver holds {received['distinct_ids']} ids, not {messages}"
                )
            no_change_s, no_change_out = run_sync(db, host, extra)
            if stats(host)["requests"] != received["requests"]:
                raise SystemExit("the no-change run sent requests")
            floor_s, floor_messages = floor(db, host)
            assert stats(host)["distinct_ids"] == floor_messages == messages
        finally:
            receiver.terminate()
            receiver.wait(timeout=30)
    rate, floor_rate = messages / sync_s, messages / floor_s
    timings = next(
        (line for line in sync_out.splitlines() if line.startswith("timings")), ""
    )
    rows = [
        (
            f"end to end, `audiences sync segment` (launch to exit, {messages:,} "
            "messages)",
            f"{sync_s:.1f} s = **{rate:,.0f} msg/s**",
            f"≥ {GOAL_MSG_PER_S:,} msg/s",
        ),
        (
            "floor: same payloads, raw batches with `requests`",
            f"{floor_s:.1f} s = {floor_rate:,.0f} msg/s",
            "",
        ),
        ("ratio end to end / floor", f"{rate / floor_rate:.2f}", ""),
        (
            f"no-change run over {args.members:,} members (launch to exit)",
            f"**{no_change_s:.2f} s**",
            f"≤ {GOAL_NO_CHANGE_S:g} s",
        ),
        ("requests sent by the sync", f"{received['requests']:,}", ""),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    report = f"""
## Segment sync: {args.members:,} new members ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)

Machine: {host_line}; receiver in a separate process on the same machine.

| measure | value | goal |
|---|---|---|
{table}

Sync phases: {timings.removeprefix("timings: ")}.
"""
    if args.results is not None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a", encoding="utf-8") as out:
            out.write(report)
    print(report)
    print(no_change_out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
