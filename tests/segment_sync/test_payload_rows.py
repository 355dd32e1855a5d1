"""From outbox row to payload: `build_from_row` reads the columns `next_page` selects, in
their order, and `may_be_oversized` weighs exactly the free-text columns that can make a
message approach Segment's 32 KB limit (2,500 characters, the audience key counting
three times: it is in the traits, the properties and the context)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from scripts.segment_sync import outbox, payloads
from scripts.warehouse import Warehouse, connect
from tests.segment_sync.test_outbox_rules import (
    make_plan,
)  # the sync_plan a planner leaves

AT = datetime(2026, 12, 1, 12, 0, 0)
OCCURRED = datetime(2026, 12, 1, 9, 30, 15, 250000)


@pytest.fixture
def wh(duckdb_path: Path) -> Iterator[Warehouse]:
    with connect() as warehouse:
        yield warehouse


def test_build_from_row__the_message_of_every_column(wh: Warehouse):
    installation = outbox.ensure(wh)
    make_plan(
        wh,
        [
            {
                "audience_key": "sms_clickers",
                "user_id": "u1",
                "transition": "exit",
                "exit_reason": "unsubscribed",
                "email": "a@x",
                "phone": "+100",
                "audience_version": 4,
            },
        ],
    )
    outbox.enqueue(wh, installation_id=installation, run_id="r", created_at=AT, limit=1)
    identify_row, track_row = outbox.next_page(
        wh, after_seq=0, group_size=10, audiences=[]
    )
    builder = payloads.PayloadBuilder(space_id="spa_1")
    expected = {
        "message_id": None,
        "audience_key": "sms_clickers",
        "audience_name": "Sms_Clickers",
        "audience_version": 4,
        "user_id": "u1",
        "is_member": False,
        "exit_reason": "unsubscribed",
        "occurred_at": OCCURRED,
        "email": "a@x",
        "phone": "+100",
    }

    for row, call in ((identify_row, "identify"), (track_row, "track")):
        built = payloads.build_from_row(builder, row)
        direct = builder.build(**{**expected, "message_id": row[1], "call_type": call})
        assert built == direct
        assert built["timestamp"] == "2026-12-01T09:30:15.250+00:00"
    assert payloads.build_from_row(builder, track_row)["properties"] == {
        "audience_key": "sms_clickers",
        "sms_clickers": False,
        "audience_name": "Sms_Clickers",
        "audience_version": 4,
        "exit_reason": "unsubscribed",
    }


def _row(**text: str | None) -> tuple:
    """An outbox row as next_page selects it, with only the given free text set."""
    return (
        1,
        "ea-x",
        "track",
        text.get("key", ""),
        text.get("name"),
        1,
        text.get("user", ""),
        True,
        text.get("reason"),
        "2026-01-01T00:00:00.000+00:00",
        text.get("email"),
        text.get("phone"),
    )


@pytest.mark.parametrize("field", ["name", "user", "reason", "email", "phone"])
def test_may_be_oversized__each_free_text_column_at_the_limit(field: str):
    assert not payloads.may_be_oversized(_row(**{field: "x" * payloads.SHORT_ENOUGH}))
    assert payloads.may_be_oversized(_row(**{field: "x" * (payloads.SHORT_ENOUGH + 1)}))


def test_may_be_oversized__the_key_counts_three_times_and_columns_add_up():
    assert not payloads.may_be_oversized(_row(key="k" * 833))  # 2,499
    assert payloads.may_be_oversized(_row(key="k" * 834))  # 2,502
    assert not payloads.may_be_oversized(_row())
    halves = {
        "name": "x" * 600,
        "user": "x" * 600,
        "reason": "x" * 600,
        "email": "x" * 400,
        "phone": "x" * 1,
    }
    assert not payloads.may_be_oversized(
        _row(key="k" * 100, **{**halves, "phone": None})
    )  # 2,500
    assert payloads.may_be_oversized(_row(key="k" * 100, **halves))  # 2,501


def _track(name: str) -> dict:
    return payloads.PayloadBuilder().build(
        message_id="ea-1",
        call_type="track",
        audience_key="k",
        audience_name=name,
        audience_version=1,
        user_id="u",
        is_member=True,
        exit_reason=None,
        occurred_at=OCCURRED,
    )


def test_oversized__exactly_32_kb_as_the_library_measures_it_is_allowed():
    """The library refuses `len(json.dumps(msg)) > 32768` (consumer.MAX_MSG_SIZE)."""
    base = len(json.dumps(_track("")).encode("utf-8"))
    at_limit = _track("x" * (payloads.MAX_EVENT_BYTES - base))
    over = _track("x" * (payloads.MAX_EVENT_BYTES - base + 1))

    assert len(json.dumps(at_limit).encode("utf-8")) == 32_768
    assert not payloads.oversized(at_limit)
    assert payloads.oversized(over)


@pytest.mark.parametrize(
    "character", ["中", "é", "😀"], ids=["3-byte", "2-byte", "4-byte"]
)
def test_oversized__non_ascii_counted_as_the_library_escapes_it(character: str):
    """The library's json.dumps escapes non-ASCII (6 or 12 bytes a character), where
    the compact UTF-8 size is 2-4 bytes: 6,000 CJK characters are 18 KB compact and
    36 KB to the library, which dropped such a message and hung the sync's flush."""
    base = len(json.dumps(_track("")).encode("utf-8"))
    escaped = len(json.dumps(character)) - 2
    fits = (payloads.MAX_EVENT_BYTES - base) // escaped
    assert not payloads.oversized(_track(character * fits))
    assert payloads.oversized(_track(character * (fits + 1)))
    assert len(orjson.dumps(_track(character * (fits + 1)))) < 30_000


def test_timestamps_render_like_the_library_on_each_engine():
    """The library's `isoformat(timespec="milliseconds")` of a UTC time; PostgreSQL has
    no server in this fast file, so its SQL is pinned as text (run by the postgres
    variants of test_sync_core.py)."""
    assert payloads.timestamp_sql("postgres", "t") == (
        """to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"')"""
    )
    assert payloads.timestamp_sql("duckdb", "t") == (
        "strftime(t, '%Y-%m-%dT%H:%M:%S.%g+00:00')"
    )
    assert "to_char(occurred_at, " in payloads.outbox_columns_sql("postgres")


def test_timestamp__an_aware_time_keeps_its_offset_a_naive_one_is_utc():
    builder = payloads.PayloadBuilder()
    paris = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    assert _track_at(builder, paris)["timestamp"] == "2026-12-01T10:00:00.000+01:00"
    assert _track_at(builder, OCCURRED)["timestamp"] == "2026-12-01T09:30:15.250+00:00"
    # the same moment again, from the builder's cache
    assert _track_at(builder, paris)["timestamp"] == "2026-12-01T10:00:00.000+01:00"


def _track_at(builder: payloads.PayloadBuilder, at: datetime) -> dict:
    return builder.build(
        message_id="ea-1",
        call_type="track",
        audience_key="k",
        audience_name="n",
        audience_version=1,
        user_id="u",
        is_member=True,
        exit_reason=None,
        occurred_at=at,
    )
