"""`audiences load api`, the walk: deliveries from the App API's `/v1/messages`.

The API filters on delivery creation time and serves at most 6 months per request
(docs/customerio-app-api.md), so the range is walked forward in windows of
WINDOW_SECONDS, each paged with the opaque `start`/`next` cursor. Each page lands with
its resume cursor in one transaction (api_store.py): a rerun continues where the last
commit stopped.

The cursor is kept per (region, type filter). Once a range is done, a later run only
walks from where it ended to the new --until, so scheduled runs are incremental;
`--restart` forgets the cursor and walks the whole range again (refreshing the metrics
of old deliveries, which the API reports on the delivery rather than by event).
The click command is `load api` in command.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import click

from scripts.loaders.api_client import ApiError, AppApiClient
from scripts.loaders.api_store import ENDPOINT, ApiStore, CursorState, PageCounts

# 180 days is under any 6 calendar months (181 days at least), the API's window limit.
WINDOW_SECONDS = 180 * 86400


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
