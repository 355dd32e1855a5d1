"""`audiences load api`: backfill deliveries from the App API's `/v1/messages`.

The API filters on delivery creation time and serves at most 6 months per request
(customerio.md §2.4), so the range is walked forward in windows of WINDOW_SECONDS, each
paged with the opaque `start`/`next` cursor. Each page is upserted into
`raw_customerio.api_messages` (latest payload per delivery id wins) in the same
transaction as the resume cursor in `raw_loader.api_cursors`: a crash at any point
repeats at most the page in flight, and a rerun continues where the last commit stopped.

The cursor is kept per (region, type filter). Once a range is done, a later run only
walks from where it ended to the new --until, so scheduled runs are incremental;
`--restart` forgets the cursor and walks the whole range again (refreshing the metrics
of old deliveries, which the API reports on the delivery rather than by event).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import click

from scripts.cli_options import fail, target_option
from scripts.loaders.api_client import (
    ApiError,
    AppApiClient,
    api_key_from_env,
    base_url_for,
)
from scripts.loaders.ledger import ensure_ledger
from scripts.warehouse import Warehouse, WarehouseError, connect

LOADER = "api"
# Exit codes as `audiences load` documents them (2 = usage or connection error).
EXIT_TOO_MANY_REJECTS = 3
EXIT_API_FAILED = 4
ENDPOINT = "/v1/messages"
# 180 days is under any 6 calendar months (181 days at least), the API's window limit.
WINDOW_SECONDS = 180 * 86400
MAX_RAW_TEXT = 64 * 1024
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z

MESSAGES_DDL = """
create table if not exists raw_customerio.api_messages (
    delivery_id varchar primary key,
    message_type varchar,
    created_at timestamp,
    payload {json},
    _loaded_at timestamp,
    _source_file varchar,
    _source_line bigint
)"""
CURSORS_DDL = """
create table if not exists raw_loader.api_cursors (
    cursor_key varchar primary key,
    endpoint varchar,
    region varchar,
    message_type varchar,
    range_start_ts bigint,
    covered_until_ts bigint,
    window_start_ts bigint,
    window_end_ts bigint,
    next_token varchar,
    pages bigint,
    messages bigint,
    updated_at timestamp
)"""


# ---------------------------------------------------------------- time arguments
def parse_time(value: str) -> int:
    """Unix seconds from a date, an ISO datetime (UTC if no zone) or Unix seconds."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2024-01-31), datetime or Unix timestamp"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_naive(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- validation
def check_message(message: Any) -> tuple[str, str] | None:
    """(reason code, detail) when a `/v1/messages` object cannot land, else None."""
    if not isinstance(message, dict):
        return "not_an_object", "message is not a JSON object"
    delivery_id = message.get("id")
    if delivery_id is None or delivery_id == "":
        return "missing_id", "missing id"
    if not isinstance(delivery_id, str):
        return "bad_id", "id is not a string"
    created = message.get("created")
    if created is None:
        return "missing_created", "missing created"
    if isinstance(created, bool) or not isinstance(created, int):
        return "bad_created", "created is not a Unix timestamp (integer seconds)"
    if not 0 < created <= MAX_TIMESTAMP:
        return "bad_created", "created is out of range"
    message_type = message.get("type")
    if not isinstance(message_type, str) or not message_type:
        return "missing_type", "missing type"
    metrics = message.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return "bad_metrics", "metrics is not an object"
        for name, value in metrics.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                return "bad_metrics", f"metrics.{name} is not a Unix timestamp"
    if _has_nul(message):
        return "nul_character", "contains NUL, which PostgreSQL jsonb cannot store"
    return None


def _has_nul(value: Any) -> bool:
    # json.dumps escapes NUL as \u0000; an odd run of backslashes before it marks it.
    return "u0000" in (text := _dumps(value)) and bool(_NUL_ESCAPE.search(text))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- warehouse side
@dataclass
class CursorState:
    range_start: int
    covered_until: int
    window_start: int | None = None
    window_end: int | None = None
    next_token: str | None = None
    pages: int = 0
    messages: int = 0


@dataclass
class PageCounts:
    read: int = 0
    loaded_new: int = 0
    loaded_updated: int = 0
    duplicate: int = 0
    rejected: int = 0

    @property
    def loaded(self) -> int:
        return self.loaded_new + self.loaded_updated

    def add(self, other: PageCounts) -> None:
        self.read += other.read
        self.loaded_new += other.loaded_new
        self.loaded_updated += other.loaded_updated
        self.duplicate += other.duplicate
        self.rejected += other.rejected


class ApiStore:
    """The loader's tables: landed messages, resume cursor, rejects (ledger.py's)."""

    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse

    # Warehouse.execute() opens a cursor per statement, and a DuckDB cursor is a
    # separate connection with its own transaction, so Warehouse.transaction() cannot
    # span a page on DuckDB. Until warehouse.py uses one connection, this store does.
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.wh.dialect == "duckdb":
            self.wh.raw_connection.execute(sql.replace("%s", "?"), params)
        else:
            self.wh.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.wh.dialect == "duckdb":
            self.wh.raw_connection.executemany(sql.replace("%s", "?"), rows)
        else:
            self.wh.executemany(sql, rows)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        if self.wh.dialect == "duckdb":
            return self.wh.raw_connection.execute(
                sql.replace("%s", "?"), params
            ).fetchall()
        return self.wh.query(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One page and its cursor: all or nothing, a kill -9 included."""
        if self.wh.dialect != "duckdb":
            with self.wh.transaction():
                yield
            return
        connection = self.wh.raw_connection
        connection.execute("begin")
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                connection.execute("rollback")
            raise
        connection.execute("commit")

    def ensure_tables(self) -> None:
        self.wh.ensure_schema("raw_customerio")
        ensure_ledger(self.wh)
        self.wh.execute(MESSAGES_DDL.format(json=self.wh.json_type))
        self.wh.execute(CURSORS_DDL)

    def load_cursor(self, key: str) -> CursorState | None:
        rows = self._query(
            "select range_start_ts, covered_until_ts, window_start_ts, window_end_ts, "
            "next_token, pages, messages from raw_loader.api_cursors "
            "where cursor_key = %s",
            (key,),
        )
        if not rows:
            return None
        return CursorState(*rows[0])

    def forget_cursor(self, key: str) -> None:
        self._execute(
            "delete from raw_loader.api_cursors where cursor_key = %s", (key,)
        )

    def save_cursor(
        self, key: str, region: str, message_type: str, state: CursorState
    ) -> None:
        self._execute(
            "insert into raw_loader.api_cursors (cursor_key, endpoint, region, "
            "message_type, range_start_ts, covered_until_ts, window_start_ts, "
            "window_end_ts, next_token, pages, messages, updated_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (cursor_key) do update set "
            "range_start_ts = excluded.range_start_ts, "
            "covered_until_ts = excluded.covered_until_ts, "
            "window_start_ts = excluded.window_start_ts, "
            "window_end_ts = excluded.window_end_ts, "
            "next_token = excluded.next_token, pages = excluded.pages, "
            "messages = excluded.messages, updated_at = excluded.updated_at",
            (
                key,
                ENDPOINT,
                region,
                message_type,
                state.range_start,
                state.covered_until,
                state.window_start,
                state.window_end,
                state.next_token,
                state.pages,
                state.messages,
                utc_naive(int(time.time())),
            ),
        )

    def land_page(self, messages: list[Any], source_file: str) -> PageCounts:
        """Upsert one page (inside the caller's transaction); returns its counts."""
        counts = PageCounts(read=len(messages))
        now = datetime.now(UTC).replace(tzinfo=None)
        rejects = []
        latest: dict[str, tuple[int, dict]] = {}
        for line, message in enumerate(messages, start=1):
            problem = check_message(message)
            if problem is not None:
                raw = message if isinstance(message, str) else _dumps(message)
                code, detail = problem
                rejects.append(
                    (LOADER, source_file, line, code, detail, raw[:MAX_RAW_TEXT], now)
                )
                continue
            if message["id"] in latest:
                counts.duplicate += 1  # the same delivery twice in one page: last wins
            latest[message["id"]] = (line, message)
        counts.rejected = len(rejects)

        existing = self._existing_payloads(list(latest))
        rows = []
        for delivery_id, (line, message) in latest.items():
            if delivery_id in existing:
                if existing[delivery_id] == message:
                    counts.duplicate += 1
                    continue
                counts.loaded_updated += 1
            else:
                counts.loaded_new += 1
            rows.append(
                (
                    delivery_id,
                    message["type"],
                    utc_naive(message["created"]),
                    _dumps(message),
                    now,
                    source_file,
                    line,
                )
            )
        self._upsert(rows)
        if rejects:
            self._executemany(
                "insert into raw_loader.rejects (loader, source_file, source_line, "
                "reason, detail, raw_text, rejected_at) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                rejects,
            )
        return counts

    def _existing_payloads(self, ids: list[str]) -> dict[str, Any]:
        if not ids:
            return {}
        marks = ", ".join(["%s"] * len(ids))
        rows = self._query(
            "select delivery_id, payload from raw_customerio.api_messages "
            f"where delivery_id in ({marks})",
            ids,
        )
        # DuckDB hands JSON back as text, psycopg2 decodes jsonb already.
        return {
            delivery_id: json.loads(payload) if isinstance(payload, str) else payload
            for delivery_id, payload in rows
        }

    def _upsert(self, rows: list[tuple]) -> None:
        if not rows:
            return
        # One multi-row statement per page: a bulk path on both engines, no row loop.
        one = f"(%s, %s, %s, cast(%s as {self.wh.json_type}), %s, %s, %s)"
        self._execute(
            "insert into raw_customerio.api_messages (delivery_id, message_type, "
            "created_at, payload, _loaded_at, _source_file, _source_line) values "
            + ", ".join([one] * len(rows))
            + " on conflict (delivery_id) do update set "
            "message_type = excluded.message_type, created_at = excluded.created_at, "
            "payload = excluded.payload, _loaded_at = excluded._loaded_at, "
            "_source_file = excluded._source_file, "
            "_source_line = excluded._source_line",
            [value for row in rows for value in row],
        )


# ---------------------------------------------------------------- the backfill
def _progress(message: str) -> None:
    click.echo(f"api: {message}", err=True)


def windows_from(start: int, until: int) -> list[tuple[int, int]]:
    """Consecutive windows of at most WINDOW_SECONDS covering [start, until)."""
    windows = []
    while start < until:
        end = min(start + WINDOW_SECONDS, until)
        windows.append((start, end))
        start = end
    return windows


def backfill(
    store: ApiStore,
    client: AppApiClient,
    *,
    region: str,
    message_type: str | None,
    since: int | None,
    until: int,
    page_limit: int,
    restart: bool,
) -> tuple[PageCounts, int, int]:
    """Walk and land one (region, type) stream; return counts, pages, windows."""
    type_label = message_type or "*"
    key = f"{ENDPOINT}|region={region}|type={type_label}"
    if restart:
        store.forget_cursor(key)
    state = store.load_cursor(key)
    if state is None:
        start = since if since is not None else until - WINDOW_SECONDS
        state = CursorState(range_start=start, covered_until=start)
    elif since is not None and since < state.range_start:
        raise click.UsageError(
            f"the stored cursor for type {type_label} starts at "
            f"{iso(state.range_start)}; pass --restart to backfill from the earlier "
            f"--since {iso(since)}"
        )
    else:
        _progress(
            f"type {type_label}: resuming the stored cursor (covered "
            f"{iso(state.range_start)}..{iso(state.covered_until)})"
        )

    plan: list[tuple[int, int, str | None]] = []
    walk_from = state.covered_until
    if state.next_token is not None:
        assert state.window_start is not None
        assert state.window_end is not None
        plan.append((state.window_start, state.window_end, state.next_token))
        walk_from = max(walk_from, state.window_end)
    plan.extend((start, end, None) for start, end in windows_from(walk_from, until))
    if not plan:
        _progress(
            f"type {type_label}: already loaded up to {iso(state.covered_until)}; "
            "nothing to do (--restart reloads)"
        )
        return PageCounts(), 0, 0

    totals = PageCounts()
    pages = 0
    for number, (window_start, window_end, token) in enumerate(plan, start=1):
        resumed = " (resumed mid-window)" if token else ""
        _progress(
            f"type {type_label}: window {number}/{len(plan)} "
            f"{iso(window_start)}..{iso(window_end)}{resumed}"
        )
        while True:
            params: dict[str, Any] = {
                "limit": page_limit,
                "start_ts": window_start,
                "end_ts": window_end,
            }
            if message_type:
                params["type"] = message_type
            if token:
                params["start"] = token
            document = client.get_json(ENDPOINT, params)
            messages = document.get("messages")
            if not isinstance(messages, list):
                raise ApiError(
                    f"GET {ENDPOINT} answered without a `messages` list "
                    f"(keys: {', '.join(sorted(document))[:200]})"
                )
            raw_next = document.get("next")
            next_token = str(raw_next) if raw_next not in (None, "") else None
            if next_token is not None and next_token == token:
                raise ApiError(f"GET {ENDPOINT} returned the same cursor twice")
            source = (
                f"customerio-app-api:{ENDPOINT}?type={type_label}"
                f"&window={iso(window_start)}..{iso(window_end)}"
                f"&page={state.pages + 1}"
            )
            with store.transaction():
                counts = store.land_page(messages, source)
                state.pages += 1
                state.messages += len(messages)
                if next_token is None:
                    state.covered_until = max(state.covered_until, window_end)
                    state.window_start = state.window_end = state.next_token = None
                else:
                    state.window_start, state.window_end = window_start, window_end
                    state.next_token = next_token
                store.save_cursor(key, region, type_label, state)
            pages += 1
            totals.add(counts)
            _progress(
                f"  page {pages}: {counts.read} messages (loaded {counts.loaded}, "
                f"duplicate {counts.duplicate}, rejected {counts.rejected})"
            )
            if next_token is None:
                break
            token = next_token
    return totals, pages, len(plan)


@click.command(
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
Exit 0 ok, 2 usage/connection error, 3 rejects above --max-reject-pct,
4 the API failed (committed pages stay; rerun to resume).
""",
)
@click.option(
    "--since",
    callback=lambda ctx, param, value: None if value is None else parse_time(value),
    metavar="DATE|TS",
    help="Start of the range (creation time of deliveries); default: 180 days "
    "before --until, or where the stored cursor stopped.",
)
@click.option(
    "--until",
    callback=lambda ctx, param, value: None if value is None else parse_time(value),
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
    default=1.0,
    show_default=True,
    help="Exit non-zero when more than this share of messages is rejected.",
)
@target_option
def api(
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
    try:
        bearer = api_key_from_env()
    except ApiError as exc:
        fail(str(exc))
    end = until if until is not None else int(time.time())
    if since is not None and since >= end:
        fail(f"--since {iso(since)} is not before --until {iso(end)}")

    def report_retry(attempt: int, reason: str) -> None:
        _progress(f"  retry {attempt}/{max_attempts - 1} after {reason}")

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
            store = ApiStore(warehouse)
            store.ensure_tables()
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
        fail(f"{exc}. Committed pages are kept; rerun to resume.", EXIT_API_FAILED)
    except WarehouseError as exc:
        fail(str(exc))
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
    totals: PageCounts, pages: int, windows: int, started: float, retries: int, stream
) -> None:
    elapsed = max(time.monotonic() - started, 1e-9)
    click.echo(
        f"api: read {totals.read} = loaded {totals.loaded} + duplicate "
        f"{totals.duplicate} + rejected {totals.rejected} (new {totals.loaded_new}, "
        f"updated {totals.loaded_updated}; {pages} pages in {windows} windows, "
        f"{elapsed:.1f} s, {pages / elapsed:.1f} pages/s, {retries} retries)",
        file=stream,
    )
