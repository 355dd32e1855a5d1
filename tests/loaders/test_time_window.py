"""One window of believable event times (scripts/loaders/validity.py) for every source.

Before 2000-01-01 or more than a day after the load is rejected by the webhook,
Segment-event, order and App API parsers alike; DuckDB's special timestamp words
(`-infinity`, `epoch`) never reach a raw table.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from scripts.loaders import validity
from scripts.loaders.api_store import check_message
from tests.loaders.conftest import event, ndjson, query, run_load, write

SEGMENT_CASES = [
    ("-infinity", "invalid_timestamp"),
    ("infinity", "invalid_timestamp"),
    ("epoch", "timestamp_out_of_range"),
    ("0001-01-01T00:00:00Z", "timestamp_out_of_range"),
    ("1969-12-31T23:59:59Z", "timestamp_out_of_range"),
    ("1999-12-31T23:59:59Z", "timestamp_out_of_range"),
    ("2000-01-01T00:00:00Z", None),  # the first instant inside the window
]


def _track(message_id: str, timestamp: str) -> dict:
    return {
        "type": "track",
        "event": "Email Opened",
        "messageId": message_id,
        "userId": "u1",
        "timestamp": timestamp,
    }


def test_segment_events__impossible_timestamps_are_rejected(
    tmp_path: Path, target: str
) -> None:
    records = [_track(f"m{i}", ts) for i, (ts, _) in enumerate(SEGMENT_CASES, 1)]
    path = write(tmp_path / "s.ndjson", ndjson(*records))

    result = run_load("segment-events", [path], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    rejects = query(
        target, "select source_line, reason from raw_loader.rejects order by 1"
    )
    expected = [(i, r) for i, (_, r) in enumerate(SEGMENT_CASES, 1) if r]
    assert rejects == expected
    landed = query(
        target, "select message_id, occurred_at from raw_customerio_segment.tracks"
    )
    assert [(m, str(t)) for m, t in landed] == [("m7", "2000-01-01 00:00:00")]


@pytest.mark.parametrize(
    ("seconds", "reason"),
    [
        (validity.EARLIEST_UNIX - 1, "timestamp_out_of_range"),
        (validity.EARLIEST_UNIX, None),
    ],
)
def test_webhooks__window_starts_at_2000(
    seconds: int, reason: str | None, tmp_path: Path, duckdb_path: Path
) -> None:
    path = write(tmp_path / "w.ndjson", ndjson(event("01W", timestamp=seconds)))

    run_load("webhooks", [path], "dev", "--max-reject-pct", "100")

    rejects = query("dev", "select reason from raw_loader.rejects")
    assert rejects == ([(reason,)] if reason else [])


@pytest.mark.parametrize(
    ("ordered_at", "reason"),
    [
        ("1999-12-31T23:59:59Z", "timestamp_out_of_range"),
        ("2000-01-01T00:00:00Z", None),
        ("2000-01-01T00:30:00+01:00", "timestamp_out_of_range"),  # 1999 in UTC
    ],
)
def test_orders__window_starts_at_2000(
    ordered_at: str, reason: str | None, tmp_path: Path, duckdb_path: Path
) -> None:
    body = {"order_id": "o1", "status": "completed", "ordered_at": ordered_at}
    path = write(tmp_path / "o.ndjson", orjson.dumps(body) + b"\n")

    run_load("orders", [path], "dev", "--max-reject-pct", "100")

    rejects = query("dev", "select reason from raw_loader.rejects")
    assert rejects == ([(reason,)] if reason else [])


def test_api_messages__created_gets_the_same_window() -> None:
    message = {"id": "d1", "type": "email", "created": validity.EARLIEST_UNIX}
    future = int(time.time()) + 3 * 86400

    assert check_message(message) is None
    assert check_message({**message, "created": validity.EARLIEST_UNIX - 1})[0] == (
        "timestamp_out_of_range"
    )
    assert check_message({**message, "created": future})[0] == "timestamp_in_future"
