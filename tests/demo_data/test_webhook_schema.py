"""Every generated webhook event validates against Customer.io's published OpenAPI.

`webhooks.reportingWebhook` is a `oneOf` over the object types, whose variants overlap
(the customer schema accepts any object_type), so we validate with anyOf semantics over
those variants, as docs/customerio-webhooks.md advises. Inner `oneOf`s (parent variants,
metrics) stay as published. No exceptions were needed: where the spec requires a field
(`subject` on clicks, `recipient` on failures, `customer_id` + `email_address` on
customer events) the generator writes it.

jsonschema takes milliseconds per event here, so every line is covered through its
*shape*: the key tree with each leaf's JSON type, plus the value of every property the
spec constrains with an `enum`. The spec uses only `type`, `required`, `enum`, `oneOf`,
`anyOf`, `allOf` and `$ref` on these paths, so two events of one shape validate alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.demo_data.files import parse, raw_lines, stream_files

SPEC = Path(__file__).with_name("customerio-reporting-webhooks.openapi.json")
JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
}


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(SPEC.read_text())


@pytest.fixture(scope="module")
def validator(document: dict) -> Draft202012Validator:
    variants = document["webhooks"]["reportingWebhook"]["post"]["requestBody"][
        "content"
    ]["application/json"]["schema"]["oneOf"]
    # The document is the root so that "#/components/schemas/..." references resolve.
    schema = {"components": document["components"], "anyOf": variants}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _enum_properties(document: dict) -> set[str]:
    schemas = document["components"]["schemas"]
    found: set[str] = set()

    def resolve(node: dict) -> dict:
        ref = node.get("$ref", "")
        return (
            schemas[ref.rsplit("/", 1)[1]] if ref.startswith("#/components/") else node
        )

    def walk(node) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "enum" in resolve(sub):
                    found.add(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def _shape(value, enum_keys: set[str], key: str = ""):
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v, enum_keys, k)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", *(_shape(v, enum_keys) for v in value))
    if key in enum_keys:
        return ("=", value)
    return JSON_TYPES.get(type(value), type(value).__name__)


def test_webhook_schema__every_event_line_validates(
    small_run: Path, document: dict, validator: Draft202012Validator
) -> None:
    enum_keys = _enum_properties(document)
    assert {"metric", "object_type", "device_platform"} <= enum_keys
    shapes: dict = {}
    checked = 0
    for path in stream_files(small_run, "webhooks"):
        for line in raw_lines(path):
            event = parse(line)
            if event is None:
                continue  # the injected malformed lines, counted in test_manifest
            checked += 1
            shapes.setdefault(_shape(event, enum_keys), event)
    failures = [e for e in shapes.values() if not validator.is_valid(e)]
    assert checked > 10_000
    assert len(shapes) > 40
    assert not failures, [
        next(iter(validator.iter_errors(failures[0]))).message[-300:],
        failures[0],
    ]


def test_webhook_schema__validator_rejects_a_spec_violation(
    validator: Draft202012Validator,
) -> None:
    """The check has teeth: a click without `link_id` or with a string timestamp fails."""
    click = {
        "event_id": "01J9ZK3M4Q8R2T6V0W1X2Y3Z4A",
        "object_type": "email",
        "metric": "clicked",
        "timestamp": 1727712000,
        "data": {
            "campaign_id": 12,
            "action_id": 87,
            "delivery_id": "RAEC9gFXk2v1",
            "identifiers": {
                "id": "u_1",
                "email": "a@example.org",
                "cio_id": "a1b2c3000001",
            },
            "recipient": "a@example.org",
            "subject": "Hi",
            "href": "https://shop.example/",
            "link_id": 1,
        },
    }
    assert validator.is_valid(click)
    without_link = json.loads(json.dumps(click))
    del without_link["data"]["link_id"]
    assert not validator.is_valid(without_link)
    assert not validator.is_valid(click | {"timestamp": "2024-09-30T16:00:00Z"})
