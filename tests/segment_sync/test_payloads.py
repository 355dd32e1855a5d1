"""Payloads equal what segment-analytics-python itself would enqueue; message ids follow
one scheme in Python and SQL, stay short, and change on re-entry."""

from __future__ import annotations

from datetime import datetime

import duckdb
from segment.analytics import Client

from scripts.segment_sync import payloads

AT = datetime(2026, 3, 4, 5, 6, 7, 123000)
COMMON = {
    "audience_key": "lapsed_buyers",
    "audience_name": "Lapsed buyers",
    "audience_version": 3,
    "user_id": "u-42",
    "occurred_at": AT,
}


def _library(call: str, message: dict) -> dict:
    """The message the real library builds for the same call (send=False: no thread)."""
    client = Client("unused", send=False)
    context = {"personas": message["context"]["personas"]}
    if call == "identify":
        ok, built = client.identify(
            message["userId"],
            dict(message["traits"]),
            context=context,
            timestamp=datetime.fromisoformat(message["timestamp"]),
            message_id=message["messageId"],
        )
    else:
        ok, built = client.track(
            message["userId"],
            message["event"],
            dict(message["properties"]),
            context=context,
            timestamp=datetime.fromisoformat(message["timestamp"]),
            message_id=message["messageId"],
        )
    assert ok
    return built


def test_payloads__match_library_for_every_call_and_transition():
    builder = payloads.PayloadBuilder()
    for call in payloads.CALLS:
        for is_member, reason in ((True, None), (False, "converted")):
            message = builder.build(
                message_id="ea-1",
                call_type=call,
                transition="enter" if is_member else "exit",
                is_member=is_member,
                exit_reason=reason,
                **COMMON,
            )
            assert message == _library(call, message)
    exited = builder.build(
        message_id="ea-2",
        call_type="track",
        transition="exit",
        is_member=False,
        exit_reason="converted",
        **COMMON,
    )
    assert exited["event"] == "Audience Exited"
    assert exited["properties"] == {
        "audience_key": "lapsed_buyers",
        "lapsed_buyers": False,
        "audience_name": "Lapsed buyers",
        "audience_version": 3,
        "exit_reason": "converted",
    }
    assert exited["timestamp"] == "2026-03-04T05:06:07.123+00:00"


def test_payloads__message_id_sql_matches_python_and_changes_on_reentry():
    con = duckdb.connect()
    con.execute(
        "create table plan as select 'lapsed_buyers' as audience_key, 'enter' as transition,"
        " 2 as generation, 'u|1' as user_id"
    )
    expression = payloads.message_id_sql("'inst'", "plan", "'track'", "''")
    sql_id = con.execute(f"select {expression} from plan").fetchone()[0]
    assert sql_id == payloads.message_id(
        "inst", "lapsed_buyers", "enter", 2, "", "track", "u|1"
    )
    ids = {
        payloads.message_id(
            "inst", "lapsed_buyers", transition, generation, nonce, call, "u"
        )
        for transition in ("enter", "exit")
        for generation in (1, 2)
        for nonce in ("", "run1")
        for call in payloads.CALLS
    }
    assert len(ids) == 16
    assert all(len(i) <= 100 for i in ids)
    assert (
        payloads.message_id("other", "lapsed_buyers", "enter", 1, "", "track", "u")
        not in ids
    )


def test_payloads__oversized_detected_like_the_library():
    builder = payloads.PayloadBuilder()
    big = builder.build(
        message_id="ea-3",
        call_type="track",
        transition="enter",
        is_member=True,
        exit_reason=None,
        **{**COMMON, "audience_name": "x" * 33_000},
    )
    small = builder.build(
        message_id="ea-4",
        call_type="track",
        transition="enter",
        is_member=True,
        exit_reason=None,
        **COMMON,
    )
    assert payloads.oversized(big)
    assert not payloads.oversized(small)
