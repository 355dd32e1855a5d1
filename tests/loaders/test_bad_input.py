"""The bad-input catalogue of `audiences load webhooks`: one case per row, exact outcomes.

Each case writes one input file, loads it on DuckDB and on PostgreSQL, and asserts the
reconciled counts, the reject reasons (in line order) and which source lines landed.
The decisions behind each outcome are documented in scripts/loaders/webhooks.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from tests.loaders.conftest import event, ndjson, query, run_load, write

GOOD = event("01GOOD0000000000000000000A")
GOOD_LINE = orjson.dumps(GOOD)
NOW = int(time.time())


def _without(key: str) -> dict:
    body = event("01MISSING00000000000000000")
    body.pop(key)
    return body


def _without_identifiers() -> dict:
    body = event("01NOIDENT00000000000000000")
    body["data"].pop("identifiers")
    return body


@dataclass
class Case:
    name: str
    filename: str
    content: bytes
    read: int
    loaded: int
    duplicate: int
    rejected: int
    reasons: list[str]  # reject reasons in line order (conflict notes included)
    landed_lines: list[int]  # _source_line of the landed rows
    gz: bool = False
    check: Callable[[list[tuple]], None] | None = field(default=None, repr=False)


def _occurred(expected: str) -> Callable[[list[tuple]], None]:
    def check(rows: list[tuple]) -> None:
        assert [str(row[3]) for row in rows] == [expected]

    return check


def _metric_and_type(object_type: str, metric: str) -> Callable[[list[tuple]], None]:
    def check(rows: list[tuple]) -> None:
        assert [(row[1], row[2]) for row in rows] == [(object_type, metric)]

    return check


def _payload_has(key: str, value: object) -> Callable[[list[tuple]], None]:
    def check(rows: list[tuple]) -> None:
        payload = rows[0][4]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        assert payload[key] == value

    return check


TWO_MB = event("01BIG00000000000000000000A", data={"content": "x" * (2 << 20)})

CASES = [
    Case("good_line", "a.ndjson", GOOD_LINE + b"\n", 1, 1, 0, 0, [], [1]),
    Case(
        "truncated_line",
        "a.ndjson",
        GOOD_LINE + b'\n{"event_id": "01TRUNC", "object_ty',
        2,
        1,
        0,
        1,
        ["invalid_json"],
        [1],
    ),
    Case(
        "utf8_bom_loads",
        "a.ndjson",
        b"\xef\xbb\xbf" + GOOD_LINE + b"\n",
        1,
        1,
        0,
        0,
        [],
        [1],
    ),
    Case(
        "non_utf8_bytes",
        "a.ndjson",
        GOOD_LINE + b'\n{"event_id": "01BAD\xff\xfe", "metric": "sent"}\n',
        2,
        1,
        0,
        1,
        ["invalid_utf8"],
        [1],
    ),
    Case(
        "json_array_file",
        "a.json",
        orjson.dumps(
            [event("01ARRAY1"), event("01ARRAY2")], option=orjson.OPT_INDENT_2
        ),
        2,
        2,
        0,
        0,
        [],
        [1, 2],
    ),
    Case(
        "one_pretty_object_per_file",
        "a.json",
        orjson.dumps(GOOD, option=orjson.OPT_INDENT_2),
        1,
        1,
        0,
        0,
        [],
        [1],
    ),
    Case(
        "line_is_an_array",
        "a.ndjson",
        GOOD_LINE + b"\n" + orjson.dumps([event("01INARRAY")]) + b"\n",
        2,
        1,
        0,
        1,
        ["not_an_object"],
        [1],
    ),
    Case(
        "timestamp_null",
        "a.ndjson",
        ndjson(event("01TSNULL", timestamp=None)),
        1,
        0,
        0,
        1,
        ["missing_timestamp"],
        [],
    ),
    Case(
        "timestamp_float_is_floored",
        "a.ndjson",
        ndjson(event("01TSFLOAT", timestamp=1727712000.9)),
        1,
        1,
        0,
        0,
        [],
        [1],
        check=_occurred("2024-09-30 16:00:00"),
    ),
    Case(
        "timestamp_digit_string_accepted",
        "a.ndjson",
        ndjson(event("01TSSTR", timestamp="1727712001")),
        1,
        1,
        0,
        0,
        [],
        [1],
        check=_occurred("2024-09-30 16:00:01"),
    ),
    Case(
        "timestamp_iso_string_rejected",
        "a.ndjson",
        ndjson(event("01TSISO", timestamp="2024-09-30T16:00:00Z")),
        1,
        0,
        0,
        1,
        ["invalid_timestamp"],
        [],
    ),
    Case(
        "timestamp_boolean",
        "a.ndjson",
        ndjson(event("01TSBOOL", timestamp=True)),
        1,
        0,
        0,
        1,
        ["invalid_timestamp"],
        [],
    ),
    Case(
        "timestamp_far_future",
        "a.ndjson",
        ndjson(event("01TSFUT", timestamp=NOW + 3 * 86400)),
        1,
        0,
        0,
        1,
        ["timestamp_in_future"],
        [],
    ),
    Case(
        "timestamp_in_milliseconds",
        "a.ndjson",
        ndjson(event("01TSMS", timestamp=1727712000000)),
        1,
        0,
        0,
        1,
        ["timestamp_in_future"],
        [],
    ),
    Case(
        "timestamp_before_2000",
        "a.ndjson",
        ndjson(event("01TSOLD", timestamp=86400)),
        1,
        0,
        0,
        1,
        ["timestamp_out_of_range"],
        [],
    ),
    Case(
        "missing_event_id",
        "a.ndjson",
        ndjson(_without("event_id")),
        1,
        0,
        0,
        1,
        ["missing_event_id"],
        [],
    ),
    Case(
        "event_id_is_a_number",
        "a.ndjson",
        ndjson(event(12345)),  # type: ignore[arg-type]
        1,
        0,
        0,
        1,
        ["invalid_event_id"],
        [],
    ),
    Case(
        "missing_metric",
        "a.ndjson",
        ndjson(_without("metric")),
        1,
        0,
        0,
        1,
        ["missing_metric"],
        [],
    ),
    Case(
        "missing_timestamp",
        "a.ndjson",
        ndjson(_without("timestamp")),
        1,
        0,
        0,
        1,
        ["missing_timestamp"],
        [],
    ),
    Case(
        "missing_object_type",
        "a.ndjson",
        ndjson(_without("object_type")),
        1,
        0,
        0,
        1,
        ["missing_object_type"],
        [],
    ),
    Case(
        "data_is_a_string",
        "a.ndjson",
        ndjson(event("01DATASTR", data="oops")),
        1,
        0,
        0,
        1,
        ["invalid_data"],
        [],
    ),
    Case(
        "missing_identifiers_kept",
        "a.ndjson",
        ndjson(_without_identifiers()),
        1,
        1,
        0,
        0,
        [],
        [1],
    ),
    Case(
        "payload_of_2_mb",
        "a.ndjson",
        GOOD_LINE + b"\n" + orjson.dumps(TWO_MB) + b"\n",
        2,
        1,
        0,
        1,
        ["record_too_large"],
        [1],
    ),
    Case(
        "duplicate_event_id_same_body",
        "a.ndjson",
        GOOD_LINE + b"\n" + GOOD_LINE + b"\n",
        2,
        1,
        1,
        0,
        [],
        [1],
    ),
    Case(
        "duplicate_event_id_different_body",
        "a.ndjson",
        GOOD_LINE + b"\n" + orjson.dumps({**GOOD, "metric": "opened"}) + b"\n",
        2,
        1,
        1,
        0,
        ["duplicate_key_different_body"],
        [1],
        check=_metric_and_type("email", "clicked"),
    ),
    Case(
        "unknown_metric_kept",
        "a.ndjson",
        ndjson(event("01NEWMETRIC", metric="teleported")),
        1,
        1,
        0,
        0,
        [],
        [1],
        check=_metric_and_type("email", "teleported"),
    ),
    Case(
        "unknown_object_type_kept",
        "a.ndjson",
        ndjson(event("01NEWTYPE", object_type="carrier_pigeon")),
        1,
        1,
        0,
        0,
        [],
        [1],
        check=_metric_and_type("carrier_pigeon", "clicked"),
    ),
    Case(
        "extra_fields_kept_in_payload",
        "a.ndjson",
        ndjson(event("01EXTRA", brand_new_field={"nested": [1, 2]})),
        1,
        1,
        0,
        0,
        [],
        [1],
        check=_payload_has("brand_new_field", {"nested": [1, 2]}),
    ),
    Case("empty_file", "a.ndjson", b"", 0, 0, 0, 0, [], []),
    Case(
        "gzip_garbage",
        "a.ndjson.gz",
        b"this is not gzip at all\n",
        1,
        0,
        0,
        1,
        ["invalid_gzip"],
        [],
    ),
    Case(
        "gzip_good",
        "a.ndjson.gz",
        ndjson(event("01GZ1"), event("01GZ2")),
        2,
        2,
        0,
        0,
        [],
        [1, 2],
        gz=True,
    ),
    Case(
        "crlf_line_endings",
        "a.ndjson",
        orjson.dumps(event("01CRLF1"))
        + b"\r\n"
        + orjson.dumps(event("01CRLF2"))
        + b"\r\n",
        2,
        2,
        0,
        0,
        [],
        [1, 2],
    ),
    Case(
        "blank_lines_ignored_not_counted",
        "a.ndjson",
        b"\n"
        + orjson.dumps(event("01BLANK1"))
        + b"\n\n   \n"
        + orjson.dumps(event("01BLANK2")),
        2,
        2,
        0,
        0,
        [],
        [2, 5],
    ),
    Case(
        "nul_character_escape",
        "a.ndjson",
        ndjson(event("01NUL", data={"subject": "a\u0000b"})),
        1,
        0,
        0,
        1,
        ["unsupported_nul_character"],
        [],
    ),
    Case(
        # The text backslash-u-0-0-0-0 (its backslash escaped) is no NUL: it loads.
        "escaped_backslash_before_u0000_is_text",
        "a.ndjson",
        ndjson(event("01NOTNUL", data={"subject": "C:\\u0000\\x"})),
        1,
        1,
        0,
        0,
        [],
        [1],
    ),
    Case(
        # An escaped backslash and then a real NUL: rejected.
        "escaped_backslash_then_nul_character",
        "a.ndjson",
        ndjson(event("01NULAFTER", data={"subject": "C:\\\u0000x"})),
        1,
        0,
        0,
        1,
        ["unsupported_nul_character"],
        [],
    ),
    Case(
        "scalar_line",
        "a.ndjson",
        GOOD_LINE + b'\n"just a string"\n42\n',
        3,
        1,
        0,
        2,
        ["not_an_object", "not_an_object"],
        [1],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_catalogue(case: Case, tmp_path: Path, target: str) -> None:
    path = write(tmp_path / "in" / case.filename, case.content, gz=case.gz)

    result = run_load("webhooks", [path], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    expected = {
        "read": case.read,
        "loaded": case.loaded,
        "duplicate": case.duplicate,
        "rejected": case.rejected,
        "files_loaded": 1,
        "files_skipped": 0,
    }
    assert result.counts == expected
    reasons = query(
        target,
        "select reason from raw_loader.rejects order by source_line, reason",
    )
    assert [row[0] for row in reasons] == case.reasons
    ledger = query(
        target,
        "select records_read, records_loaded, records_duplicate, records_rejected "
        "from raw_loader.loaded_files",
    )
    assert ledger == [(case.read, case.loaded, case.duplicate, case.rejected)]
    rows = query(
        target,
        "select event_id, object_type, metric, occurred_at, payload, _source_line "
        "from raw_customerio.webhook_events order by _source_line",
    )
    assert [row[5] for row in rows] == case.landed_lines
    if case.check:
        case.check(rows)


@pytest.mark.parametrize("loader", ["webhooks", "segment-events"])
def test_nan_or_infinity_in_a_payload_is_that_record_s_reject_on_postgres(
    tmp_path: Path, target: str, loader: str
) -> None:
    # DuckDB's JSON reader takes NaN and Infinity in any case; PostgreSQL's jsonb refuses
    # them, and one such record used to fail the whole file there (and every file after).
    if loader == "webhooks":
        good = orjson.dumps(event("01GOODAFTER")).decode()
        odd = [
            orjson.dumps(event(f"01ODD{n}", data={"score": 1}))
            .decode()
            .replace("1}", f"{token}}}")
            for n, token in enumerate(["NaN", "-Infinity", "inf"])
        ]
    else:

        def track(message_id: str, value: str) -> str:
            return (
                '{"type":"track","event":"Email Opened","messageId":"'
                + message_id
                + '","userId":"u1","timestamp":"2026-12-01T00:00:00Z",'
                '"properties":{"v":' + value + ',"note":"NaN in text"}}'
            )

        good = track("m-good", "1")
        odd = [
            track(f"m-{n}", token)
            for n, token in enumerate(["NaN", "-Infinity", "inf"])
        ]
    first = write(
        tmp_path / "in" / "a.ndjson", ("\n".join([*odd, good]) + "\n").encode()
    )
    second = write(
        tmp_path / "in" / "b.ndjson",
        (good.replace("GOOD", "LATER").replace("m-good", "m-later") + "\n").encode(),
    )

    result = run_load(loader, [first, second], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    rejects = query(
        target, "select source_line, reason from raw_loader.rejects order by 1"
    )
    if target == "postgres":
        assert result.counts["loaded"] == 2
        assert rejects == [(n, "invalid_number") for n in (1, 2, 3)]
    else:  # DuckDB stores and reads them
        assert result.counts["loaded"] == 5
        assert rejects == []


def test_a_key_twice_in_an_object_read_from_is_a_reject_on_postgres(
    tmp_path: Path, target: str
) -> None:
    # DuckDB reads the first copy (the typed columns), jsonb keeps the last (the payload
    # and its columns): on PostgreSQL the row would disagree with itself.
    good = orjson.dumps(event("01DKGOOD", data={"note": {"x": 1}})).decode()
    lines = [
        good.replace('"event_id":"01DKGOOD"', '"event_id":"01DK1","event_id":"01DK2"'),
        good.replace('"01DKGOOD"', '"01DKDATA"').replace(
            '"data":{', '"data":{"x":1,"x":2,'
        ),
        # A repeated key in an object no column reads from: jsonb's choice changes nothing.
        good.replace('"01DKGOOD"', '"01DKDEEP"').replace('{"x":1}', '{"x":1,"x":2}'),
        good,
    ]
    path = write(tmp_path / "a.ndjson", ("\n".join(lines) + "\n").encode())

    result = run_load("webhooks", [path], target, "--max-reject-pct", "100")

    assert result.exit_code == 0, result.output
    rejects = query(
        target, "select source_line, reason from raw_loader.rejects order by 1"
    )
    if target == "postgres":
        assert result.counts["loaded"] == 2
        assert rejects == [(1, "duplicate_json_key"), (2, "duplicate_json_key")]
        ids = query(
            target, "select event_id from raw_customerio.webhook_events order by 1"
        )
        assert ids == [("01DKDEEP",), ("01DKGOOD",)]
    else:  # DuckDB reads the first copy everywhere, the payload's columns included
        assert result.counts["loaded"] == 4
        assert rejects == []
