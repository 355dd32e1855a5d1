"""`audiences demo-data`: write a realistic, deterministic year of a skincare brand's data."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import click
import orjson

from scripts.cli_options import fail
from scripts.demo_data import campaigns, manifest, schedule
from scripts.demo_data.clock import Period
from scripts.demo_data.simulation import ShardSpec, run_shard

OUTPUTS = ("webhooks", "segment", "orders")
# Written last, so removed first: a run cut short leaves no manifest describing other data.
DOCUMENTS = ("manifest.json", "campaigns.json")
MAX_DAYS = 3 * 366
# Timestamps are Unix seconds (Customer.io's webhooks) and late events arrive up to
# weeks after the period, so the period stays well inside what dates can hold.
FIRST_DAY = dt.date(1970, 1, 1)
LAST_END_DATE = dt.date(2999, 12, 31)
SEED_RANGE = click.IntRange(min=-(2**63), max=2**63 - 1)  # the manifest's JSON ints

HELP = """Write a deterministic demo data set for a D2C skincare brand ("Lumen Skin").

\b
The same --seed and options give byte-identical files. People are split into
--workers shards, each simulated by its own process and writing its own files.

\b
Written under DIR:
  webhooks/YYYY-MM-DD_sNN.ndjson[.gz]  Customer.io reporting-webhook events, one JSON
                                       object per line, files named by arrival day
                                       (the oldest tenth gzip-compressed)
  segment/YYYY-MM-DD_sNN.ndjson[.gz]   the same traffic as Segment `track` events from
                                       Customer.io's Segment (Message Metrics) integration
  orders/YYYY-MM_sNN.csv               shop orders; refunds/cancellations are later rows
                                       with the same order_id (latest updated_at wins)
  campaigns.json                       campaign/broadcast/newsletter/transactional ids,
                                       names, channels, kinds and links
  manifest.json                        args, per-file line counts, totals per
                                       object_type/metric and exact counts of the dirt
                                       (duplicates, late events, malformed lines)

\b
Existing webhooks/, segment/ and orders/ folders and the two JSON files under DIR
are replaced (the manifest is removed first, so a run cut short leaves none).
"""

EPILOG = """\b
Examples:
  audiences demo-data --out demo-data
  audiences demo-data --out demo-data --people 2000 --days 60 --seed 7
  audiences demo-data --out /tmp/big --people 200000 --days 365 --workers 2 --progress
  audiences demo-data --out fixtures --people 300 --days 30 --end-date 2025-06-30
"""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@click.command("demo-data", help=HELP, epilog=EPILOG)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder to write into (created if missing).",
)
@click.option(
    "--people",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="People in the Customer.io workspace (plus ~6% shop-only buyers).",
)
@click.option(
    "--days",
    default=90,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_DAYS),
    help="Length of the simulated period in days, ending with --end-date.",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=SEED_RANGE,
    help="Random seed (a 64-bit integer); same seed, same bytes.",
)
@click.option(
    "--end-date",
    "end_date",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Last simulated day (UTC), inclusive. Default: today, so audiences are current.",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1, max=64),
    help="Processes (= shards), each writing its own files. Part of the args: "
    "another count gives other (equally valid) data.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Print each shard's simulated day to stderr at every tenth of the period. "
    "Default: only when stderr is a terminal. Never changes the files.",
)
def demo_data(
    out: Path,
    people: int,
    days: int,
    seed: int,
    end_date: dt.datetime | None,
    workers: int,
    progress: bool | None,
) -> None:
    end = end_date.date() if end_date else _today()
    if progress is None:
        progress = sys.stderr.isatty()
    if workers > people:
        fail(f"--workers ({workers}) cannot exceed --people ({people})")
    if end > LAST_END_DATE or end < FIRST_DAY + dt.timedelta(days=days - 1):
        fail(
            f"--end-date {end} with --days {days} starts before {FIRST_DAY} or ends "
            f"after {LAST_END_DATE}: the events' timestamps are Unix seconds"
        )
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    period = Period(end, days)
    broadcasts = schedule.build(period, seed)
    catalogue = campaigns.catalogue(
        schedule.newsletter_weeks(period, broadcasts),
        schedule.trigger_list(period, broadcasts),
    )
    (out / "campaigns.json").write_bytes(
        orjson.dumps(catalogue, option=orjson.OPT_INDENT_2) + b"\n"
    )
    specs = [
        ShardSpec(str(out), k, workers, people, days, seed, end, progress)
        for k in range(workers)
    ]
    results = _run(specs)
    args = {
        "people": people,
        "days": days,
        "seed": seed,
        "end_date": end.isoformat(),
        "workers": workers,
    }
    document = manifest.build(args, period, results)
    manifest.write(out / "manifest.json", document)
    totals = document["totals"]
    seconds = time.perf_counter() - started
    click.echo(
        f"wrote {totals['webhook_events']:,} webhook events, "
        f"{totals['segment_events']:,} Segment events, {totals['order_rows']:,} order rows "
        f"in {totals['files']:,} files to {out} in {seconds:.1f} s"
    )


def _clear(out: Path) -> None:
    """Remove what an earlier run wrote under `out`. Only folders are replaced: a file
    or a symlink where one of them goes was put there by someone else."""
    for name in OUTPUTS:
        path = out / name
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            kind = "a symlink" if path.is_symlink() else "a file"
            fail(f"{path} is {kind}, not a folder this command wrote: move it away")
    for name in DOCUMENTS:
        (out / name).unlink(missing_ok=True)
    for name in OUTPUTS:
        if (out / name).exists():
            shutil.rmtree(out / name)


def _run(specs: list[ShardSpec]) -> list[dict]:
    results = []
    if len(specs) == 1:
        results.append(run_shard(specs[0]))
        _progress(results[-1], 1)
        return results
    with ProcessPoolExecutor(max_workers=len(specs)) as pool:
        futures = [pool.submit(run_shard, spec) for spec in specs]
        for future in as_completed(futures):
            results.append(future.result())
            _progress(results[-1], len(specs))
    return results


def _progress(result: dict, shards: int) -> None:
    events = sum(
        n for metrics in result["webhook_events"].values() for n in metrics.values()
    )
    segment = sum(result["segment_events"].values())
    files = len(result["webhook_files"]) + len(result["segment_files"])
    click.echo(
        f"shard {result['shard'] + 1}/{shards}: {events:,} webhook events, "
        f"{segment:,} Segment events, {files + len(result['order_files'])} files "
        f"in {result['seconds']:.1f} s",
        file=sys.stdout,
    )
