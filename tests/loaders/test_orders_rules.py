"""scripts/loaders/orders.py rule by rule: parsing, validation and staging, no CLI.

test_bad_orders.py and test_loaders.py prove the same through `audiences load orders`
(a DuckDB load per case); these pin each decision of the module docstring on its own,
with the exact reason and detail, at every boundary (2000-01-01, the future limit, the
bigint range, the record size), on real CSV / NDJSON / Parquet files and a real DuckDB
connection. They are what `make mutate` runs for the loaders area with
test_files_rules.py and test_bulk_rules.py (benchmarks/mutation.md).
"""

from __future__ import annotations

import csv
import gzip
import time as pytime
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import duckdb
import orjson
import pytest

from scripts.loaders import orders, validity
from scripts.loaders.files import Reject, inspect
from scripts.loaders.orders import BIGINT_MAX, InvalidRecordError, normalise
from scripts.loaders.runner import Clock, Options
from scripts.loaders.stage import CLASSIFIED, NUL_DETAIL, NUL_REASON, PY_REJECTS

NOW = datetime(2026, 12, 2, 12, 0, 0)
LIMIT = NOW + validity.FUTURE_TOLERANCE
HEADER = "order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at"


def rejected(call, *args) -> tuple[str, str]:
    with pytest.raises(InvalidRecordError) as error:
        call(*args)
    assert str(error.value) == error.value.detail
    return error.value.reason, error.value.detail


def flat(**overrides) -> dict:
    record = {
        "order_id": "o1",
        "customer_id": "c1",
        "email": "ana@example.org",
        "status": "completed",
        "total_cents": 1250,
        "currency": "usd",
        "ordered_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-02T10:00:00+01:00",
    }
    record.update(overrides)
    return record


def track(event: str = "Order Completed", **overrides) -> dict:
    record = {
        "type": "track",
        "event": event,
        "userId": "c9",
        "timestamp": "2026-11-03T08:00:00Z",
        "properties": {"order_id": "s1", "total": "19.99", "currency": "eur"},
        "context": {"traits": {"email": "bo@example.org"}},
    }
    record.update(overrides)
    return record


# ------------------------------------------------------------------ flat records
def test_normalise__flat_record_maps_every_column():
    assert normalise(flat(), LIMIT) == {
        "order_id": "o1",
        "customer_id": "c1",
        "email": "ana@example.org",
        "status": "completed",
        "total_cents": 1250,
        "currency": "USD",
        "ordered_at": datetime(2026, 11, 1, 10),
        "updated_at": datetime(2026, 11, 2, 9),  # +01:00 stored as UTC
    }


def test_normalise__updated_at_defaults_to_ordered_at_and_one_is_required():
    row = normalise(flat(updated_at=None), LIMIT)
    assert row["updated_at"] == row["ordered_at"] == datetime(2026, 11, 1, 10)
    row = normalise(flat(ordered_at="", updated_at="2026-11-05T00:00:00"), LIMIT)
    assert (row["ordered_at"], row["updated_at"]) == (None, datetime(2026, 11, 5))
    assert rejected(normalise, flat(ordered_at=None, updated_at=""), LIMIT) == (
        "missing_timestamp",
        "neither updated_at nor ordered_at is set",
    )


@pytest.mark.parametrize(
    ("value", "status"),
    [("completed", "completed"), (" Refunded ", "refunded"), ("CANCELLED", "cancelled"),
     ("canceled", "cancelled")],
)  # fmt: skip
def test_normalise__statuses(value, status):
    assert normalise(flat(status=value), LIMIT)["status"] == status


def test_normalise__status_missing_or_unknown():
    assert rejected(normalise, flat(status=" "), LIMIT) == (
        "missing_status",
        "status is missing",
    )
    assert rejected(normalise, flat(status="shipped"), LIMIT) == (
        "invalid_status",
        "status 'shipped' is not completed/refunded/cancelled",
    )


@pytest.mark.parametrize("order_id", [None, "", "  ", True, {"a": 1}, [1]])
def test_normalise__order_id_missing(order_id):
    assert rejected(normalise, flat(order_id=order_id), LIMIT) == (
        "missing_order_id",
        "order_id is missing or empty",
    )


def test_normalise__text_columns_are_stripped_and_numbers_kept_as_text():
    row = normalise(
        flat(order_id=42, customer_id=0, email=" a@b.c ", currency=" eur "), LIMIT
    )
    assert (row["order_id"], row["customer_id"], row["email"], row["currency"]) == (
        "42", "0", "a@b.c", "EUR",
    )  # fmt: skip
    row = normalise(flat(customer_id=False, email=[], currency=""), LIMIT)
    assert (row["customer_id"], row["email"], row["currency"]) == (None, None, None)


def test_normalise__not_an_object():
    assert rejected(normalise, [1], LIMIT) == (
        "not_an_object",
        "a record must be an object, got list",
    )


@pytest.mark.parametrize(
    "record",
    [
        flat(email="a\x00b"),
        flat(**{"note\x00": "x"}),
        flat(extra=[{"deep": ["ok", "n\x00l"]}]),
        track(properties={"order_id": "s1", "items": [{"sku": "\x00"}]}),
    ],
)
def test_normalise__nul_anywhere_is_rejected(record):
    assert rejected(normalise, record, LIMIT) == (NUL_REASON, NUL_DETAIL)


def test_normalise__values_without_nul_pass():
    row = normalise(flat(extra=[1, 2.5, None, True, {"k": ["v"]}]), LIMIT)
    assert row["order_id"] == "o1"


# ------------------------------------------------------------------ the window
@pytest.mark.parametrize("name", ["ordered_at", "updated_at"])
def test_normalise__window_start_is_2000_exactly(name):
    assert normalise(flat(**{name: "2000-01-01T00:00:00"}), LIMIT)[name] == (
        validity.EARLIEST
    )
    assert rejected(normalise, flat(**{name: "1999-12-31T23:59:59.999999"}), LIMIT) == (
        validity.OUT_OF_RANGE,
        f"{name} 1999-12-31 23:59:59.999999 is before 2000-01-01",
    )


def test_normalise__updated_at_is_checked_when_ordered_at_is_unknown():
    record = flat(ordered_at=None, updated_at="1999-12-31T23:59:59")
    assert rejected(normalise, record, LIMIT) == (
        validity.OUT_OF_RANGE,
        "updated_at 1999-12-31 23:59:59 is before 2000-01-01",
    )


@pytest.mark.parametrize("name", ["ordered_at", "updated_at"])
def test_normalise__flat_timestamps_are_named_in_their_rejects(name):
    assert rejected(normalise, flat(**{name: "soon"}), LIMIT) == (
        "invalid_timestamp",
        f"{name} is not ISO-8601: 'soon'",
    )


@pytest.mark.parametrize("name", ["ordered_at", "updated_at"])
def test_normalise__future_limit_exactly_is_allowed(name):
    at_limit = LIMIT.isoformat()
    assert normalise(flat(**{name: at_limit}), LIMIT)[name] == LIMIT
    after = (LIMIT + timedelta(microseconds=1)).isoformat()
    assert rejected(normalise, flat(**{name: after}), LIMIT) == (
        validity.IN_FUTURE,
        f"{name} {LIMIT + timedelta(microseconds=1)} is after the load",
    )


# ------------------------------------------------------------------ money
@pytest.mark.parametrize(
    ("value", "cents"),
    [(None, None), ("", None), (0, 0), (12, 12), (12.0, 12), (" -7 ", -7), ("0042", 42),
     (BIGINT_MAX, BIGINT_MAX), (-BIGINT_MAX, -BIGINT_MAX), (str(BIGINT_MAX), BIGINT_MAX)],
)  # fmt: skip
def test_cents__whole_numbers(value, cents):
    assert orders._cents(value) == cents


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (True, "total_cents must be a whole number, got a boolean"),
        (12.5, "total_cents must be a whole number, got 12.5"),
        ("²", "total_cents must be a whole number, got '²'"),
        ("--1", "total_cents must be a whole number, got '--1'"),
        ("1e3", "total_cents must be a whole number, got '1e3'"),
        ([1], "total_cents must be a whole number, got [1]"),
        (BIGINT_MAX + 1, f"total {BIGINT_MAX + 1} cents is out of range"),
        (-BIGINT_MAX - 1, f"total {-BIGINT_MAX - 1} cents is out of range"),
        ("9" * 150, f"total {'9' * 100}… cents is out of range"),
    ],
)
def test_cents__anything_else_is_invalid_total(value, detail):
    assert rejected(orders._cents, value) == ("invalid_total", detail)


def test_cents__a_long_value_is_shown_cut_to_100_characters():
    shown = orders._shown("x" * 98)  # repr adds the quotes: exactly 100
    assert shown == "'" + "x" * 98 + "'"
    assert orders._shown("x" * 99) == "'" + "x" * 99 + "…"


@pytest.mark.parametrize(
    ("value", "cents"),
    [(None, None), ("", None), ("19.99", 1999), (19.99, 1999), (7, 700), (-2.5, -250),
     ("0.005", 0), ("0.015", 2), ("0.0151", 2)],  # half to even, as Decimal rounds
)  # fmt: skip
def test_units_to_cents(value, cents):
    assert orders._units_to_cents(value) == cents


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (True, "total/revenue must be a number, got True"),
        ({"a": 1}, "total/revenue must be a number, got {'a': 1}"),
        ([1], "total/revenue must be a number, got [1]"),
        ("abc", "total/revenue must be a number, got 'abc'"),
        ("Infinity", "total/revenue must be a number, got 'Infinity'"),
        ("NaN", "total/revenue must be a number, got 'NaN'"),
        (BIGINT_MAX + 1, f"total/revenue must be a number, got {BIGINT_MAX + 1}"),
        (-BIGINT_MAX - 1, f"total/revenue must be a number, got {-BIGINT_MAX - 1}"),
        # within the bigint as units, not as cents
        (BIGINT_MAX, f"total {BIGINT_MAX * 100} cents is out of range"),
    ],
)
def test_units_to_cents__invalid(value, detail):
    assert rejected(orders._units_to_cents, value) == ("invalid_total", detail)


@pytest.mark.parametrize(("status", "ok"), [("completed", False), ("refunded", True),
                                           ("cancelled", True)])  # fmt: skip
def test_normalise__negative_total_only_for_completed(status, ok):
    record = flat(status=status, total_cents=-1)
    if ok:
        assert normalise(record, LIMIT)["total_cents"] == -1
    else:
        assert rejected(normalise, record, LIMIT) == (
            "negative_total",
            "a completed order cannot total -1 cents (a refund is status refunded)",
        )
    assert normalise(flat(status=status, total_cents=0), LIMIT)["total_cents"] == 0
    assert (
        normalise(flat(status=status, total_cents=None), LIMIT)["total_cents"] is None
    )


# ------------------------------------------------------------------ timestamps
def test_timestamp__forms():
    assert orders._timestamp(None, "t") is None
    assert orders._timestamp("", "t") is None
    assert orders._timestamp(" 2024-01-02T03:04:05Z ", "t") == datetime(
        2024, 1, 2, 3, 4, 5
    )
    assert orders._timestamp("2024-01-02 03:04:05-02:30", "t") == datetime(
        2024, 1, 2, 5, 34, 5
    )
    assert orders._timestamp("2024-01-02", "t") == datetime(2024, 1, 2)


def test_timestamp__invalid():
    assert rejected(orders._timestamp, 1727712000, "ordered_at") == (
        "invalid_timestamp",
        "ordered_at must be an ISO-8601 string, got 1727712000",
    )
    assert rejected(orders._timestamp, "yesterday", "updated_at") == (
        "invalid_timestamp",
        "updated_at is not ISO-8601: 'yesterday'",
    )
    long = "x" * 150
    assert rejected(orders._timestamp, long, "t") == (
        "invalid_timestamp",
        f"t is not ISO-8601: {long[:100]!r}",
    )
    assert rejected(orders._timestamp, "0001-01-01T00:00:00+01:00", "t") == (
        validity.OUT_OF_RANGE,
        "t '0001-01-01T00:00:00+01:00' is before 2000-01-01",
    )
    # The other end had no UTC instant either, and was called "before 2000-01-01".
    assert rejected(orders._timestamp, "9999-12-31T23:59:59-05:00", "t") == (
        validity.IN_FUTURE,
        "t '9999-12-31T23:59:59-05:00' is after the load",
    )
    padded = (
        "0001-01-01T00:00:00+01:00" + " " * 100
    )  # parsed stripped, shown cut at 100
    assert rejected(orders._timestamp, padded, "t") == (
        validity.OUT_OF_RANGE,
        f"t {padded[:100]!r} is before 2000-01-01",
    )


# ------------------------------------------------------------------ Segment events
def test_normalise__segment_order_completed():
    assert normalise(track(), LIMIT) == {
        "order_id": "s1",
        "customer_id": "c9",
        "email": "bo@example.org",
        "status": "completed",
        "total_cents": 1999,
        "currency": "EUR",
        "ordered_at": datetime(2026, 11, 3, 8),  # completed: the event's own time
        "updated_at": datetime(2026, 11, 3, 8),
    }


@pytest.mark.parametrize(
    ("event", "status"),
    [("Order Refunded", "refunded"), ("Order Cancelled", "cancelled"),
     ("Order Canceled", "cancelled")],
)  # fmt: skip
def test_normalise__segment_other_events_have_no_ordered_at_of_their_own(event, status):
    row = normalise(track(event), LIMIT)
    assert (row["status"], row["ordered_at"]) == (status, None)
    props = {"order_id": "s1", "ordered_at": "2026-10-01T00:00:00Z"}
    row = normalise(track(event, properties=props), LIMIT)
    assert row["ordered_at"] == datetime(2026, 10, 1)


def test_normalise__segment_amounts_email_and_timestamps():
    props = {"order_id": "s1", "revenue": 5, "total": None, "email": "p@x.y"}
    row = normalise(track(properties=props), LIMIT)
    # `total` wins over `revenue` even when it is null
    assert (row["total_cents"], row["email"]) == (None, "p@x.y")
    row = normalise(track(properties={"order_id": "s1", "revenue": "2.5"}), LIMIT)
    assert row["total_cents"] == 250
    row = normalise(track(properties={"order_id": "s1"}, context="x"), LIMIT)
    assert row["email"] is None
    row = normalise(track(context={"traits": ["x"]}), LIMIT)
    assert row["email"] is None
    row = normalise(
        track(timestamp="", originalTimestamp=None, sentAt="2026-11-04T00:00:00Z"),
        LIMIT,
    )
    assert row["updated_at"] == datetime(2026, 11, 4)
    row = normalise(
        track(timestamp=None, originalTimestamp="2026-11-05T00:00:00Z",
              sentAt="2026-11-04T00:00:00Z"),
        LIMIT,
    )  # fmt: skip
    assert row["updated_at"] == datetime(2026, 11, 5)
    assert rejected(normalise, track(timestamp=None), LIMIT) == (
        "missing_timestamp",
        "none of timestamp, originalTimestamp, sentAt",
    )


def test_normalise__segment_timestamps_are_named_in_their_rejects():
    assert rejected(normalise, track(timestamp="soon"), LIMIT) == (
        "invalid_timestamp",
        "timestamp is not ISO-8601: 'soon'",
    )
    props = {"order_id": "s1", "ordered_at": "then"}
    assert rejected(normalise, track(properties=props), LIMIT) == (
        "invalid_timestamp",
        "properties.ordered_at is not ISO-8601: 'then'",
    )


def test_normalise__a_type_alone_makes_a_segment_message():
    assert rejected(normalise, {"type": "identify", "userId": "c1"}, LIMIT) == (
        "not_a_track",
        "only track messages are orders, got 'identify'",
    )


def test_normalise__segment_messages_that_are_not_orders():
    assert rejected(normalise, track(type="identify"), LIMIT) == (
        "not_a_track",
        "only track messages are orders, got 'identify'",
    )
    # A flat record with an `event` key is read as a Segment message, not an order.
    assert rejected(normalise, flat(event="x"), LIMIT) == (
        "not_a_track",
        "only track messages are orders, got None",
    )
    assert rejected(normalise, track("Order Viewed"), LIMIT) == (
        "not_an_order_event",
        "event 'Order Viewed' is not an order event",
    )
    assert rejected(normalise, track(["Order Completed"]), LIMIT) == (
        "not_an_order_event",
        "event ['Order Completed'] is not an order event",
    )
    assert rejected(normalise, track(properties=["x"]), LIMIT) == (
        "missing_order_id",
        "order_id is missing or empty",
    )


# ------------------------------------------------------------------ reading files
def records(tmp_path: Path, name: str, content: bytes, max_bytes: int = 1 << 20):
    source = inspect(_put(tmp_path / name, content))
    out = []
    for line, raw, record in orders._records(source, max_bytes):
        if isinstance(record, InvalidRecordError):
            record = (record.reason, record.detail)
        out.append((line, raw, record))
    return out


def _put(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_records__csv_rows_with_their_line_numbers(tmp_path):
    content = (
        "\ufeff" + HEADER + ",note\n"
        'o1,c1,,completed,100,usd,2026-11-01T00:00:00Z,,"two\nlines"\n'
        ",,,,,,,,\n"
        "o2,c2,,refunded,5,,,2026-11-02T00:00:00Z,x,extra\n"
        "o3,c3,,completed,7,,2026-11-01T00:00:00Z\n"
    ).encode()
    got = records(tmp_path, "o.CSV", content)
    assert got[0] == (
        3,
        b"o1,c1,,completed,100,usd,2026-11-01T00:00:00Z,,two\nlines",
        {"order_id": "o1", "customer_id": "c1", "email": "", "status": "completed",
         "total_cents": "100", "currency": "usd", "ordered_at": "2026-11-01T00:00:00Z",
         "updated_at": "", "note": "two\nlines"},
    )  # fmt: skip
    assert got[1][0] == 5
    assert got[1][2] == ("malformed_csv_row", "more fields than the header")
    assert got[2][0] == 6
    assert got[2][1] == b"o3,c3,,completed,7,,2026-11-01T00:00:00Z"
    assert got[2][2]["ordered_at"] == "2026-11-01T00:00:00Z"
    assert got[2][2]["updated_at"] is None
    assert len(got) == 3  # the empty row (line 4) is no record


def test_records__csv_quote_never_closed_is_one_reject_not_a_silent_merge(tmp_path):
    # The lenient reader read every line after the stray quote into one field: 6 data
    # rows became 2 records, and the reject named a timestamp on the last line. Then the
    # strict reader made the rest of the file one reject: 4 rows lost in it, uncounted.
    rows = [f"r{n},c1,,completed,100,USD,2026-11-20T10:00:00Z," for n in range(1, 7)]
    rows[1] = '"' + rows[1]
    content = "\n".join([HEADER, *rows]).encode() + b"\n"
    got = records(tmp_path, "o.csv", content)
    assert [line for line, _, _ in got] == [2, 3, 4, 5, 6, 7]
    assert [got[n][2]["order_id"] for n in (0, 2, 3, 4, 5)] == [
        "r1", "r3", "r4", "r5", "r6"
    ]  # fmt: skip
    assert got[1][1:] == (
        rows[1].encode(),  # the line itself, as raw text
        (
            "malformed_csv_row",
            "a quote opened on this line is never closed; the lines after it were "
            "read as rows of their own",
        ),
    )
    # A closing quote followed by more text is malformed too; the next row still reads.
    content = f'{HEADER}\n"r1" ,c1,,completed,1,,,\n{rows[2]}\n'.encode()
    got = records(tmp_path, "p.csv", content)
    assert got[0][0] == 2
    assert got[0][2][0] == "malformed_csv_row"
    assert got[1][2]["order_id"] == "r3"


def test_records__csv_invalid_utf8_row(tmp_path):
    content = (
        HEADER.encode() + b"\n"
        b"o1,c\xff,,completed,1,,2026-11-01T00:00:00Z,\n"
        b"o2,c\x80,,completed,1,,2026-11-01T00:00:00Z,\n"
        b"o3,c3,,completed,1,,2026-11-01T00:00:00Z,\n"
    )
    got = records(tmp_path, "o.csv", content)
    assert got[0] == (
        2,
        b"o1,c\xff,,completed,1,,2026-11-01T00:00:00Z,",
        ("invalid_utf8", "row is not valid UTF-8"),
    )
    assert got[1][::2] == (3, ("invalid_utf8", "row is not valid UTF-8"))
    assert got[2][0] == 4
    assert got[2][2]["order_id"] == "o3"


def test_records__csv_field_limit_follows_the_record_limit(tmp_path):
    previous = csv.field_size_limit()
    try:
        csv.field_size_limit(131072)  # Python's default
        big = "x" * 150_000
        content = f"{HEADER}\no1,{big},,completed,1,,2026-11-01T00:00:00Z,\n".encode()
        got = records(tmp_path, "o.csv", content, max_bytes=200_000)
        assert got[0][2]["customer_id"] == big
        csv.field_size_limit(15)  # the header's longest name is 11
        content = f"{HEADER}\no1,{'y' * 20},,completed,1,,,\no2,c,,completed,1,,,\n"
        got = records(tmp_path, "p.csv", content.encode(), max_bytes=5)
        assert got[0][:2] == (2, b"")
        assert got[0][2] == (
            "record_too_large",
            "CSV row cannot be read: field larger than field limit (15)",
        )
        assert got[1][0] == 3
    finally:
        csv.field_size_limit(previous)


def test_records__ndjson_and_gzip_and_json_errors(tmp_path):
    content = b'{"order_id":"o1"}\n\n{"order_id":\n{"a":"\xed\xa0\x80"}\n'
    for name, stored in (
        ("o.ndjson", content),
        ("o.ndjson.gz", gzip.compress(content)),
    ):
        got = records(tmp_path, name, stored)
        assert got[0] == (1, b'{"order_id":"o1"}', {"order_id": "o1"})
        assert got[1][:2] == (3, b'{"order_id":')
        assert got[1][2][0] == "invalid_json"
        assert got[1][2][1].startswith("not valid JSON: ")
        assert got[2][:2] == (4, b'{"a":"\xed\xa0\x80"}')
        assert got[2][2][0] == "invalid_utf8"


def test_records__json_array_file(tmp_path):
    got = records(tmp_path, "o.json", b'[{"order_id": "a"}, {"order_id": "b"}]')
    assert got == [
        (1, b'{"order_id":"a"}', {"order_id": "a"}),
        (2, b'{"order_id":"b"}', {"order_id": "b"}),
    ]


def test_records__parquet_values_in_json_form(tmp_path):
    path = tmp_path / "o.parquet"
    with duckdb.connect() as duck:
        duck.execute("set TimeZone = 'UTC'")
        duck.execute(
            "copy (select 'o1' as order_id, 12.50::decimal(10,2) as amount, "
            "3.00::decimal(10,2) as whole, timestamptz '2026-11-01 10:00:00+02' as tz, "
            "timestamp '2026-11-01 10:00:00' as naive, date '2026-11-01' as d, "
            "time '10:11:12' as t, interval 90 seconds as i, '\\x41\\x42'::blob as b, "
            "{'k': [1, 2]} as s, uuid '00000000-0000-0000-0000-000000000001' as u, "
            "true as flag, null as nothing "
            "union all select 'o2', null, null, null, null, null, null, null, null, "
            f"null, null, false, null) to '{path}' (format parquet)"
        )
    got = records(tmp_path, "o.parquet", path.read_bytes())
    assert [(line, record) for line, _, record in got] == [
        (1, {"order_id": "o1", "amount": 12.5, "whole": 3, "tz": "2026-11-01T08:00:00",
             "naive": "2026-11-01T10:00:00", "d": "2026-11-01", "t": "10:11:12",
             "i": 90.0, "b": "QUI=", "s": {"k": [1, 2]},
             "u": "00000000-0000-0000-0000-000000000001", "flag": True,
             "nothing": None}),
        (2, {"order_id": "o2", "amount": None, "whole": None, "tz": None, "naive": None,
             "d": None, "t": None, "i": None, "b": None, "s": None, "u": None,
             "flag": False, "nothing": None}),
    ]  # fmt: skip
    assert orjson.loads(got[0][1]) == got[0][2]


BIG = "12345678901234567890123456789"  # a whole decimal(38): an int beyond 64 bits


def test_records__parquet_value_without_json_form_is_that_rows_reject(tmp_path):
    path = tmp_path / "o.parquet"
    with duckdb.connect() as duck:
        duck.execute(
            "copy (select 'o1' as order_id, "
            f"{BIG}::decimal(38, 0) as big "
            f"union all select 'o2', 1) to '{path}' (format parquet)"
        )
    got = records(tmp_path, "o.parquet", path.read_bytes())
    assert got[0][0] == 1
    assert got[0][1] == repr(("o1", Decimal(BIG))).encode()
    assert got[0][2] == (
        "invalid_value",
        "a value has no JSON form: Integer exceeds 64-bit range",
    )
    assert got[1][0] == 2
    assert got[1][2] == {"order_id": "o2", "big": 1}


def test_plain__values_parquet_may_hold():
    assert orders._plain(Decimal("NaN")) == "NaN"
    assert orders._plain(Decimal("2.50")) == 2.5
    assert orders._plain(Decimal("2.00")) == 2
    assert orders._plain(datetime(2026, 1, 1, 12, tzinfo=None)) == "2026-01-01T12:00:00"
    assert orders._plain(date(2026, 1, 2)) == "2026-01-02"
    assert orders._plain(time(1, 2, 3)) == "01:02:03"
    assert orders._plain(timedelta(minutes=2)) == 120.0
    assert orders._plain(bytearray(b"AB")) == "QUI="
    assert orders._plain(memoryview(b"AB")) == "QUI="
    assert orders._plain((1, Decimal("1.5"))) == [1, 1.5]
    assert orders._plain({1: date(2026, 1, 2)}) == {"1": "2026-01-02"}
    assert orders._plain(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    for value in (None, "s", 3, 1.5, False):
        assert orders._plain(value) == value


def test_plain__zoned_times_become_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    pytime.tzset()
    try:
        zoned = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
        assert orders._plain(zoned) == "2026-01-01T10:00:00"
    finally:
        monkeypatch.undo()
        pytime.tzset()


def test_timestamp__offsets_become_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    pytime.tzset()
    try:
        assert orders._timestamp("2026-01-01T12:00:00+02:00", "t") == datetime(
            2026, 1, 1, 10
        )
    finally:
        monkeypatch.undo()
        pytime.tzset()


def test_records__not_parquet_is_unreadable(tmp_path):
    source = inspect(_put(tmp_path / "o.parquet", b"PAR1 not really"))
    with pytest.raises(orders.UnreadableFileError) as error:
        list(orders._records(source, 1 << 20))
    assert str(error.value).startswith("not a readable Parquet file: ")


# ------------------------------------------------------------------ staging
def stage_file(tmp_path: Path, name: str, content: bytes, max_bytes: int = 1 << 20):
    source = inspect(_put(tmp_path / name, content))
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    duck = duckdb.connect()
    duck.execute("set TimeZone = 'UTC'")
    orders.stage(duck, source, workdir, Options(max_record_bytes=max_bytes), Clock(NOW))
    classified = duck.execute(
        f"select line_no, reason, detail, order_id, customer_id, email, status, "
        f"total_cents, currency, ordered_at, updated_at, payload from {CLASSIFIED} "
        "order by line_no"
    ).fetchall()
    py_rejects = duck.execute(
        f"select line_no, reason, detail, raw from {PY_REJECTS} order by line_no"
    ).fetchall()
    duck.close()
    assert list(workdir.iterdir()) == []  # nothing left behind
    return classified, py_rejects


def test_stage__valid_rows_typed_and_rejects_with_raw_text(tmp_path):
    lines = [
        orjson.dumps(flat()),
        orjson.dumps(flat(order_id="o2", status="lost")),
        orjson.dumps(flat(order_id="o3", total_cents="1" * 5000)),
        orjson.dumps(flat(order_id="o4", currency=None, email=None)),
    ]
    classified, py_rejects = stage_file(tmp_path, "o.ndjson", b"\n".join(lines))
    assert classified == [
        (1, None, None, "o1", "c1", "ana@example.org", "completed", 1250, "USD",
         datetime(2026, 11, 1, 10), datetime(2026, 11, 2, 9), orjson.dumps(flat()).decode()),
        (4, None, None, "o4", "c1", None, "completed", 1250, None,
         datetime(2026, 11, 1, 10), datetime(2026, 11, 2, 9), lines[3].decode()),
    ]  # fmt: skip
    assert py_rejects[0] == (
        2,
        "invalid_status",
        "status 'lost' is not completed/refunded/cancelled",
        lines[1].decode(),
    )
    # Whatever else one record's values make fail is that record's reject.
    assert py_rejects[1][:2] == (3, "invalid_value")
    assert py_rejects[1][2] == (
        "ValueError: Exceeds the limit (4300 digits) for integer string conversion: "
        "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit"
    )
    assert len(py_rejects) == 2


def test_stage__record_size_limit_exactly(tmp_path):
    record = orjson.dumps(flat())
    other = orjson.dumps(flat(order_id="o22"))  # one byte more
    content = record + b"\n" + other + b"\n"
    classified, py_rejects = stage_file(tmp_path, "o.ndjson", content, len(record))
    assert [row[0] for row in classified] == [1]
    assert py_rejects == [
        (2, "record_too_large", f"record is {len(other)} bytes", other.decode())
    ]


def test_stage__unreadable_gzip_empty_file_truncation_and_not_parquet(tmp_path):
    assert stage_file(tmp_path, "o.csv.gz", b"garbage") == (
        [],
        [
            (
                None,
                "invalid_gzip",
                "not a readable gzip file: Not a gzipped file (b'ga')",
                "",
            )
        ],
    )
    assert stage_file(tmp_path, "e.csv", b"") == ([], [])
    assert stage_file(tmp_path, "h.csv", b"  \n") == ([], [])
    content = f"{HEADER}\no1,c,,completed,1,,2026-11-01T00:00:00Z,\no2,c".encode()
    classified, py_rejects = stage_file(
        tmp_path, "t.csv.gz", gzip.compress(content)[:-8]
    )
    assert [row[:4] for row in classified] == [(2, None, None, "o1")]
    truncation = inspect(tmp_path / "t.csv.gz").truncation
    assert isinstance(truncation, Reject)
    assert py_rejects == [
        (3, "truncated_gzip", truncation.detail, "o2,c"),
    ]
    classified, py_rejects = stage_file(tmp_path, "p.parquet", b"PAR1 not really")
    assert classified == []
    assert [row[::3] for row in py_rejects] == [(None, "")]
    assert [row[:2] for row in py_rejects] == [(None, "unreadable_file")]
    assert py_rejects[0][2].startswith("not a readable Parquet file: ")


def test_row__invalid_record_error_from_reading_is_raised_as_is():
    error = InvalidRecordError("malformed_csv_row", "x")
    with pytest.raises(InvalidRecordError) as raised:
        orders._row(1, b"", error, 100, Clock(NOW))
    assert raised.value is error
