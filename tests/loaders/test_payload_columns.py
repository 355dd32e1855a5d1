"""The payload columns: the values dbt's staging models read, copied out of each payload
as text when a row lands (PAYLOAD_FIELDS in scripts/loaders/webhooks.py and
segment_events.py), and added, filled from the rows' own payloads, to a raw table an
earlier version created (bulk.add_payload_columns). On DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import orjson
import pytest

from scripts.loaders import segment_events, webhooks
from tests import dbt_commands
from tests.loaders.conftest import event, ndjson, query, run_load, write

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# raw_customerio.webhook_events as the loaders created it before the payload columns
# (keyed on PostgreSQL, whose ON CONFLICT needs it).
OLD_WEBHOOK_TABLE = (
    "create table raw_customerio.webhook_events (event_id varchar, object_type varchar, "
    "metric varchar, occurred_at timestamp, payload {payload}, _source_file varchar, "
    "_source_line bigint, _loaded_at timestamp{key})"
)
OLD_ROW = (
    "insert into raw_customerio.webhook_events values ('01OLD', 'email', 'opened', "
    "'2026-11-30 10:00:00', '{payload}', 'old.ndjson', 1, '2026-11-30 10:05:00')"
)
OLD_PAYLOAD = (
    '{"event_id": "01OLD", "data": {"delivery_id": "d-old", "campaign_id": 7, '
    '"identifiers": {"id": "cus_9", "email": "Old@Example.org"}, "prefetched": true}}'
)


def _create_old_table(target: str, payload_type: str, payload: str) -> None:
    from scripts.warehouse import connect

    wh = connect(target)
    try:
        wh.execute("create schema if not exists raw_customerio")
        key = ", primary key (event_id)" if target == "postgres" else ""
        wh.execute(OLD_WEBHOOK_TABLE.format(payload=payload_type, key=key))
        wh.execute(OLD_ROW.format(payload=payload))
    finally:
        wh.close()


def _columns(target: str) -> list[str]:
    return [
        row[0]
        for row in query(
            target,
            "select column_name from information_schema.columns where table_schema = "
            "'raw_customerio' and table_name = 'webhook_events' order by ordinal_position",
        )
    ]


def test_the_dbt_macro_lists_the_loaders_columns_and_paths() -> None:
    text = (REPO_ROOT / "macros/setup/raw_payload_columns.sql").read_text()
    macro = {
        relation: {
            name: "$." + ".".join(re.findall(r"'(\w+)'", keys))
            for name, keys in re.findall(r"'(\w+)': \[(.*?)\]", body)
        }
        for relation, body in re.findall(r"'(raw_[\w.]+)': \{(.*?)\}", text, re.S)
    }
    assert macro == {
        webhooks.SPEC.qualified: webhooks.PAYLOAD_FIELDS,
        segment_events.SPEC.qualified: segment_events.PAYLOAD_FIELDS,
    }
    # In the same order: the tables dbt creates list the columns as the loaders do.
    assert [list(fields) for fields in macro.values()] == [
        list(webhooks.PAYLOAD_FIELDS),
        list(segment_events.PAYLOAD_FIELDS),
    ]


def test_webhook_values_land_as_the_text_staging_reads(
    tmp_path: Path, target: str
) -> None:
    body = event(
        "01PAY",
        data={
            "campaign_id": 12,
            "delivery_id": "d1",
            "identifiers": {
                "id": "cus_1",
                "email": " Ana@Example.org ",
                "cio_id": "c1",
            },
            "prefetched": True,
            "proxied": False,
            "href": None,
            "journey_id": {"nested": 1},
        },
    )
    result = run_load("webhooks", [write(tmp_path / "a.ndjson", ndjson(body))], target)
    assert result.exit_code == 0, result.output
    names = list(webhooks.PAYLOAD_FIELDS)
    (row,) = query(
        target, f"select {', '.join(names)} from raw_customerio.webhook_events"
    )
    assert dict(zip(names, row, strict=True)) == {
        "delivery_id": "d1",
        "campaign_id": "12",  # a number as its text
        "broadcast_id": None,  # absent
        "newsletter_id": None,
        "action_id": None,
        # An object as its JSON text, as each engine writes it (DuckDB's
        # json_extract_string, PostgreSQL's #>>: what the staging models used before).
        "journey_id": '{"nested":1}' if target == "dev" else '{"nested": 1}',
        "transactional_message_id": None,
        "identifiers_id": "cus_1",
        "identifiers_cio_id": "c1",
        "identifiers_email": " Ana@Example.org ",  # as sent; staging trims and lowers
        "email_address": None,
        "href": None,  # JSON null
        "failure_message": None,
        "recipient": None,
        "prefetched": "true",
        "proxied": "false",
        "machine": None,
    }


def test_segment_values_land_as_the_text_staging_reads(
    tmp_path: Path, target: str
) -> None:
    body = {
        "type": "track",
        "messageId": "m-1",
        "event": "Email Link Clicked",
        "userId": "cus_1",
        "timestamp": "2026-11-30T10:00:00Z",
        "properties": {"delivery_id": "d1", "campaign_id": 7, "link_url": "https://x.example/",
                       "machine": False},
        "context": {"traits": {"email": "ana@example.org"}},
    }  # fmt: skip
    path = write(tmp_path / "s.ndjson", ndjson(body))
    result = run_load("segment-events", [path], target)
    assert result.exit_code == 0, result.output
    (row,) = query(
        target,
        "select delivery_id, campaign_id, link_url, href, traits_email, machine, "
        "prefetched from raw_customerio_segment.tracks",
    )
    assert row == (
        "d1",
        "7",
        "https://x.example/",
        None,
        "ana@example.org",
        "false",
        None,
    )


def test_a_table_from_an_earlier_version_gets_the_columns_filled_from_its_payloads(
    tmp_path: Path, target: str
) -> None:
    _create_old_table(target, "jsonb" if target == "postgres" else "json", OLD_PAYLOAD)
    path = write(tmp_path / "new.ndjson", ndjson(event("01NEW")))

    result = run_load("webhooks", [path], target)

    assert result.exit_code == 0, result.output
    assert result.counts["loaded"] == 1
    assert (
        "raw_customerio.webhook_events: adding the payload columns this version reads "
        "(17) and filling them from its 1 rows" in result.output
    )
    assert set(webhooks.PAYLOAD_FIELDS) <= set(_columns(target))
    rows = query(
        target,
        "select event_id, delivery_id, campaign_id, identifiers_id, identifiers_email, "
        "prefetched, _source_file from raw_customerio.webhook_events order by event_id",
    )
    assert rows == [
        ("01NEW", "RAEC9gFXk2v1abcDEF-ghiJK==", "12", "u_1001", "ana@example.org", None,
         str(path)),
        ("01OLD", "d-old", "7", "cus_9", "Old@Example.org", "true", "old.ndjson"),
    ]  # fmt: skip


def test_an_upgrade_that_fails_changes_nothing_and_says_why(
    tmp_path: Path, duckdb_path: Path
) -> None:
    # A payload that is not JSON (a table another tool wrote with text payloads): the
    # copy fails part-way, and the table must stay exactly as it was.
    _create_old_table("dev", "varchar", "{not json")
    before = query("dev", "select * from raw_customerio.webhook_events")
    path = write(tmp_path / "new.ndjson", ndjson(event("01NEW")))

    result = run_load("webhooks", [path], "dev")

    assert result.exit_code == 2
    assert "could not add the payload columns" in result.output
    assert "nothing was changed" in result.output
    assert "01NEW" not in result.output
    assert _columns("dev") == [
        "event_id", "object_type", "metric", "occurred_at", "payload", "_source_file",
        "_source_line", "_loaded_at",
    ]  # fmt: skip
    assert query("dev", "select * from raw_customerio.webhook_events") == before
    assert query(
        "dev",
        "select count(*) from information_schema.tables "
        "where table_name like 'webhook_events__%'",
    ) == [(0,)]


def test_dbt_names_the_command_that_upgrades_an_older_table(duckdb_path: Path) -> None:
    _create_old_table("dev", "json", OLD_PAYLOAD)
    result = dbt_commands.run(
        [str(BIN / "dbt"), "run", "--select", "stg_customerio__webhook_events",
         "--no-use-colors"],
        os.environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "raw_customerio.webhook_events was created by an earlier version" in (
        result.stdout
    )
    assert "`audiences load webhooks <your landing folder>` once" in result.stdout
    assert _columns("dev")[:5] == ["event_id", "object_type", "metric", "occurred_at",
                                   "payload"]  # fmt: skip


@pytest.mark.parametrize("loader", ["webhooks", "segment-events"])
def test_every_payload_column_is_a_text_column_of_the_spec(loader: str) -> None:
    module = webhooks if loader == "webhooks" else segment_events
    copied = [c for c in module.SPEC.columns if c.payload_path]
    assert [(c.name, c.payload_path, c.type) for c in copied] == [
        (name, path, "varchar") for name, path in module.PAYLOAD_FIELDS.items()
    ]


def test_dbt_gives_an_empty_older_table_the_columns(
    duckdb_path: Path, target: str
) -> None:
    # Every earlier version's on-run-start created all the raw tables, used or not: a
    # team without Segment has an empty old-format tracks table, and no loader to run.
    from scripts.warehouse import connect

    wh = connect(target)
    try:
        wh.execute("create schema if not exists raw_customerio_segment")
        wh.execute(
            "create table raw_customerio_segment.tracks (message_id varchar, event "
            "varchar, user_id varchar, anonymous_id varchar, occurred_at timestamp, "
            f"payload {wh.json_type}, _source_file varchar, _source_line bigint, "
            "_loaded_at timestamp)"
        )
    finally:
        wh.close()
    result = dbt_commands.run(
        [str(BIN / "dbt"), "run", "--select", "stg_customerio_segment__tracks",
         "--target", target, "--no-use-colors"],
        os.environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    columns = {
        row[0]
        for row in query(
            target,
            "select column_name from information_schema.columns where table_schema = "
            "'raw_customerio_segment' and table_name = 'tracks'",
        )
    }
    assert set(segment_events.PAYLOAD_FIELDS) <= columns


def test_a_row_loaded_now_and_an_upgraded_row_hold_the_same_text(
    tmp_path: Path, target: str
) -> None:
    # Values whose text differs between engines (an object's spacing, an exponent): on
    # each engine the two ways a column is filled (the upgrade of an older table and a
    # load) must give the same text, the engine's own reading of the payload.
    odd = '{"nested": {"b": [1, 2], "a": "x"}}'
    payload = OLD_PAYLOAD.replace('"campaign_id": 7', '"campaign_id": 1e-7').replace(
        '"delivery_id": "d-old"', f'"delivery_id": "d-old", "journey_id": {odd}'
    )
    _create_old_table(target, "jsonb" if target == "postgres" else "json", payload)
    new = event("01NEW")
    new["data"].update({"campaign_id": 1e-7, "journey_id": orjson.loads(odd)})
    result = run_load("webhooks", [write(tmp_path / "n.ndjson", ndjson(new))], target)
    assert result.exit_code == 0, result.output

    (old_row, new_row) = query(
        target,
        "select campaign_id, journey_id from raw_customerio.webhook_events "
        "order by event_id desc",
    )
    assert old_row == new_row
    assert old_row[0] is not None
    assert "nested" in old_row[1]
