"""`audiences load orders`: orders into `raw_shop.orders`, one row per `order_id`.

Inputs: CSV with the header `order_id,customer_id,email,status,total_cents,currency,
ordered_at,updated_at` (extra columns kept in the payload), NDJSON / JSON arrays or
Parquet with those fields, and Segment `Order Completed` / `Order Refunded` /
`Order Cancelled` track events (e-commerce spec: `properties.order_id`, `total` or
`revenue` in currency units, `currency`). Orders are few next to engagement events, so
records are validated in Python and then bulk-loaded like every other loader.

Decisions:
- the version is `updated_at` (a Segment event's own timestamp); the latest wins and an
  older or equal version seen later (further down the file, or in a later file) does
  not overwrite (counted duplicate); a record without
  `updated_at` uses `ordered_at`;
- `status` is one of completed / refunded / cancelled (`canceled` is accepted as
  `cancelled`); anything else is rejected so dbt never sees an unknown state;
- money: `total_cents` must be a whole number (ASCII digits, optional minus) that fits
  the bigint column; Segment `total`/`revenue` are currency units and are rounded to
  cents; a `completed` order with a negative total is rejected (`negative_total`): it
  would count as a purchase;
- a later event that lacks a column (a refund without `ordered_at` or `email`) keeps the
  value already known for it instead of erasing it;
- timestamps without a zone are UTC; outside the window every loader shares
  (validity.py) they are rejected;
- a NUL character anywhere in the record is rejected (`unsupported_nul_character`) on
  every engine: PostgreSQL can store it neither in text nor in jsonb;
- a CSV file (or .csv.gz) that may still be being written is left for a later run: it
  changed while it was read, or it ends mid-row (no line break after its last line, or
  a quoted field still open) and changed less than a minute ago (`--settle-seconds`).
  A cut row can parse (12999 cut to 129). Once settled, a last line without a break is
  a finished row, as RFC 4180 allows (files.still_being_written);
- whatever else one record's values make fail is that record's reject
  (`invalid_value`, with the error), never the file's: the file and the files after it
  still load.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
import tempfile
from collections.abc import Generator, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
import orjson

from scripts.loaders import validity
from scripts.loaders.bulk import TableSpec
from scripts.loaders.disk_full import is_disk_full
from scripts.loaders.files import (
    Reject,
    SourceFile,
    detect_shape,
    display_name,
    duckdb_reads_literally,
    iter_records,
    open_content,
    raw_text,
)
from scripts.loaders.stage import (
    CLASSIFIED,
    NUL_DETAIL,
    NUL_REASON,
    Column,
    sql_literal,
    store_python_rejects,
)

EXTENSIONS = (".csv", ".ndjson", ".jsonl", ".json", ".parquet")
STATUSES = {"completed": "completed", "refunded": "refunded", "cancelled": "cancelled"}
STATUSES["canceled"] = "cancelled"
SEGMENT_EVENTS = {
    "Order Completed": "completed",
    "Order Refunded": "refunded",
    "Order Cancelled": "cancelled",
    "Order Canceled": "cancelled",
}

# A CSV file ending mid-line waits until unchanged this long (files.still_being_written).
# A minute: the receiver rotates its files each minute, and an export that stalls
# longer than that mid-row is a writer that died.
SETTLE_SECONDS = 60.0

# The bigint column's range; a larger total would fail the whole file's insert.
BIGINT_MAX = 2**63 - 1
WHOLE_NUMBER = re.compile(r"-?[0-9]+")  # ASCII only: str.isdigit() accepts "²"

SPEC = TableSpec(
    loader="orders",
    schema="raw_shop",
    table="orders",
    key="order_id",
    columns=(
        Column("order_id", "varchar"),
        Column("customer_id", "varchar"),
        Column("email", "varchar"),
        Column("status", "varchar"),
        Column("total_cents", "bigint"),
        Column("currency", "varchar"),
        Column("ordered_at", "timestamp"),
        Column("updated_at", "timestamp"),
    ),
    version="updated_at",
    keep_known=("customer_id", "email", "total_cents", "currency", "ordered_at"),
)


class InvalidRecordError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ------------------------------------------------------------------ reading
def _records(
    source: SourceFile, max_record_bytes: int
) -> Iterator[tuple[int, bytes, Any]]:
    """(line, raw bytes, parsed record or an InvalidRecordError) for each record of a file."""
    name = source.path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        yield from _csv_records(source, max_record_bytes)
    elif name.endswith(".parquet"):
        yield from _parquet_records(source.path)
    else:
        for line, raw in iter_records(source, detect_shape(source)):
            try:
                yield line, raw, orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                reason = (
                    "invalid_utf8" if "utf-8" in str(exc).lower() else "invalid_json"
                )
                yield line, raw, InvalidRecordError(reason, f"not valid JSON: {exc}")


def _csv_records(
    source: SourceFile, max_record_bytes: int
) -> Iterator[tuple[int, bytes, Any]]:
    """The CSV's rows, by the line each ends on.

    A quote opened and never closed makes the reader take every later line of the file
    into that row. That row is one reject (with its own line as raw text), and the
    reading starts again on the line after it, so the rows after a stray quote still
    load, or are rejected for what they are, instead of vanishing into one reject."""
    # A field may be as long as a record may be; Python's default (131,072) is smaller.
    csv.field_size_limit(max(max_record_bytes, csv.field_size_limit()))
    header: list[str] | None = None
    lines_before = 0  # lines of the file before this pass starts (after the cut row)
    while True:
        resume = yield from _csv_pass(source, header, lines_before)
        if resume is None:
            return
        header, lines_before = resume


def _csv_pass(
    source: SourceFile, header: list[str] | None, lines_before: int
) -> Generator[tuple[int, bytes, Any], None, tuple[list[str], int] | None]:
    """Read rows from line `lines_before` + 1 on (the header first when `header` is
    None); returns where to read again after a quote never closed, else None."""
    with open_content(source) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape")
        cut_row = ""
        for _ in range(lines_before):
            cut_row = text.readline()
        if lines_before:
            raw = cut_row.rstrip("\r\n")
            yield (
                lines_before,
                raw.encode("utf-8", errors="surrogateescape"),
                InvalidRecordError(
                    "malformed_csv_row",
                    "a quote opened on this line is never closed; the lines after it "
                    "were read as rows of their own",
                ),
            )
        # strict: a quote opened and never closed is an error, where the lenient reader
        # would read every later line of the file into that one field, silently.
        reader = csv.DictReader(text, fieldnames=header, strict=True)
        if reader.fieldnames is None:  # reads the header: no line, no rows
            return None
        if header is None:
            _check_csv_header(reader.fieldnames)
            _say_missing_optional_columns(source, reader.fieldnames)
        while True:
            ended = lines_before + reader.line_num  # the line the last row ended on
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    return list(reader.fieldnames), ended + 1
                # The reader resumes on the next line; only this row is lost. line_num
                # counts the lines read before the bad one.
                too_large = "field limit" in str(exc)
                yield (
                    lines_before + reader.line_num + 1,
                    b"",
                    InvalidRecordError(
                        "record_too_large" if too_large else "malformed_csv_row",
                        f"CSV row cannot be read: {exc}",
                    ),
                )
                continue
            line = lines_before + reader.line_num
            raw = ",".join(str(v) for v in row.values() if v is not None)
            raw_bytes = raw.encode("utf-8", errors="surrogateescape")
            if None in row:
                yield (
                    line,
                    raw_bytes,
                    InvalidRecordError(
                        "malformed_csv_row", "more fields than the header"
                    ),
                )
            elif any("\udc80" <= ch <= "\udcff" for ch in raw):
                yield (
                    line,
                    raw_bytes,
                    InvalidRecordError("invalid_utf8", "row is not valid UTF-8"),
                )
            elif not any((value or "").strip() for value in row.values()):
                continue
            else:
                yield line, raw_bytes, row


# The header the module docstring documents (extra columns are kept in the payload).
CSV_HEADER = (
    "order_id", "customer_id", "email", "status", "total_cents", "currency",
    "ordered_at", "updated_at",
)  # fmt: skip


# What a CSV header must name (one of the timestamps will do); the other columns may
# be absent from a file, and their values are then empty.
CSV_TIMESTAMPS = ("ordered_at", "updated_at")
CSV_REQUIRED = ("order_id", "status", *CSV_TIMESTAMPS)


class UnreadableFileError(Exception):
    """The file as a whole cannot be read (not Parquet, corrupt); one reject for it."""


def _check_csv_header(names: Sequence[str]) -> None:
    """A header without the columns every order needs makes each row a reject for a
    reason that misleads (a `;`-separated file: `missing_timestamp` on every row), so
    the file is one reject that says what the header lacks."""
    present = {name.strip() for name in names}
    missing = [name for name in ("order_id", "status") if name not in present]
    if not present & set(CSV_TIMESTAMPS):
        missing.append("ordered_at (or updated_at)")
    if missing:
        heard = ",".join(names)
        raise UnreadableFileError(
            f"the CSV header has no {', '.join(missing)} column (it reads "
            f"{heard[:200]!r}); an orders CSV is comma-separated, its header "
            f"{','.join(CSV_HEADER)}"
        )


def _say_missing_optional_columns(source: SourceFile, names: Sequence[str]) -> None:
    """A CSV header without a column its orders can do without loads them with it
    empty, by design (a later event may lack a column: the module doc). A whole file
    without it is most likely an export that left it out, so it is said once, on
    stderr; without both identifiers, no order of the file belongs to a person."""
    present = {name.strip() for name in names}
    missing = [name for name in CSV_HEADER if name not in present]
    missing = [name for name in missing if name not in CSV_REQUIRED]
    if not missing:
        return
    line = (
        f"orders: {display_name(source.path)}: its CSV header has no "
        f"{', '.join(missing)} column: its orders load with "
        f"{'it' if len(missing) == 1 else 'them'} empty"
    )
    if {"customer_id", "email"} <= set(missing):
        line += (
            "; with neither customer_id nor email no order of the file is tied to a "
            "person, so no audience sees those purchases"
        )
    click.echo(line, err=True)


def _parquet_records(path: Path) -> Iterator[tuple[int, bytes, Any]]:
    import duckdb

    if not duckdb_reads_literally(path):
        # DuckDB would expand the name as a glob: it reads a copy under a plain name.
        with tempfile.TemporaryDirectory(prefix="audiences-parquet-") as tmp:
            copy = Path(tmp) / "orders.parquet"
            shutil.copyfile(path, copy)
            yield from _parquet_records(copy)
        return

    with duckdb.connect() as duck:
        duck.execute("set TimeZone = 'UTC'")
        try:
            cursor = duck.execute(
                f"select * from read_parquet({sql_literal(str(path))})"
            )
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        except (duckdb.Error, ValueError, OverflowError) as exc:
            if is_disk_full(exc):  # not the file's fault: the run stops, no reject
                raise
            raise UnreadableFileError(f"not a readable Parquet file: {exc}") from None
    for index, values in enumerate(rows, start=1):
        try:
            record = {
                name: _plain(value) for name, value in zip(names, values, strict=True)
            }
            raw = orjson.dumps(record)
        except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as exc:
            yield (
                index,
                repr(values).encode(),
                InvalidRecordError("invalid_value", f"a value has no JSON form: {exc}"),
            )
            continue
        yield index, raw, record


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a Parquet value, whatever its type (extra columns included)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()  # INTERVAL: seconds, as JSON has no duration
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()  # BLOB
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # UUID, BIT, … : their text form


# ------------------------------------------------------------------ normalising
def normalise(record: Any, future_limit: datetime) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InvalidRecordError(
            "not_an_object", f"a record must be an object, got {type(record).__name__}"
        )
    if _has_nul(record):
        raise InvalidRecordError(NUL_REASON, NUL_DETAIL)
    if record.get("type") is not None or "event" in record:
        row = _from_segment(record)
    else:
        row = _from_flat(record)
    for name in ("ordered_at", "updated_at"):
        if row[name] is None:
            continue
        if row[name] < validity.EARLIEST:
            raise InvalidRecordError(
                validity.OUT_OF_RANGE, f"{name} {row[name]} is before 2000-01-01"
            )
        if row[name] > future_limit:
            raise InvalidRecordError(
                validity.IN_FUTURE, f"{name} {row[name]} is after the load"
            )
    if row["status"] == "completed" and (row["total_cents"] or 0) < 0:
        raise InvalidRecordError(
            "negative_total",
            f"a completed order cannot total {row['total_cents']} cents "
            "(a refund is status refunded)",
        )
    return row


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _from_flat(record: dict[str, Any]) -> dict[str, Any]:
    ordered_at = _timestamp(record.get("ordered_at"), "ordered_at")
    updated_at = _timestamp(record.get("updated_at"), "updated_at") or ordered_at
    if updated_at is None:
        raise InvalidRecordError(
            "missing_timestamp", "neither updated_at nor ordered_at is set"
        )
    return {
        "order_id": _order_id(record.get("order_id")),
        "customer_id": _text(record.get("customer_id")),
        "email": _text(record.get("email")),
        "status": _status(record.get("status")),
        "total_cents": _cents(record.get("total_cents")),
        "currency": _currency(record.get("currency")),
        "ordered_at": ordered_at,
        "updated_at": updated_at,
    }


def _from_segment(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("type") != "track":
        raise InvalidRecordError(
            "not_a_track", f"only track messages are orders, got {record.get('type')!r}"
        )
    event = record.get("event")
    if not isinstance(event, str) or event not in SEGMENT_EVENTS:
        raise InvalidRecordError(
            "not_an_order_event", f"event {event!r} is not an order event"
        )
    props = record.get("properties")
    if not isinstance(props, dict):
        props = {}
    raw_ts = next(
        (
            record.get(k)
            for k in ("timestamp", "originalTimestamp", "sentAt")
            if record.get(k)
        ),
        None,
    )
    occurred = _timestamp(raw_ts, "timestamp")
    if occurred is None:
        raise InvalidRecordError(
            "missing_timestamp", "none of timestamp, originalTimestamp, sentAt"
        )
    status = SEGMENT_EVENTS[event]
    amount = props.get("total", props.get("revenue"))
    context = record.get("context")
    context = context if isinstance(context, dict) else {}
    traits = context.get("traits")
    traits = traits if isinstance(traits, dict) else {}
    ordered_at = _timestamp(props.get("ordered_at"), "properties.ordered_at")
    return {
        "order_id": _order_id(props.get("order_id")),
        "customer_id": _text(record.get("userId")),
        "email": _text(props.get("email") or traits.get("email")),
        "status": status,
        "total_cents": _units_to_cents(amount),
        "currency": _currency(props.get("currency")),
        "ordered_at": ordered_at or (occurred if status == "completed" else None),
        "updated_at": occurred,
    }


def _order_id(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise InvalidRecordError("missing_order_id", "order_id is missing or empty")
    return text


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def _status(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise InvalidRecordError("missing_status", "status is missing")
    status = STATUSES.get(text.lower())
    if status is None:
        raise InvalidRecordError(
            "invalid_status", f"status {text!r} is not completed/refunded/cancelled"
        )
    return status


def _cents(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRecordError(
            "invalid_total", "total_cents must be a whole number, got a boolean"
        )
    if isinstance(value, int):
        cents = value
    elif isinstance(value, float) and value.is_integer():
        cents = int(value)
    elif isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        cents = int(value.strip())
    else:
        raise InvalidRecordError(
            "invalid_total",
            f"total_cents must be a whole number, got {_shown(value)}",
        )
    return _in_range(cents)


def _in_range(cents: int) -> int:
    if abs(cents) > BIGINT_MAX:
        raise InvalidRecordError(
            "invalid_total", f"total {_shown(cents)} cents is out of range"
        )
    return cents


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "…"


def _units_to_cents(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool | dict | list):
            raise InvalidOperation
        amount = Decimal(str(value))
        if not amount.is_finite() or abs(amount) > BIGINT_MAX:
            raise InvalidOperation
        cents = int((amount * 100).quantize(Decimal(1)))
    except (InvalidOperation, ValueError):
        raise InvalidRecordError(
            "invalid_total", f"total/revenue must be a number, got {_shown(value)}"
        ) from None
    return _in_range(cents)


def _currency(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRecordError(
            "invalid_timestamp", f"{name} must be an ISO-8601 string, got {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRecordError(
            "invalid_timestamp", f"{name} is not ISO-8601: {value[:100]!r}"
        ) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC instant
            # Nor has 9999-12-31T23:59:59-05:00, at the other end: say which.
            if parsed.year > validity.EARLIEST.year:
                raise InvalidRecordError(
                    validity.IN_FUTURE, f"{name} {value[:100]!r} is after the load"
                ) from None
            raise InvalidRecordError(
                validity.OUT_OF_RANGE, f"{name} {value[:100]!r} is before 2000-01-01"
            ) from None
    return parsed


# ------------------------------------------------------------------ staging
def stage(duck, source: SourceFile, workdir: Path, opts, clock) -> None:
    """Fill `_ld_class` and `_ld_pyrejects` for one orders file."""
    rejects: list[Reject] = []
    rows_path = workdir / "orders-rows.ndjson"
    with rows_path.open("wb") as out:
        if source.unreadable:
            rejects.append(source.unreadable)
        elif not source.is_empty:
            try:
                for line, raw, record in _records(source, opts.max_record_bytes):
                    try:
                        row = _row(line, raw, record, opts.max_record_bytes, clock)
                    except InvalidRecordError as exc:
                        rejects.append(
                            Reject(line, exc.reason, exc.detail, raw_text(raw))
                        )
                        continue
                    out.write(orjson.dumps(row) + b"\n")
            except UnreadableFileError as exc:
                rejects.append(Reject(None, "unreadable_file", str(exc), ""))
        if source.truncation:
            rejects.append(source.truncation)
    store_python_rejects(duck, rejects, workdir)
    column_types = ", ".join(f"'{c.name}': '{c.type.upper()}'" for c in SPEC.columns)
    names = ", ".join(c.name for c in SPEC.columns)
    duck.execute(
        f"create or replace temp table {CLASSIFIED} (line_no bigint, reason varchar, "
        f"detail varchar, {', '.join(f'{c.name} {c.type}' for c in SPEC.columns)}, "
        "payload varchar)"
    )
    if rows_path.stat().st_size:
        duck.execute(
            f"insert into {CLASSIFIED} select line_no, null, null, {names}, payload "
            f"from read_json({sql_literal(str(rows_path))}, format = 'newline_delimited', "
            f"columns = {{'line_no': 'BIGINT', {column_types}, 'payload': 'VARCHAR'}})"
        )
    rows_path.unlink()


def _row(line: int, raw: bytes, record: Any, max_record_bytes: int, clock) -> dict:
    """The staged row for one record, or InvalidRecordError with its reason."""
    if isinstance(record, InvalidRecordError):
        raise record
    if len(raw) > max_record_bytes:
        raise InvalidRecordError("record_too_large", f"record is {len(raw)} bytes")
    try:
        row = normalise(record, clock.future_limit)
        row["line_no"] = line
        row["payload"] = orjson.dumps(record).decode()
        return row
    except InvalidRecordError:
        raise
    except Exception as exc:  # one record's values must never stop the file
        raise InvalidRecordError(
            "invalid_value", f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None
