"""The bad-input catalogue of `audiences load orders`: one bad record never stops a file.

Each case is the reproduction from the hardening issue: a folder of three files, the
middle one holding the bad record between two good ones. The run exits 0 (the threshold
is opened), the bad record is one reject with its reason, every good record of every
file lands, and a rerun skips the unchanged files without failing. Each case runs on
DuckDB and on PostgreSQL, whose text and jsonb types refuse what DuckDB stores (NUL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.loaders.conftest import query, run_load, write

HEADER = b"order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at"


def _csv_row(order_id: str, total: str = "100", ordered_at: str = "") -> bytes:
    ordered_at = ordered_at or "2026-11-01T00:00:00Z"
    return f"{order_id},c1,,completed,{total},USD,{ordered_at},".encode()


def _csv(*rows: bytes) -> bytes:
    return b"\n".join([HEADER, *rows]) + b"\n"


def _flat(order_id: str, **overrides: object) -> dict:
    body: dict = {
        "order_id": order_id,
        "customer_id": "c1",
        "status": "completed",
        "total_cents": 100,
        "currency": "USD",
        "ordered_at": "2026-11-01T00:00:00Z",
    }
    body.update(overrides)
    return body


def _raw_ndjson(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@dataclass
class Case:
    name: str
    filename: str
    content: bytes
    reasons: list[str]  # reject reasons of the middle file, in line order
    landed: list[str]  # order ids of the middle file that land


def _middle_csv(name: str, bad: bytes, reason: str) -> Case:
    return Case(
        name, "b.csv", _csv(_csv_row("B0"), bad, _csv_row("B2")), [reason], ["B0", "B2"]
    )


CASES = [
    _middle_csv("total_double_minus", _csv_row("B1", "--1"), "invalid_total"),
    _middle_csv("total_superscript_two", _csv_row("B1", "²"), "invalid_total"),
    _middle_csv(
        "total_beyond_bigint",
        _csv_row("B1", "99999999999999999999999"),
        "invalid_total",
    ),
    _middle_csv("completed_negative_total", _csv_row("B1", "-500"), "negative_total"),
    _middle_csv(
        "ordered_at_year_1_with_offset",
        _csv_row("B1", ordered_at="0001-01-01T00:00:00+01:00"),
        "timestamp_out_of_range",
    ),
    _middle_csv(
        "ordered_at_1969",
        _csv_row("B1", ordered_at="1969-12-31T23:59:59Z"),
        "timestamp_out_of_range",
    ),
    _middle_csv(
        "nul_inside_a_cell",
        b"B1,c1,a\x00b@x.org,completed,100,USD,2026-11-01T00:00:00Z,",
        "unsupported_nul_character",
    ),
    Case(
        "ndjson_total_1e300",
        "b.ndjson",
        _raw_ndjson(
            orjson.dumps(_flat("B0")),
            b'{"order_id":"B1","status":"completed","total_cents":1e300,'
            b'"ordered_at":"2026-11-01T00:00:00Z"}',
            orjson.dumps(_flat("B2")),
        ),
        ["invalid_total"],
        ["B0", "B2"],
    ),
    Case(
        "segment_order_event_minus_infinity",
        "b.ndjson",
        _raw_ndjson(
            orjson.dumps(_flat("B0")),
            orjson.dumps(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "timestamp": "-infinity",
                    "properties": {"order_id": "B1", "total": 1},
                }
            ),
            orjson.dumps(_flat("B2")),
        ),
        ["invalid_timestamp"],
        ["B0", "B2"],
    ),
    Case(
        "csv_field_beyond_python_default_limit_loads",
        "b.csv",
        b"order_id,status,total_cents,ordered_at,notes\n"
        b"B0,completed,1,2026-11-01T00:00:00Z,short\n"
        b"B1,completed,1,2026-11-01T00:00:00Z," + b"n" * 140_000 + b"\n",
        [],
        ["B0", "B1"],
    ),
    Case(
        "parquet_that_is_not_parquet",
        "b.parquet",
        b"PAR1 but not really",
        ["unreadable_file"],
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_orders__bad_record_is_a_reject_and_later_files_load(
    case: Case, tmp_path: Path, target: str
) -> None:
    folder = tmp_path / "d"
    write(folder / "a.csv", _csv(_csv_row("A1")))
    bad = write(folder / case.filename, case.content)
    write(folder / "c.csv", _csv(_csv_row("C1")))

    result = run_load("orders", [folder], target, "--max-reject-pct", "100")
    rerun = run_load("orders", [folder], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    loaded = query(target, "select order_id from raw_shop.orders order by order_id")
    assert [row[0] for row in loaded] == ["A1", *case.landed, "C1"]
    rejects = query(
        target,
        "select reason from raw_loader.rejects where source_file = %s "
        "order by source_line",
        (str(bad.resolve()),),
    )
    assert [row[0] for row in rejects] == case.reasons
    counts = result.counts
    assert counts["read"] == counts["loaded"] + counts["duplicate"] + counts["rejected"]
    assert counts["rejected"] == len(case.reasons)
    assert rerun.exit_code == 0, rerun.output
    assert rerun.counts["files_skipped"] == 3


def test_orders__nul_gets_the_same_reason_as_the_line_loaders(
    tmp_path: Path, target: str
) -> None:
    """One reason for NUL everywhere, so both engines and all loaders agree."""
    orders = write(
        tmp_path / "o.csv",
        _csv(b"N1,c1,a\x00b@x.org,completed,100,USD,2026-11-01T00:00:00Z,"),
    )
    hook = write(
        tmp_path / "w.ndjson",
        orjson.dumps(
            {
                "event_id": "01NUL",
                "object_type": "email",
                "metric": "sent",
                "timestamp": 1727712000,
                "data": {"subject": "a\u0000b"},
            }
        )
        + b"\n",
    )

    run_load("orders", [orders], target, "--max-reject-pct", "100")
    run_load("webhooks", [hook], target, "--max-reject-pct", "100")

    rows = query(
        target, "select loader, reason, detail from raw_loader.rejects order by loader"
    )
    assert [row[:2] for row in rows] == [
        ("orders", "unsupported_nul_character"),
        ("webhooks", "unsupported_nul_character"),
    ]
    assert rows[0][2] == rows[1][2]


def test_orders__parquet_extra_columns_of_any_type_land_in_the_payload(
    tmp_path: Path, target: str
) -> None:
    import duckdb

    path = tmp_path / "orders.parquet"
    with duckdb.connect() as duck:
        duck.execute(
            "copy (select 'P1' as order_id, 'completed' as status, 250 as total_cents, "
            "timestamp '2026-11-01 00:00:00' as ordered_at, "
            "'\\x00\\xFF'::blob as receipt, interval 90 minute as prep_time, "
            "{'amount': 12.34::decimal(10, 2), 'tags': [1.5::decimal(4, 1)]} as extra"
            f") to '{path}' (format parquet)"
        )

    result = run_load("orders", [path], target)

    assert result.exit_code == 0, result.output
    assert result.counts["loaded"] == 1
    payload = query(target, "select payload from raw_shop.orders")[0][0]
    payload = orjson.loads(payload) if isinstance(payload, str) else payload
    assert payload["receipt"] == "AP8="  # base64 of the two bytes
    assert payload["prep_time"] == 5400.0
    assert payload["extra"] == {"amount": 12.34, "tags": [1.5]}


def test_a_quote_never_closed_loses_only_its_own_row(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """A stray quote on row 201 of 5,000: the strict reader made the rest of the file
    one reject, and the run read 201 rows, loaded 200 and exited 0 (under 1 %); 4,799
    orders were gone, uncounted, and the file in the ledger kept a rerun from them."""
    rows = [_csv_row(f"o{n}") for n in range(1, 5001)]
    rows[200] = b'"' + rows[200]
    path = write(tmp_path / "orders.csv", _csv(*rows))

    result = run_load("orders", [path], "dev", "--settle-seconds", "0")

    assert result.exit_code == 0, result.output
    counts = result.counts
    assert (counts["read"], counts["loaded"], counts["rejected"]) == (5000, 4999, 1)
    assert query(
        "dev", "select source_line, reason, raw_text from raw_loader.rejects"
    ) == [(202, "malformed_csv_row", rows[200].decode())]


NO_TIMESTAMP = HEADER.replace(b"ordered_at,updated_at", b"created,changed")


@pytest.mark.parametrize(
    ("header", "lacks"),
    [
        (HEADER.replace(b",", b";"), "order_id, status, ordered_at (or updated_at)"),
        (HEADER.replace(b"status", b"state"), "status"),
        (NO_TIMESTAMP, "ordered_at (or updated_at)"),
    ],
)
def test_a_csv_header_without_the_needed_columns_is_one_reject_saying_so(
    tmp_path: Path, duckdb_path: Path, header: bytes, lacks: str
) -> None:
    """A `;`-separated file made every row a `missing_timestamp` reject, which sent the
    operator looking at the timestamps."""
    delimiter = b";" if b";" in header else b","
    rows = [_csv_row(f"o{n}").replace(b",", delimiter) for n in range(3)]
    path = write(tmp_path / "orders.csv", b"\n".join([header, *rows]) + b"\n")

    result = run_load("orders", [path], "dev", "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    assert (result.counts["read"], result.counts["rejected"]) == (1, 1)
    ((reason, detail),) = query("dev", "select reason, detail from raw_loader.rejects")
    assert reason == "unreadable_file"
    assert detail.startswith(f"the CSV header has no {lacks} column (it reads ")


def test_a_csv_header_without_optional_columns_is_said_once(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """A header without customer_id and email loads its orders tied to nobody: no
    audience's "no purchase since" sees them. That is allowed of one record, but of a
    whole file it is most likely an export that left the columns out: said on stderr,
    naming the file; a full header says nothing."""
    write(
        tmp_path / "in" / "a.csv",
        b"order_id,status,total_cents,ordered_at\no1,completed,100,2026-11-01T00:00:00Z\n",
    )
    write(tmp_path / "in" / "b.csv", _csv(_csv_row("B0")))

    result = run_load("orders", [tmp_path / "in"], "dev")

    assert result.exit_code == 0, result.output
    assert result.counts["loaded"] == 2
    said = [line for line in result.output.splitlines() if "header has no" in line]
    assert said == [
        f"orders: {tmp_path / 'in' / 'a.csv'}: its CSV header has no customer_id, "
        "email, currency column: its orders load with them empty; with neither "
        "customer_id nor email no order of the file is tied to a person, so no "
        "audience sees those purchases"
    ]
