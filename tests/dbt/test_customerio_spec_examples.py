"""Known answers from Customer.io's reporting-webhook OpenAPI spec, checked event by event.

Every example in tests/demo_data/customerio-reporting-webhooks.openapi.json that is a
whole webhook event (an object with an `event_id`, wherever the spec puts it: the request
body's `examples`, or a component schema's `example`) is written as NDJSON, loaded with the
real CLI (`audiences load webhooks`), built with `dbt build` on a private DuckDB file, and
looked up in `fct_message_events`. The expected values are read from the example JSON here,
following Customer.io's field descriptions (docs/customerio-webhooks.md), never from our
loader or models.

Two facts about the examples shape the test, neither changes what an example means:
- The spec's request-body examples all share one `event_id` (01E4C4CT6YDC7Y5M7FE1GWWPQJ).
  The loader keeps one row per `event_id` (the first body wins, later ones are duplicates),
  so loaded verbatim only the first would land; `test_spec_examples_verbatim_share_one_id`
  pins exactly that. For the event-by-event check each example gets its own id, the
  spec's id suffixed with the example's name.
- Their timestamps (1613063089 = 2021-02-11, 1713484800 = 2024-04-19) sit inside the
  loaders' window (after 2000-01-01, not more than a day after the load,
  scripts/loaders/validity.py), so the load time needs no adjusting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests import dbt_commands
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
SPEC = REPO_ROOT / "tests" / "demo_data" / "customerio-reporting-webhooks.openapi.json"
# Examples the loader rightly rejects, with the reason it gives. The component schema
# `email_event_common` illustrates only the fields shared by every email event: it has no
# `metric` and no `data`, so it is not a loadable event on its own.
EXPECTED_REJECTS = {"components/schemas/email_event_common": "missing_metric"}


@dataclass(frozen=True)
class Example:
    name: str  # where the spec holds it
    event: dict


def spec_examples() -> list[Example]:
    """Every whole-event example in the spec, in document order."""
    document = json.loads(SPEC.read_text())
    found: list[Example] = []

    def take(name: str, value: object) -> None:
        if isinstance(value, dict) and "event_id" in value:
            found.append(Example(name, value))

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if "example" in node:
                take(path, node["example"])
            examples = node.get("examples")
            if isinstance(examples, dict):  # OpenAPI: name -> {summary, value}
                for key, entry in examples.items():
                    take(f"{path}/examples/{key}", entry.get("value"))
            elif isinstance(examples, list):  # JSON Schema: a plain list
                for index, entry in enumerate(examples):
                    take(f"{path}/examples[{index}]", entry)
            for key, sub in node.items():
                walk(sub, f"{path}/{key}".lstrip("/"))
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{path}[{index}]")

    walk(document, "")
    return found


def unique_id(example: Example) -> str:
    return f"{example.event['event_id']}-{example.name.rsplit('/', 1)[1]}"


def _env(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = dbt_commands.run(args, env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _load(env: dict[str, str], path: Path) -> None:
    # Rejects are expected here (EXPECTED_REJECTS), so the reject threshold is lifted.
    _run(env, str(BIN / "audiences"), "load", "webhooks", str(path),
         "--max-reject-pct", "100")  # fmt: skip


def _rows(env: dict[str, str], sql: str) -> list[tuple]:
    with duckdb.connect(env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        return db.execute(sql).fetchall()


def _write_ndjson(path: Path, events: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    found = spec_examples()
    assert found, f"no whole-event example found in {SPEC.name}"
    return found


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, examples: list[Example]
) -> dict[str, str]:
    root = tmp_path_factory.mktemp("spec-examples")
    env = _env(root)
    events = [{**example.event, "event_id": unique_id(example)} for example in examples]
    _load(env, _write_ndjson(root / "landing" / "webhooks" / "examples.ndjson", events))
    latest = max(event["timestamp"] for event in events if "timestamp" in event)
    as_of = datetime.fromtimestamp(latest, UTC) + timedelta(days=1)
    as_of_vars = '{"as_of": "' + as_of.strftime("%Y-%m-%dT%H:%M:%SZ") + '"}'
    _run(env, str(BIN / "dbt"), "build", "--select", "+fct_message_events",
         "--no-use-colors", "--vars", as_of_vars)  # fmt: skip
    return env


def test_the_spec_has_examples_of_every_kind_we_check(examples: list[Example]) -> None:
    names = {example.name for example in examples}
    assert set(EXPECTED_REJECTS) <= names, "a listed reject is no longer in the spec"
    request_body = [name for name in names if name.startswith("webhooks/")]
    # Three today (customer_subscribed, email_sent, sms_sent); fewer means the walk broke.
    assert len(request_body) >= 3, sorted(names)


def test_loader_accounts_for_every_example(
    built: dict[str, str], examples: list[Example]
) -> None:
    reasons = _rows(
        built, "select source_line, reason from raw_loader.rejects order by source_line"
    )
    rejected = [(examples[line - 1].name, reason) for line, reason in reasons]
    assert rejected == list(EXPECTED_REJECTS.items())
    ledger = _rows(
        built,
        "select records_read, records_loaded, records_duplicate, records_rejected "
        "from raw_loader.loaded_files",
    )
    landing = len(examples) - len(EXPECTED_REJECTS)
    assert ledger == [(len(examples), landing, 0, len(EXPECTED_REJECTS))]


def _text(value: object) -> str | None:
    """A JSON scalar as the warehouse's text columns hold it."""
    return None if value is None else str(value)


def _expected(example: Example) -> dict[str, object]:
    event, data = example.event, example.event.get("data", {})
    identifiers = data.get("identifiers", {})
    # data.customer_id is deprecated (docs/customerio-webhooks.md); identifiers.id is the
    # customer id. The spec's examples set them to different values ("0200000001", "42").
    email = identifiers.get("email") or data.get("email_address")
    metric = event["metric"]
    if metric == "clicked":
        machine = data.get("machine")
    elif metric == "opened":
        machine = data.get("prefetched")  # machine_open_flags defaults to [prefetched]
    else:
        machine = None
    return {
        "channel": event["object_type"],
        "metric": metric,
        "delivery_id": _text(data.get("delivery_id")),
        "campaign_id": _text(data.get("campaign_id")),
        "broadcast_id": _text(data.get("broadcast_id")),
        "action_id": _text(data.get("action_id")),
        "customer_id": _text(identifiers.get("id")),
        "cio_id": _text(identifiers.get("cio_id")),
        "email": email.strip().lower() if email else None,
        "link_url": data.get("href"),
        "occurred_at": datetime.fromtimestamp(event["timestamp"], UTC).replace(
            tzinfo=None
        ),
        "is_machine": machine,
        "is_prefetched": data.get("prefetched"),
        "is_proxied": data.get("proxied"),
        "source_system": "webhook",
    }


COLUMNS = (
    "channel", "metric", "delivery_id", "campaign_id", "broadcast_id", "action_id",
    "customer_id", "cio_id", "email", "link_url", "occurred_at", "is_machine",
    "is_prefetched", "is_proxied", "source_system",
)  # fmt: skip


def test_every_loadable_example_lands_in_fct_message_events(
    built: dict[str, str], examples: list[Example]
) -> None:
    loadable = [e for e in examples if e.name not in EXPECTED_REJECTS]
    assert loadable
    rows = _rows(
        built,
        f"select source_event_id, {', '.join(COLUMNS)} from analytics.fct_message_events",
    )
    landed = {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in rows}
    assert set(landed) == {unique_id(example) for example in loadable}
    for example in loadable:
        expected = _expected(example)
        assert set(expected) == set(COLUMNS)
        assert landed[unique_id(example)] == expected, example.name


def test_spec_examples_verbatim_share_one_id(
    tmp_path: Path, examples: list[Example]
) -> None:
    """Loaded as published, the request-body examples collide on their one event_id: the
    first body is kept and the others count as duplicates (a differing body is noted as a
    conflict, not lost silently)."""
    request_body = [e for e in examples if e.name.startswith("webhooks/")]
    assert len({e.event["event_id"] for e in request_body}) == 1
    env = _env(tmp_path)
    _load(env, _write_ndjson(tmp_path / "verbatim.ndjson",
                             [e.event for e in request_body]))  # fmt: skip
    kept = _rows(env, "select event_id, object_type, metric from "
                      "raw_customerio.webhook_events")  # fmt: skip
    first = request_body[0].event
    assert kept == [(first["event_id"], first["object_type"], first["metric"])]
    ledger = _rows(
        env,
        "select records_read, records_loaded, records_duplicate, records_rejected "
        "from raw_loader.loaded_files",
    )
    assert ledger == [(len(request_body), 1, len(request_body) - 1, 0)]
