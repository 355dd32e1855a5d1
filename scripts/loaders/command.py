"""`audiences load …`: the loader subcommands, thin shells over the modules beside this.

Exit status, the same for every loader (EXIT_* below): 0 success; 2 usage, connection
or missing-right error (one line, no traceback); 3 more records rejected than
--max-reject-pct allows (the files are still loaded and their rejects recorded: the
status is an alarm, not a rollback); 4 a file (or the App API) failed to load (what was
committed before stays; rerun after fixing the cause).
"""

from __future__ import annotations

import calendar
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import click

from scripts import stop_signals
from scripts.cli import LazyGroup
from scripts.cli_options import (
    DEFAULT_MAX_REJECT_PCT,
    fail,
    finite_seconds,
    target_option,
)
from scripts.loaders import orders, segment_events, webhooks
from scripts.loaders.bulk import TableSpec
from scripts.loaders.disk_full import first_line, is_disk_full, what_is_full
from scripts.loaders.files import InputError, check_named
from scripts.loaders.runner import (
    DEFAULT_MAX_RECORD_BYTES,
    MAX_RECORD_BYTES_CEILING,
    LoadFailedError,
    MissingRightsError,
    Options,
    Stager,
    StopRequested,
    ensure_rights,
    is_database_error,
    line_stager,
    run,
    timestamp_literal,
)

EXIT_USAGE = 2  # also: cannot connect, or the role lacks a right (cli_options.fail)
EXIT_TOO_MANY_REJECTS = 3
EXIT_FILE_FAILED = 4
EXIT_STOPPED = 5

JSON_EXTENSIONS = (".ndjson", ".jsonl", ".json")


@click.group(
    cls=LazyGroup,
    epilog="""\b
Examples:
  audiences load webhooks landing/                 # every *.ndjson/*.json(.gz) below
  audiences load segment-events exports/2024-10-01.ndjson.gz
  audiences load orders shop/orders.csv --target postgres

\b
Every file is loaded in one transaction and remembered by its sha256 in
raw_loader.loaded_files, so rerunning is always safe; rejected records land in
raw_loader.rejects with a reason.

\b
Exit status:
  0  loaded (files deleted during the run are named on stderr and retried next run)
  2  usage error, cannot connect, the warehouse is busy with another load
     (DuckDB: any process holding the file; PostgreSQL: a run of the same
     loader), or the PostgreSQL role lacks CREATE on the database (one line
     naming the right)
  3  rejects above --max-reject-pct (the files are loaded, rejects recorded)
  4  a file could not be read or its name is not UTF-8 (named on stderr; the
     other files load), or the warehouse refused a file's rows (earlier files
     stay loaded, the run stops there); rerun after fixing the cause
  5  stopped by SIGTERM, Ctrl-C or SIGHUP (after the file or batch in hand; a
     second signal ends it at once): each file is loaded whole or not at all;
     rerun to load the rest
""",
)
def load() -> None:
    """Land raw files in the warehouse (raw_* schemas), idempotently, nothing lost."""


def common_options(func):
    func = target_option(func)
    func = click.option(
        "--max-reject-pct",
        type=click.FloatRange(0, 100),
        default=DEFAULT_MAX_REJECT_PCT,
        show_default=True,
        help="Exit 3 when more than this share of the records read was rejected.",
    )(func)
    func = click.option(
        "--max-record-bytes",
        type=click.IntRange(1, MAX_RECORD_BYTES_CEILING),
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
        # Existence is checked by files.check_named, which tells a missing path from
        # one inside a folder that cannot be entered (click says "does not exist" of
        # both).
        "paths",
        nargs=-1,
        required=True,
        type=click.Path(),
    )(func)
    return func


def warehouse_failure(exc: BaseException) -> str:
    """One line for a warehouse error that ends a load: a full disk said as such."""
    what = what_is_full(exc) if is_disk_full(exc) else "the warehouse failed"
    return f"{what} ({type(exc).__name__}: {first_line(exc)})"


def execute(
    spec: TableSpec,
    stager: Stager,
    extensions: tuple[str, ...],
    paths: Sequence[str],
    target_name: str | None,
    max_reject_pct: float,
    max_record_bytes: int,
    progress: bool,
    settle_seconds: float | None = None,
) -> None:
    """Run a loader and turn its outcome into the summary line and the exit status."""
    from scripts.settings import SettingsError
    from scripts.warehouse import WarehouseError, connect, new_file_note

    try:
        check_named(paths)
        wh = connect(target_name)
    except (SettingsError, WarehouseError, InputError) as exc:
        fail(str(exc), EXIT_USAGE)
    if note := new_file_note(wh):
        click.echo(note, err=True)
    try:
        with _stop_signals() as stop_requested:
            opts = Options(
                max_record_bytes=max_record_bytes,
                progress=progress,
                settle_seconds=settle_seconds,
                stop_requested=stop_requested,
            )
            summary = run(wh, spec, stager, paths, extensions, opts)
    except StopRequested as stop:
        fail(
            f"{spec.loader}: stopped by {stop} after the files in hand: each file is "
            "loaded whole or not at all; rerun to load the rest",
            EXIT_STOPPED,
        )
    except InputError as exc:
        fail(str(exc), EXIT_USAGE)
    except LoadFailedError as exc:
        fail(str(exc), EXIT_FILE_FAILED)
    except (MissingRightsError, WarehouseError) as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        # Outside a file's own load (the ledger's lookups, say), the warehouse may
        # still fail: out of memory, a lost connection. Every file is whole or absent.
        if not is_database_error(exc):
            raise
        fail(
            f"{spec.loader}: stopped, {warehouse_failure(exc)}; the files loaded "
            "before stay loaded, rerun to load the rest",
            EXIT_FILE_FAILED,
        )
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


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], str | None]]:
    """SIGTERM, SIGINT and SIGHUP (scripts/stop_signals.py) stop the load before its
    next file or batch; yields what tells the run whether one came (runner.Options).
    Before, SIGTERM killed it outright (exit 143, no word) and left its folder of
    staged copies in the temporary folder. A second signal ends the process at once
    (stop_signals.first_asks_second_ends)."""
    arrived: list[str] = []
    with stop_signals.first_asks_second_ends(
        lambda signum: arrived.append(signal.Signals(signum).name)
    ):
        yield lambda: arrived[0] if arrived else None


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

\b
A CSV file (or .csv.gz) that changed while it was read, or that ends mid-row
and was modified less than --settle-seconds ago, is left for a later run
(stderr names it): its writer may be mid-row, and a cut row can read as a
valid one (a total of 12999 cut to 129).
""",
)
@common_options
@click.option(
    "--settle-seconds",
    type=click.FloatRange(min=0),
    callback=finite_seconds,
    default=orders.SETTLE_SECONDS,
    show_default=True,
    help="How long a CSV file ending mid-line must stay unchanged before it loads.",
)
def orders_command(
    paths, target_name, max_reject_pct, max_record_bytes, progress, settle_seconds
):
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
        settle_seconds=settle_seconds,
    )


def _time_argument(ctx, param, value: str | None) -> int | None:
    from scripts.loaders.api import parse_time

    return None if value is None else parse_time(value)


@load.command(
    "api",
    epilog="""\b
Examples:
  export CIO_APP_API_KEY=...          # App API key (Bearer), never printed
  audiences load api --since 2024-01-01
  audiences load api --since 2023-06-01 --until 2024-06-01 --region eu --type email
  audiences load api --target postgres --since 1704067200
  audiences load api --restart --since 2024-01-01   # forget the cursor, walk again
\b
Windows of at most 6 months are walked from --since to --until; the cursor
(window + next token) is committed with every page in raw_loader.api_cursors, so
an interrupted run continues where it stopped and a finished range is not
fetched again. Set CIO_API_BASE_URL to point at another host (tests, proxies).
Exit 0 ok, 2 usage, connection or missing-right error, 3 rejects above
--max-reject-pct, 4 the API failed (committed pages stay; rerun to resume).
""",
)
@click.option(
    "--since",
    callback=_time_argument,
    metavar="DATE|TS",
    help="Start of the range (creation time of deliveries); default: 180 days "
    "before --until, or where the stored cursor stopped.",
)
@click.option(
    "--until",
    callback=_time_argument,
    metavar="DATE|TS",
    help="End of the range (default: now).",
)
@click.option(
    "--region", type=click.Choice(["us", "eu"]), default="us", show_default=True
)
@click.option(
    "--type",
    "message_types",
    multiple=True,
    metavar="TYPE",
    help="Only this message type (email, push, twilio, whatsapp, slack, webhook, "
    "in_app); repeatable; each type keeps its own cursor. Default: all types.",
)
@click.option(
    "--limit-per-page",
    type=click.IntRange(1, 1000),
    default=1000,
    show_default=True,
    help="Messages per request (the API allows up to 1000).",
)
@click.option(
    "--max-rps",
    type=click.FloatRange(min=0.1, max=10),
    default=10.0,
    show_default=True,
    help="Request ceiling per second, retries included (workspace limit: 10).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 30),
    default=8,
    show_default=True,
    help="Attempts per request on 429/5xx/connection errors before giving up.",
)
@click.option(
    "--backoff",
    "backoff_seconds",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="First retry pause in seconds; doubles per attempt, plus jitter "
    "(a Retry-After header wins).",
)
@click.option("--restart", is_flag=True, help="Forget the stored cursor first.")
@click.option(
    "--max-reject-pct",
    type=click.FloatRange(0, 100),
    default=DEFAULT_MAX_REJECT_PCT,
    show_default=True,
    help="Exit non-zero when more than this share of messages is rejected.",
)
@target_option
def api_command(
    since: int | None,
    until: int | None,
    region: str,
    message_types: tuple[str, ...],
    limit_per_page: int,
    max_rps: float,
    max_attempts: int,
    backoff_seconds: float,
    restart: bool,
    max_reject_pct: float,
    target_name: str | None,
) -> None:
    """Backfill deliveries from the Customer.io App API (/v1/messages)."""
    # Imported here: the HTTP stack is only paid for by `load api`.
    from scripts.loaders.api import backfill, iso
    from scripts.loaders.api_client import (
        ApiError,
        AppApiClient,
        api_key_from_env,
        base_url_for,
    )
    from scripts.loaders.api_store import ApiStore, PageCounts
    from scripts.warehouse import WarehouseError, connect, new_file_note

    try:
        bearer = api_key_from_env()
    except ApiError as exc:
        fail(str(exc), EXIT_USAGE)
    end = until if until is not None else int(time.time())
    if since is not None and since >= end:
        fail(f"--since {iso(since)} is not before --until {iso(end)}", EXIT_USAGE)

    def report_retry(attempt: int, reason: str) -> None:
        click.echo(
            f"api:   retry {attempt}/{max_attempts - 1} after {reason}", err=True
        )

    client = AppApiClient(
        bearer,
        base_url_for(region),
        max_rps=max_rps,
        max_attempts=max_attempts,
        backoff_seconds=backoff_seconds,
        on_retry=report_retry,
    )
    totals = PageCounts()
    pages = windows = 0
    started = time.monotonic()
    try:
        with connect(target_name) as warehouse:
            if note := new_file_note(warehouse):
                click.echo(note, err=True)
            store = ApiStore(warehouse)
            ensure_rights(warehouse, store.ensure_tables, "raw_customerio")
            for message_type in message_types or (None,):
                counts, done_pages, done_windows = backfill(
                    store,
                    client,
                    region=region,
                    message_type=message_type,
                    since=since,
                    until=end,
                    page_limit=limit_per_page,
                    restart=restart,
                )
                totals.add(counts)
                pages += done_pages
                windows += done_windows
    except ApiError as exc:
        _summary(totals, pages, windows, started, client.retries, sys.stderr)
        fail(f"{exc}. Committed pages are kept; rerun to resume.", EXIT_FILE_FAILED)
    except (WarehouseError, MissingRightsError) as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        # Each page commits with its cursor (api_store.py): whatever the warehouse
        # failed on, the pages before it are kept and a rerun resumes after them.
        if not is_database_error(exc):
            raise
        _summary(totals, pages, windows, started, client.retries, sys.stderr)
        fail(
            f"api: stopped, {warehouse_failure(exc)}. Committed pages are kept; "
            "rerun to resume.",
            EXIT_FILE_FAILED,
        )
    finally:
        client.close()
    _summary(totals, pages, windows, started, client.retries, sys.stdout)
    if totals.read and totals.rejected * 100 > max_reject_pct * totals.read:
        fail(
            f"{totals.rejected} of {totals.read} messages rejected "
            f"(> {max_reject_pct}%); see raw_loader.rejects where loader = 'api'",
            EXIT_TOO_MANY_REJECTS,
        )


def _summary(
    totals, pages: int, windows: int, started: float, retries: int, stream
) -> None:
    elapsed = max(time.monotonic() - started, 1e-9)
    click.echo(
        f"api: read {totals.read} = loaded {totals.loaded} + duplicate "
        f"{totals.duplicate} + rejected {totals.rejected} (new {totals.loaded_new}, "
        f"updated {totals.loaded_updated}; {pages} pages in {windows} windows, "
        f"{elapsed:.1f} s, {pages / elapsed:.1f} pages/s, {retries} retries)",
        file=stream,
    )
