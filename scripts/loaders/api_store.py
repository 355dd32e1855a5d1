"""`raw_customerio.api_messages` and `raw_loader.api_cursors`: what `load api` lands.

Each page of `/v1/messages` is upserted (latest payload per delivery id wins) in the same
transaction as the resume cursor, so a crash at any point repeats at most the page in
flight. Rejected messages go to `raw_loader.rejects` like every loader's.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scripts.loaders import validity
from scripts.loaders.ledger import ensure_ledger
from scripts.loaders.stage import NUL_DETAIL, NUL_ESCAPE_PATTERN, NUL_REASON
from scripts.settings import dbt_project_var
from scripts.warehouse import Warehouse

LOADER = "api"
ENDPOINT = "/v1/messages"
MAX_RAW_TEXT = 64 * 1024
_NUL_ESCAPE = re.compile(NUL_ESCAPE_PATTERN)

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


def utc_naive(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- validation
def check_message(
    message: Any,
    future_limit: int | None = None,
    staged_metrics: Collection[str] | None = None,
) -> tuple[str, str] | None:
    """(reason code, detail) when a `/v1/messages` object cannot land, else None.

    `future_limit` (Unix seconds) defaults to now plus the shared tolerance.
    `staged_metrics`: the metrics staging casts to timestamps, whose values must lie in
    the time window (default: the dbt var api_message_metrics).
    """
    if future_limit is None:
        future_limit = int(time.time() + validity.FUTURE_TOLERANCE.total_seconds())
    if staged_metrics is None:
        staged_metrics = _staged_metrics()
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
    if created < validity.EARLIEST_UNIX:
        return validity.OUT_OF_RANGE, f"created {created} is before 2000-01-01"
    if created > future_limit:
        return (
            validity.IN_FUTURE,
            f"created {created} is more than a day after the load",
        )
    message_type = message.get("type")
    if not isinstance(message_type, str) or not message_type:
        return "missing_type", "missing type"
    metrics = message.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return "bad_metrics", "metrics is not an object"
        for name, value in metrics.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                return "bad_metrics", f"metrics.{name} is not a Unix timestamp"
            # Staging casts these to a bigint and then to a timestamp: one value out of
            # range would fail that model for every row, not just this one. Others
            # (a metric Customer.io adds) are kept as they come, in the payload.
            if name in staged_metrics and not (
                validity.EARLIEST_UNIX <= value <= future_limit
            ):
                return (
                    "bad_metrics",
                    f"metrics.{name} is not a Unix timestamp between 2000-01-01 and "
                    "a day after the load",
                )
    return _text_problem(message)


@functools.cache
def _staged_metrics() -> frozenset[str]:
    return frozenset(dbt_project_var("api_message_metrics", []))


def _text_problem(message: dict) -> tuple[str, str] | None:
    """What the warehouse's JSON and text types would refuse (the whole page with it)."""
    try:
        text = json.dumps(message, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return "invalid_number", "NaN or Infinity is not a JSON number"
    except RecursionError:
        # Python's JSON encoder recurses once per level; so does the store's.
        return "too_deeply_nested", "nested too deeply to store as JSON"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "invalid_utf8",
            "contains a lone UTF-16 surrogate (\\ud800-\\udfff escape)",
        )
    if _has_nul(message):
        return NUL_REASON, NUL_DETAIL
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

    def transaction(self):
        """One page and its cursor: all or nothing, a kill -9 included."""
        return self.wh.transaction()

    def ensure_tables(self) -> None:
        self.wh.ensure_schema("raw_customerio")
        ensure_ledger(self.wh)
        self.wh.execute(MESSAGES_DDL.format(json=self.wh.json_type))
        self.wh.execute(CURSORS_DDL)

    def load_cursor(self, key: str) -> CursorState | None:
        rows = self.wh.query(
            "select range_start_ts, covered_until_ts, window_start_ts, window_end_ts, "
            "next_token, pages, messages from raw_loader.api_cursors "
            "where cursor_key = %s",
            (key,),
        )
        if not rows:
            return None
        return CursorState(*rows[0])

    def forget_cursor(self, key: str) -> None:
        self.wh.execute(
            "delete from raw_loader.api_cursors where cursor_key = %s", (key,)
        )

    def save_cursor(
        self, key: str, region: str, message_type: str, state: CursorState
    ) -> None:
        self.wh.execute(
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
                # Storable whatever it holds: lone surrogates become \udXXX text.
                raw = raw[:MAX_RAW_TEXT].encode("utf-8", "backslashreplace").decode()
                code, detail = problem
                rejects.append((LOADER, source_file, line, code, detail, raw, now))
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
            self.wh.executemany(
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
        rows = self.wh.query(
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
        self.wh.execute(
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
