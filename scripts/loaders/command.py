"""`audiences load …`: the loader subcommands, thin shells over the modules beside this.

Exit status: 0 success; 2 usage or connection error (one line, no traceback); 3 more
records rejected than --max-reject-pct allows (the files are still loaded and their
rejects recorded: the status is an alarm, not a rollback); 4 a file failed to load
(files before it stay loaded, it is untouched; rerun after fixing the cause).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence

import click

from scripts.cli import LazyGroup
from scripts.cli_options import fail, target_option
from scripts.loaders import orders, segment_events, webhooks
from scripts.loaders.bulk import TableSpec
from scripts.loaders.files import InputError
from scripts.loaders.runner import (
    DEFAULT_MAX_RECORD_BYTES,
    LoadFailedError,
    MissingRightsError,
    Options,
    Stager,
    line_stager,
    run,
    timestamp_literal,
)

EXIT_TOO_MANY_REJECTS = 3
EXIT_FILE_FAILED = 4

JSON_EXTENSIONS = (".ndjson", ".jsonl", ".json")


@click.group(
    cls=LazyGroup,
    # `load api` pulls in the HTTP client stack; file loads should not pay for it.
    lazy={"api": "scripts.loaders.api:api"},
    epilog="""\b
Examples:
  audiences load webhooks landing/                 # every *.ndjson/*.json(.gz) below
  audiences load segment-events exports/2024-10-01.ndjson.gz
  audiences load orders shop/orders.csv --target postgres

\b
Every file is loaded in one transaction and remembered by its sha256 in
raw_loader.loaded_files, so rerunning is always safe; rejected records land in
raw_loader.rejects with a reason. Exit 0 ok, 2 usage/connection error,
3 rejects above --max-reject-pct, 4 a file failed to load.
""",
)
def load() -> None:
    """Land raw files in the warehouse (raw_* schemas), idempotently, nothing lost."""


def common_options(func):
    func = target_option(func)
    func = click.option(
        "--max-reject-pct",
        type=click.FloatRange(0, 100),
        default=1.0,
        show_default=True,
        help="Exit 3 when more than this share of the records read was rejected.",
    )(func)
    func = click.option(
        "--max-record-bytes",
        type=click.IntRange(1),
        default=DEFAULT_MAX_RECORD_BYTES,
        show_default=True,
        help="Reject records larger than this (record_too_large).",
    )(func)
    func = click.option(
        "--progress/--no-progress",
        default=True,
        show_default=True,
        help="Progress bar over files (only shown when stdout is a terminal).",
    )(func)
    func = click.argument(
        "paths", nargs=-1, required=True, type=click.Path(exists=True)
    )(func)
    return func


def execute(
    spec: TableSpec,
    stager: Stager,
    extensions: tuple[str, ...],
    paths: Sequence[str],
    target_name: str | None,
    max_reject_pct: float,
    max_record_bytes: int,
    progress: bool,
) -> None:
    """Run a loader and turn its outcome into the summary line and the exit status."""
    from scripts.settings import SettingsError
    from scripts.warehouse import WarehouseError, connect

    try:
        wh = connect(target_name)
    except (SettingsError, WarehouseError) as exc:
        fail(str(exc))
    opts = Options(max_record_bytes=max_record_bytes, progress=progress)
    try:
        summary = run(wh, spec, stager, paths, extensions, opts)
    except InputError as exc:
        fail(str(exc))
    except LoadFailedError as exc:
        fail(str(exc), EXIT_FILE_FAILED)
    except MissingRightsError as exc:
        fail(str(exc))
    finally:
        wh.close()
    click.echo(summary.line())
    if summary.files_unreadable:
        fail(
            f"{summary.files_unreadable} file(s) could not be read (named above); "
            "the others are loaded",
            EXIT_FILE_FAILED,
        )
    if summary.counts.reject_pct > max_reject_pct:
        fail(
            f"{summary.counts.reject_pct:.2f}% of records rejected (> {max_reject_pct}%); "
            f"see raw_loader.rejects where loader = '{spec.loader}'",
            EXIT_TOO_MANY_REJECTS,
        )


WEBHOOK_STAGER = line_stager(
    webhooks.PATHS,
    webhooks.DERIVED,
    lambda clock: webhooks.checks(calendar.timegm(clock.future_limit.timetuple())),
    webhooks.COLUMNS,
    webhooks.TYPE_ONLY,
)

SEGMENT_STAGER = line_stager(
    segment_events.PATHS,
    segment_events.DERIVED,
    lambda clock: segment_events.checks(timestamp_literal(clock.future_limit)),
    segment_events.COLUMNS,
)


@load.command(
    "webhooks",
    epilog="""\b
Examples:
  audiences load webhooks landing/
  audiences load webhooks events-2024-10-01.ndjson.gz more/ --target postgres
  audiences load webhooks export.json --max-reject-pct 0

\b
Input: NDJSON, a JSON array, or one JSON object per file, optionally .gz; folders
are searched recursively for *.ndjson, *.jsonl, *.json (and .gz). Lands one row
per event_id in raw_customerio.webhook_events with the whole event as payload.
""",
)
@common_options
def webhooks_command(paths, target_name, max_reject_pct, max_record_bytes, progress):
    """Load Customer.io reporting-webhook events (one row per event_id)."""
    execute(
        webhooks.SPEC,
        WEBHOOK_STAGER,
        JSON_EXTENSIONS,
        paths,
        target_name,
        max_reject_pct,
        max_record_bytes,
        progress,
    )


@load.command(
    "segment-events",
    epilog="""\b
Examples:
  audiences load segment-events segment-export/
  audiences load segment-events tracks.ndjson.gz --target postgres

\b
Input: Segment messages (NDJSON, JSON arrays, .gz) as Customer.io's Segment
(Message Metrics) integration sends them or Segment's S3 exports hold them.
Only type=track is loaded, one row per messageId, into
raw_customerio_segment.tracks.
""",
)
@common_options
def segment_events_command(
    paths, target_name, max_reject_pct, max_record_bytes, progress
):
    """Load Segment-format track events (one row per messageId)."""
    execute(
        segment_events.SPEC,
        SEGMENT_STAGER,
        JSON_EXTENSIONS,
        paths,
        target_name,
        max_reject_pct,
        max_record_bytes,
        progress,
    )


@load.command(
    "orders",
    epilog="""\b
Examples:
  audiences load orders shop/orders.csv
  audiences load orders exports/ --target postgres      # *.csv *.ndjson *.json *.parquet
  audiences load orders segment/order-events.ndjson.gz  # Order Completed/Refunded/Cancelled

\b
One row per order_id in raw_shop.orders; the version with the latest updated_at
wins, so re-loading an older export never overwrites newer state.
""",
)
@common_options
def orders_command(paths, target_name, max_reject_pct, max_record_bytes, progress):
    """Load orders from CSV, NDJSON, Parquet or Segment order events."""
    execute(
        orders.SPEC,
        orders.stage,
        orders.EXTENSIONS,
        paths,
        target_name,
        max_reject_pct,
        max_record_bytes,
        progress,
    )
