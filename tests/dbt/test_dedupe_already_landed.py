"""An incremental run of the dedupe (int_message_events_deduplicated) compares each
arriving event with the copy already landed under its key, and keeps the better one, as
a full refresh does. It reads only the held rows that occurred at or after the earliest
arrival's second (macros/time/occurred_since_earliest_arrival.sql): a key includes the
second the event occurred, so older rows cannot match.

The edge: a webhook event held at a whole second (Customer.io's webhook timestamps are
whole seconds), and its Segment copy arriving later in the same second, 0.3 s after it,
as the tick's earliest arrival. The held copy is the better one (webhooks carry more), and
it sits exactly on the bound."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.dbt.small_warehouse import BIN, SECOND, Warehouse, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

EVENTS = "analytics.int_message_events_deduplicated"
MODEL = "int_message_events_deduplicated"


def _held_webhook_delivery(warehouse: Warehouse) -> dict:
    cursor_rows = warehouse.rows(
        "select message_event_id, delivery_id, customer_id, email, occurred_at, "
        f"deduplicated_at from {EVENTS} where source_system = 'webhook' "
        "and channel = 'email' and metric = 'delivered' and delivery_id is not null "
        "and customer_id is not null and email is not null "
        "order by occurred_at desc, message_event_id limit 1"
    )
    names = ("key", "delivery_id", "customer_id", "email", "occurred_at", "written")
    return dict(zip(names, cursor_rows[0], strict=True))


def _segment_delivery(message_id: str, held: dict, occurred: datetime) -> dict:
    return {
        "type": "track",
        "event": "Email Delivered",
        "messageId": message_id,
        "timestamp": occurred.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "receivedAt": (occurred + timedelta(seconds=1)).isoformat() + "Z",
        "userId": held["customer_id"],
        "properties": {"delivery_id": held["delivery_id"]},
        "context": {"traits": {"email": held["email"]}},
    }


def _land_segment_copy(warehouse: Warehouse, held: dict, tmp_path: Path) -> None:
    """The copy, and a later event of another delivery after it in the same file: the
    bound must come from the earliest arrival, not from the last or any other."""
    records = [
        _segment_delivery(
            "segment-copy-of-a-held-webhook-event",
            held,
            held["occurred_at"] + timedelta(milliseconds=300),
        ),
        _segment_delivery(
            "a-later-segment-event",
            {**held, "delivery_id": "a-delivery-no-one-holds"},
            held["occurred_at"] + timedelta(hours=2),
        ),
    ]
    landing = tmp_path / "segment-copy.ndjson"
    landing.write_text(
        "".join(json.dumps(record) + "\n" for record in records), encoding="utf-8"
    )
    result = warehouse.command(
        str(BIN / "audiences"), "load", "segment-events", str(landing), "--no-progress"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded 2 " in result.stdout + result.stderr


def _copies(warehouse: Warehouse, key: str) -> list[tuple]:
    return warehouse.rows(
        f"select source_system, occurred_at from {EVENTS} "
        f"where message_event_id = '{key}' order by 1"
    )


def _warehouse_with_a_held_delivery(
    small_warehouse: Path, tmp_path: Path
) -> tuple[Warehouse, dict]:
    """A copy of the small warehouse and its held webhook delivery, which sits on a
    whole second: exactly on the bound, which the arrival's second rounds down to."""
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = Warehouse(environment(tmp_path), "dev")
    held = _held_webhook_delivery(warehouse)
    assert held["occurred_at"].microsecond == 0, held
    return warehouse, held


def test_a_worse_copy_in_the_held_rows_second_keeps_the_held_row(
    small_warehouse: Path, tmp_path: Path
) -> None:
    warehouse, held = _warehouse_with_a_held_delivery(small_warehouse, tmp_path)
    _land_segment_copy(warehouse, held, tmp_path)

    warehouse.dbt("run", "--select", MODEL, as_of=SECOND)

    # The held webhook copy stays, untouched; the Segment copy is not written.
    assert _copies(warehouse, held["key"]) == [("webhook", held["occurred_at"])]
    written = warehouse.rows(
        f"select deduplicated_at from {EVENTS} where message_event_id = '{held['key']}'"
    )
    assert written == [(held["written"],)]
    # The run read the held rows from the arrival's second on, not the whole history.
    compiled = next((tmp_path / "target" / "compiled").rglob(f"engagement/{MODEL}.sql"))
    bound = held["occurred_at"].strftime("%Y-%m-%d %H:%M:%S")
    assert f"where occurred_at >= cast('{bound}' as timestamp)" in compiled.read_text()

    # What a full refresh of the same raw rows keeps.
    warehouse.dbt("run", "--select", MODEL, "--full-refresh", as_of=SECOND)
    assert _copies(warehouse, held["key"]) == [("webhook", held["occurred_at"])]


def test_a_better_copy_later_in_the_held_rows_second_replaces_it(
    small_warehouse: Path, tmp_path: Path
) -> None:
    # The held copy is the worse one here (as if fetched from the App API, whose times
    # are whole seconds too), and the better Segment copy arrives 0.3 s later in that
    # second, the earliest row the run writes. The run's delete must still reach the
    # held copy, which occurred before every row written: it reads from the earliest
    # written row's second, not from its instant (delete_insert_from_second).
    warehouse, held = _warehouse_with_a_held_delivery(small_warehouse, tmp_path)
    with duckdb.connect(warehouse.env["AUDIENCES_DUCKDB_PATH"]) as db:
        db.execute(
            f"update {EVENTS} set source_system = 'app_api', source_priority = 3 "
            "where message_event_id = ?",
            [held["key"]],
        )
    _land_segment_copy(warehouse, held, tmp_path)

    warehouse.dbt("run", "--select", MODEL, as_of=SECOND)

    copied_at = held["occurred_at"] + timedelta(milliseconds=300)
    assert _copies(warehouse, held["key"]) == [("segment", copied_at)]
