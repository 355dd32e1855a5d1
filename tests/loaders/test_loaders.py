"""Idempotency, change detection, the three loaders' mappings and the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from scripts.cli import main
from tests.loaders.conftest import event, ndjson, query, run_load, write


def _events(prefix: str, count: int) -> bytes:
    return ndjson(
        *(event(f"{prefix}{i:05d}", timestamp=1727712000 + i) for i in range(count))
    )


def test_webhooks__second_load_changes_nothing(tmp_path: Path, target: str) -> None:
    write(tmp_path / "in" / "a.ndjson", _events("01A", 50))
    write(tmp_path / "in" / "sub" / "b.ndjson.gz", _events("01B", 30), gz=True)
    write(tmp_path / "in" / "sub" / ".hidden.ndjson", _events("01H", 5))
    write(tmp_path / "in" / "sub" / "open.ndjson.tmp", _events("01T", 5))

    first = run_load("webhooks", [tmp_path / "in"], target)
    before = query(
        target, "select count(*), max(_loaded_at) from raw_customerio.webhook_events"
    )
    second = run_load("webhooks", [tmp_path / "in"], target)
    after = query(
        target, "select count(*), max(_loaded_at) from raw_customerio.webhook_events"
    )

    assert first.exit_code == 0, first.output
    assert first.counts == {
        "read": 80,
        "loaded": 80,
        "duplicate": 0,
        "rejected": 0,
        "files_loaded": 2,
        "files_skipped": 0,
    }
    assert second.counts["files_skipped"] == 2
    assert second.counts["read"] == 0
    assert after == before
    assert query(target, "select count(*) from raw_loader.loaded_files") == [(2,)]


def test_webhooks__changed_file_is_reread_without_duplicates(
    tmp_path: Path, target: str
) -> None:
    path = write(tmp_path / "landing.ndjson", _events("01C", 10))
    run_load("webhooks", [path], target)
    # The receiver appended to the same file: same path, new checksum.
    write(path, _events("01C", 15))

    result = run_load("webhooks", [path], target)

    assert result.counts["read"] == 15
    assert result.counts["loaded"] == 5
    assert result.counts["duplicate"] == 10
    assert query(
        target,
        "select count(*), count(distinct event_id) from raw_customerio.webhook_events",
    ) == [(15, 15)]
    assert query(target, "select count(*) from raw_loader.loaded_files") == [(2,)]


def test_webhooks__conflicting_resend_across_files_keeps_first_body(
    tmp_path: Path, target: str
) -> None:
    first = write(tmp_path / "1.ndjson", ndjson(event("01X", metric="clicked")))
    second = write(tmp_path / "2.ndjson", ndjson(event("01X", metric="opened")))
    run_load("webhooks", [first], target)

    result = run_load("webhooks", [second], target)

    assert result.counts["duplicate"] == 1
    assert "1 duplicates had a different body" in result.output
    assert query(target, "select metric from raw_customerio.webhook_events") == [
        ("clicked",)
    ]
    notes = query(
        target, "select reason, source_file, source_line from raw_loader.rejects"
    )
    assert notes == [("duplicate_key_different_body", str(second), 1)]
    assert query(
        target,
        "select records_rejected, records_conflicting "
        "from raw_loader.loaded_files where source_file = %s",
        (str(second),),
    ) == [(0, 1)]


def test_webhooks__a_resend_re_encoded_is_no_conflict_a_changed_value_is(
    tmp_path: Path, target: str
) -> None:
    # A relay that re-encodes a resent event: keys in another order, other spacing. The
    # same JSON value, so a plain duplicate (as jsonb compares on PostgreSQL).
    body = event("01RE", data={"v": 1, "w": [1, {"x": True}]})
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=1)
    changed = orjson.dumps(
        {**body, "data": {"v": 1, "w": [1, {"x": 1}]}}
    )  # true is not 1
    first = write(tmp_path / "1.ndjson", orjson.dumps(body) + b"\n")
    second = write(
        tmp_path / "2.ndjson",
        reordered.replace("\n", "").encode() + b"\n" + changed + b"\n",
    )

    result = run_load("webhooks", [first, second], target)

    assert result.counts["duplicate"] == 2
    notes = query(
        target, "select reason, source_file, source_line from raw_loader.rejects"
    )
    assert notes == [("duplicate_key_different_body", str(second), 2)]


def test_webhooks__too_many_rejects_exit_3_but_data_is_kept(
    tmp_path: Path, target: str
) -> None:
    path = write(tmp_path / "a.ndjson", _events("01R", 9) + b"{broken\n")

    result = run_load("webhooks", [path], target)

    assert result.exit_code == 3
    assert "10.00% of records rejected" in result.output
    assert query(target, "select count(*) from raw_customerio.webhook_events") == [(9,)]


@pytest.mark.parametrize(
    ("max_reject_pct", "exit_code"),
    [("9.99", 3), ("10", 0), ("10.01", 0)],
    ids=["limit_just_below_the_share", "limit_exactly_the_share", "limit_above"],
)
def test_webhooks__reject_threshold_boundary(
    max_reject_pct: str, exit_code: int, tmp_path: Path, duckdb_path: Path
) -> None:
    """1 of 10 rejected is exactly 10 %: only a share *above* the limit fails."""
    path = write(tmp_path / "a.ndjson", _events("01R", 9) + b"{broken\n")

    result = run_load("webhooks", [path], "dev", "--max-reject-pct", max_reject_pct)

    assert result.counts["read"] == 10  # a fresh warehouse: the file is really read
    assert result.counts["rejected"] == 1
    assert result.exit_code == exit_code, result.output


@pytest.mark.parametrize(
    ("good", "exit_code"),
    [(10, 0), (9, 0), (8, 3)],
    ids=["share_below_the_limit", "share_at_the_limit", "share_above_the_limit"],
)
def test_orders__reject_threshold_boundary_by_share(
    good: int, exit_code: int, tmp_path: Path, duckdb_path: Path
) -> None:
    """Limit 10 %: 1 bad of 11 (9.1 %), of 10 (10 %), of 9 (11.1 %)."""
    rows = [f"g{i},completed,1,2026-11-01T00:00:00Z" for i in range(good - 1)]
    rows.append("bad,completed,--1,2026-11-01T00:00:00Z")
    body = "order_id,status,total_cents,ordered_at\n" + "\n".join(rows) + "\n"
    # good - 1 valid rows plus the bad one, so `good` records are read in all.
    path = write(tmp_path / "o.csv", body.encode())
    extra = write(
        tmp_path / "p.csv",
        b"order_id,status,total_cents,ordered_at\n"
        b"x1,completed,1,2026-11-01T00:00:00Z\n",
    )

    result = run_load("orders", [path, extra], "dev", "--max-reject-pct", "10")

    assert result.counts["read"] == good + 1
    assert result.counts["rejected"] == 1
    assert result.exit_code == exit_code, result.output


def test_load__a_new_warehouse_file_is_said_with_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started in another folder, a relative warehouse path names a new, empty file
    there: the load says so (it filled one in silence), and only when it made it."""
    write(tmp_path / "in" / "a.ndjson", _events("01N", 3))
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", "warehouse.duckdb")
    made = run_load("webhooks", [tmp_path / "in"], "dev")
    again = run_load("webhooks", [tmp_path / "in"], "dev")
    assert made.exit_code == again.exit_code == 0, made.output + again.output
    created = elsewhere / "warehouse.duckdb"
    assert created.exists()
    assert f"note: no warehouse was at {created}: a new one is created" in made.output
    assert "no warehouse was at" not in again.output

    # In memory, as dbt-duckdb reads `:memory:`: no file, so nothing to say (the path
    # was made absolute, a file named ':memory:' in the working directory).
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", ":memory:")
    in_memory = run_load("webhooks", [tmp_path / "in"], "dev")
    assert in_memory.counts["loaded"] == 3, in_memory.output
    assert "no warehouse was at" not in in_memory.output
    assert not (elsewhere / ":memory:").exists()


def test_load__usage_errors_exit_2_without_traceback(tmp_path: Path, duckdb_path: Path):
    runner = CliRunner()
    missing = runner.invoke(main, ["load", "webhooks", str(tmp_path / "nope")])
    bad_target = runner.invoke(
        main, ["load", "webhooks", str(tmp_path), "--target", "nowhere"]
    )

    assert missing.exit_code == 2
    assert bad_target.exit_code == 2
    assert "unknown target 'nowhere'" in bad_target.stderr
    assert "Traceback" not in bad_target.output + bad_target.stderr


@pytest.mark.parametrize("command", ["webhooks", "segment-events", "orders"])
def test_load__help_shows_examples(command: str) -> None:
    result = CliRunner().invoke(main, ["load", command, "--help"])

    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert f"audiences load {command} " in result.output


def _track(message_id: str, **overrides: object) -> dict:
    body: dict = {
        "type": "track",
        "event": "Email Link Clicked",
        "messageId": message_id,
        "userId": "u_1001",
        "timestamp": "2024-09-30T18:00:00.123+02:00",
        "properties": {
            "delivery_id": "RAEC9",
            "campaign_id": 12,
            "href": "https://x.org",
        },
    }
    body.update(overrides)
    return body


def test_segment_events__maps_dedupes_and_rejects(tmp_path: Path, target: str) -> None:
    no_ts = _track("m-4", timestamp=None, originalTimestamp="2024-09-30T10:00:00Z")
    records = [
        _track("m-1"),
        _track("m-1"),  # duplicate
        _track("m-2", userId=None, anonymousId="ana@example.org"),
        {"type": "identify", "messageId": "m-3", "userId": "u"},
        no_ts,
        _track("m-5", userId=None),
        _track("m-6", timestamp="yesterday"),
        {k: v for k, v in _track("m-7").items() if k != "messageId"},
        # An empty timestamp is not set: originalTimestamp, as for a missing one.
        _track("m-8", timestamp="", originalTimestamp="2024-09-30T11:00:00Z"),
    ]
    path = write(tmp_path / "seg.json", orjson.dumps(records))

    result = run_load("segment-events", [path], target, "--max-reject-pct", "100")

    assert result.counts == {
        "read": 9,
        "loaded": 4,
        "duplicate": 1,
        "rejected": 4,
        "files_loaded": 1,
        "files_skipped": 0,
    }
    rows = query(
        target,
        "select message_id, event, user_id, anonymous_id, occurred_at, _source_line "
        "from raw_customerio_segment.tracks order by message_id",
    )
    assert [(r[0], r[2], r[3], str(r[4]), r[5]) for r in rows] == [
        ("m-1", "u_1001", None, "2024-09-30 16:00:00.123000", 1),
        ("m-2", None, "ana@example.org", "2024-09-30 16:00:00.123000", 3),
        ("m-4", "u_1001", None, "2024-09-30 10:00:00", 5),
        ("m-8", "u_1001", None, "2024-09-30 11:00:00", 9),
    ]
    reasons = query(
        target,
        "select source_line, reason from raw_loader.rejects order by source_line",
    )
    assert reasons == [
        (4, "not_a_track"),
        (6, "missing_identity"),
        (7, "invalid_timestamp"),
        (8, "missing_message_id"),
    ]


def test_segment_events__an_unusable_identity_says_what_it_held(
    tmp_path: Path, target: str
) -> None:
    """A 23-digit numeric userId (a double to JSON, which cannot hold it exactly) or a
    blank one is no id, but "neither userId nor anonymousId is set" misled: the reject
    names what was there. A usable anonymousId beside a bad userId still loads."""
    records = [
        _track("m-1", userId="HUGE"),
        _track("m-2", userId="  "),
        _track("m-3", userId=None),
        _track("m-4", userId=True, anonymousId="ana@example.org"),
    ]
    lines = b"".join(orjson.dumps(r) + b"\n" for r in records)
    # orjson writes no integer past 64 bits; a JSON document may hold one.
    lines = lines.replace(b'"HUGE"', b"12345678901234567890123")
    path = write(tmp_path / "seg.ndjson", lines)

    result = run_load("segment-events", [path], target, "--max-reject-pct", "100")

    assert (result.counts["loaded"], result.counts["rejected"]) == (1, 3)
    assert query(
        target,
        "select source_line, reason, detail from raw_loader.rejects order by 1",
    ) == [
        (
            1,
            "missing_identity",
            "no usable userId or anonymousId: userId is a double "
            "(12345678901234567890123), not a string or a whole number within 64 bits",
        ),
        (2, "missing_identity", "no usable userId or anonymousId: userId is blank"),
        (3, "missing_identity", "neither userId nor anonymousId is set"),
    ]


ORDERS_CSV = b"""order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at
o1,c1,a@x.org,completed,1000,usd,2024-09-01T10:00:00Z,2024-09-01T10:00:00Z
o2,c2,b@x.org,completed,2000,USD,2024-09-02T10:00:00+02:00,2024-09-02T10:00:00+02:00
o1,c1,a@x.org,refunded,1000,usd,2024-09-01T10:00:00Z,2024-09-05T10:00:00Z
o3,c3,c@x.org,pending,1,USD,2024-09-02T10:00:00Z,2024-09-02T10:00:00Z
o4,c4,d@x.org,canceled,abc,USD,2024-09-02T10:00:00Z,2024-09-02T10:00:00Z
"""


def _order_event(event_name: str, ts: str, **props: object) -> dict:
    return {
        "type": "track",
        "event": event_name,
        "messageId": f"{event_name}-{ts}",
        "userId": "c2",
        "timestamp": ts,
        "properties": {"order_id": "o2", **props},
    }


def test_segment_events__a_null_message_id_is_absent(
    tmp_path: Path, target: str
) -> None:
    # An export that writes both fields, messageId left null: the other one counts.
    records = [
        {**_track("x"), "messageId": None, "message_id": "m-snake"},
        {**_track("x"), "messageId": None},
        {**_track("m-camel"), "message_id": 5},  # messageId wins: message_id unread
    ]
    path = write(tmp_path / "seg.ndjson", ndjson(*records))

    result = run_load("segment-events", [path], target, "--max-reject-pct", "100")

    assert (result.counts["loaded"], result.counts["rejected"]) == (2, 1)
    ids = query(target, "select message_id from raw_customerio_segment.tracks")
    assert sorted(ids) == [("m-camel",), ("m-snake",)]
    assert query(target, "select source_line, reason from raw_loader.rejects") == [
        (2, "missing_message_id")
    ]


def test_segment_events__an_offset_of_a_day_or_more_is_invalid(
    tmp_path: Path, target: str
) -> None:
    stamps = [
        "2024-09-30T18:00:00+99:00",  # DuckDB's cast alone moved it four days back
        "2024-09-30T18:00:00.5+24:00",
        "2024-09-30T18:00:00+05:60",
        "2024-09-30T18:00:00+99:00 ",  # a trailing space, which the cast ignores too
        "2024-09-30T18:00:00+99:00:00",  # seconds, which the cast reads too
        "2024-09-30T18:00:00+23:59",  # the largest offset there is
        "2024-09-30",  # a date: its "-30" is no offset
    ]
    records = [_track(f"m-{n}", timestamp=ts) for n, ts in enumerate(stamps)]
    path = write(tmp_path / "seg.ndjson", ndjson(*records))

    result = run_load("segment-events", [path], target, "--max-reject-pct", "100")

    assert (result.counts["loaded"], result.counts["rejected"]) == (2, 5)
    rejects = query(
        target, "select source_line, reason, detail from raw_loader.rejects order by 1"
    )
    assert [row[:2] for row in rejects] == [
        (n, "invalid_timestamp") for n in range(1, 6)
    ]
    assert rejects[0][2] == (
        "timestamp has a UTC offset beyond ±23:59: 2024-09-30T18:00:00+99:00"
    )
    loaded = query(
        target, "select message_id, occurred_at from raw_customerio_segment.tracks"
    )
    assert sorted((m, str(t)) for m, t in loaded) == [
        ("m-5", "2024-09-29 18:01:00"),
        ("m-6", "2024-09-30 00:00:00"),
    ]


def test_orders__latest_version_wins_and_keeps_known_columns(
    tmp_path: Path, target: str
) -> None:
    csv_path = write(tmp_path / "orders.csv", ORDERS_CSV)
    events = write(
        tmp_path / "events.ndjson",
        ndjson(
            _order_event("Order Cancelled", "2024-09-03T00:00:00Z", total=20.5),
            _order_event("Order Completed", "2024-08-01T00:00:00Z", revenue=1),
        ),
    )

    first = run_load("orders", [csv_path, events], target, "--max-reject-pct", "100")
    again = run_load("orders", [csv_path], target)  # unchanged: skipped

    assert first.counts == {
        "read": 7,
        "loaded": 3,
        "duplicate": 2,
        "rejected": 2,
        "files_loaded": 2,
        "files_skipped": 0,
    }
    assert again.counts["files_skipped"] == 1
    rows = query(
        target,
        "select order_id, customer_id, email, status, total_cents, currency, "
        "ordered_at, updated_at from raw_shop.orders order by order_id",
    )
    assert [tuple(map(str, row)) for row in rows] == [
        (
            "o1",
            "c1",
            "a@x.org",
            "refunded",
            "1000",
            "USD",
            "2024-09-01 10:00:00",
            "2024-09-05 10:00:00",
        ),
        (
            "o2",
            "c2",
            "b@x.org",
            "cancelled",
            "2050",
            "USD",
            "2024-09-02 08:00:00",
            "2024-09-03 00:00:00",
        ),
    ]
    reasons = query(
        target, "select reason from raw_loader.rejects order by source_line"
    )
    assert reasons == [("invalid_status",), ("invalid_total",)]


def test_orders__older_export_reloaded_later_does_not_overwrite(
    tmp_path: Path, target: str
) -> None:
    newer = write(
        tmp_path / "new.ndjson",
        ndjson(
            {
                "order_id": "o9",
                "status": "refunded",
                "total_cents": 500,
                "ordered_at": "2024-09-01T00:00:00Z",
                "updated_at": "2024-09-10T00:00:00Z",
            }
        ),
    )
    older = write(
        tmp_path / "old.ndjson",
        ndjson(
            {
                "order_id": "o9",
                "status": "completed",
                "total_cents": 500,
                "ordered_at": "2024-09-01T00:00:00Z",
                "updated_at": "2024-09-01T00:00:00Z",
            }
        ),
    )
    run_load("orders", [newer], target)

    result = run_load("orders", [older], target)

    assert result.counts["duplicate"] == 1
    assert query(target, "select status from raw_shop.orders") == [("refunded",)]


ORDERS_LINE_BY_LINE = [
    # A completion, then its refund: the refund event carries neither the order's total
    # nor its email or date, and must not erase them.
    "o5,c5,e@x.org,completed,4995,USD,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z",
    "o5,c5,,refunded,,,,2026-11-21T10:00:00Z",
    # Two versions with the same updated_at: the first seen wins.
    "o6,c6,f@x.org,completed,100,USD,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z",
    "o6,c6,f@x.org,cancelled,100,USD,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z",
]


@pytest.mark.parametrize("layout", ["one_file", "file_per_line"])
def test_orders__a_file_reads_as_its_lines_loaded_one_by_one(
    tmp_path: Path, target: str, layout: str
) -> None:
    header = ORDERS_CSV.splitlines()[0].decode()
    if layout == "one_file":
        files = [
            write(
                tmp_path / "o.csv",
                "\n".join([header, *ORDERS_LINE_BY_LINE, ""]).encode(),
            )
        ]
    else:
        files = [
            write(tmp_path / f"o{n}.csv", f"{header}\n{line}\n".encode())
            for n, line in enumerate(ORDERS_LINE_BY_LINE)
        ]

    results = [run_load("orders", [path], target) for path in files]

    assert sum(r.counts["loaded"] for r in results) == (
        2 if layout == "one_file" else 3
    )
    assert sum(r.counts["duplicate"] for r in results) == (
        2 if layout == "one_file" else 1
    )
    rows = query(
        target,
        "select order_id, email, status, total_cents, currency, ordered_at, updated_at "
        "from raw_shop.orders order by order_id",
    )
    assert [tuple(map(str, row)) for row in rows] == [
        (
            "o5",
            "e@x.org",
            "refunded",
            "4995",
            "USD",
            "2026-11-20 10:00:00",
            "2026-11-21 10:00:00",
        ),
        (
            "o6",
            "f@x.org",
            "completed",
            "100",
            "USD",
            "2026-11-20 10:00:00",
            "2026-11-20 10:00:00",
        ),
    ]


def test_orders__copies_no_newer_than_the_loaded_row_change_nothing(
    tmp_path: Path, target: str
) -> None:
    header = ORDERS_CSV.splitlines()[0].decode()
    refund = "o7,c7,,refunded,,,,2026-11-21T10:00:00Z"
    older = [  # two completions, both older than the refund already loaded
        "o7,c7,g@x.org,completed,4995,USD,2026-11-20T10:00:00Z,2026-11-20T10:00:00Z",
        "o7,c7,g@x.org,completed,4995,USD,2026-11-20T10:00:00Z,2026-11-20T09:00:00Z",
    ]
    equal = ["o7,c7,h@x.org,refunded,1,EUR,,2026-11-21T10:00:00Z"] * 2  # equal version
    run_load(
        "orders", [write(tmp_path / "a.csv", f"{header}\n{refund}\n".encode())], target
    )
    everything = (
        "select order_id, customer_id, email, status, total_cents, currency, ordered_at, "
        "updated_at, cast(payload as varchar), _source_file, _source_line "
        "from raw_shop.orders"
    )
    before = query(target, everything)

    for name, lines in (("b.csv", older), ("c.csv", equal)):
        path = write(tmp_path / name, "\n".join([header, *lines]).encode() + b"\n")
        result = run_load("orders", [path], target)
        assert (result.counts["loaded"], result.counts["duplicate"]) == (0, 2)

    assert query(target, everything) == before
    assert query(target, "select email, total_cents from raw_shop.orders") == [
        (None, None)
    ]
    # A newer copy is kept; the older one beside it is older than the loaded row too, and
    # loaded line by line would never have been written: its values fill nothing.
    newer = "o7,c7,,cancelled,,,,2026-11-22T10:00:00Z"
    path = write(
        tmp_path / "d.csv", "\n".join([header, older[0], newer]).encode() + b"\n"
    )
    assert run_load("orders", [path], target).counts["loaded"] == 1
    assert query(target, "select status, email, total_cents from raw_shop.orders") == [
        ("cancelled", None, None)
    ]


def test_orders__parquet(tmp_path: Path, duckdb_path: Path) -> None:
    import duckdb

    path = tmp_path / "orders.parquet"
    with duckdb.connect() as duck:
        duck.execute(
            "copy (select 'p1' as order_id, 'c1' as customer_id, null as email, "
            "'completed' as status, 1234 as total_cents, 'EUR' as currency, "
            "timestamp '2024-09-01 00:00:00' as ordered_at, "
            f"timestamp '2024-09-02 00:00:00' as updated_at) to '{path}' (format parquet)"
        )

    result = run_load("orders", [path], "dev")

    assert result.counts["loaded"] == 1
    assert query(
        "dev", "select order_id, total_cents, currency, updated_at from raw_shop.orders"
    ) == [("p1", 1234, "EUR", __import__("datetime").datetime(2024, 9, 2))]
