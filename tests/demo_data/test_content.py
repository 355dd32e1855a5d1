"""What the generated data says is what a D2C brand's Customer.io + shop would produce."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from tests.demo_data.files import parse, raw_lines, stream_files

# docs/customerio-webhooks.md §2, from the spec's oneOf lists
METRIC_MATRIX = {
    "customer": {"subscribed", "unsubscribed", "cio_subscription_preferences_changed"},
    "email": {
        "drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
        "unsubscribed", "bounced", "dropped", "spammed", "failed", "undeliverable",
    },
    "push": {
        "drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
        "bounced", "dropped", "failed", "undeliverable",
    },
    "sms": {
        "drafted", "attempted", "sent", "delivered", "clicked", "converted", "bounced",
        "failed", "undeliverable", "replied",
    },
    "in_app": {
        "drafted", "attempted", "sent", "opened", "clicked", "converted", "failed",
        "undeliverable",
    },
}  # fmt: skip
PARENT_KEYS = (
    "campaign_id",
    "broadcast_id",
    "newsletter_id",
    "transactional_message_id",
)
ORDER_HEADER = (
    "order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at"
)


def _events(root: Path, folder: str) -> list[dict]:
    """First copy of every valid event, in file order."""
    seen = set()
    out = []
    for path in stream_files(root, folder):
        for line in raw_lines(path):
            event = parse(line)
            if event is None:
                continue
            key = event.get("event_id") or event.get("messageId")
            if key not in seen:
                seen.add(key)
                out.append(event)
    return out


@pytest.fixture(scope="module")
def webhooks(small_run: Path) -> list[dict]:
    return _events(small_run, "webhooks")


@pytest.fixture(scope="module")
def segment(small_run: Path) -> list[dict]:
    return _events(small_run, "segment")


@pytest.fixture(scope="module")
def orders(small_run: Path) -> list[dict]:
    rows = []
    for path in stream_files(small_run, "orders"):
        assert path.read_text().splitlines()[0] == ORDER_HEADER
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def test_content__metric_matrix_per_object_type_is_respected(
    webhooks: list[dict],
) -> None:
    pairs = Counter((e["object_type"], e["metric"]) for e in webhooks)
    for object_type, metric in pairs:
        assert metric in METRIC_MATRIX[object_type], (object_type, metric)
    wanted = {
        ("email", m)
        for m in (
            "drafted",
            "attempted",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "converted",
            "bounced",
            "dropped",
            "failed",
            "spammed",
            "unsubscribed",
        )
    } | {("sms", m) for m in ("sent", "delivered", "clicked", "bounced", "replied")}
    wanted |= {("push", m) for m in ("sent", "delivered", "opened", "bounced")}
    wanted |= {("in_app", m) for m in ("sent", "opened", "clicked")}
    wanted |= {("customer", "unsubscribed")}
    assert wanted <= set(pairs), wanted - set(pairs)


def test_content__mpp_flags_only_on_email_opens_and_machine_only_on_clicks(
    webhooks: list[dict],
) -> None:
    opens = clicks = prefetched = machine = 0
    for e in webhooks:
        data = e["data"]
        is_email_open = (e["object_type"], e["metric"]) == ("email", "opened")
        is_email_click = (e["object_type"], e["metric"]) == ("email", "clicked")
        for flag in ("prefetched", "proxied", "synthetic"):
            assert (flag in data) == is_email_open, e
        assert ("machine" in data) == is_email_click, e
        if is_email_open:
            opens += 1
            prefetched += data["prefetched"]
        if is_email_click:
            clicks += 1
            machine += data["machine"]
    assert 0.25 < prefetched / opens < 0.6  # Apple MPP: a large minority of opens
    assert machine / clicks < 0.15


def test_content__funnel_rates_look_like_a_real_brand(webhooks: list[dict]) -> None:
    by = Counter((e["object_type"], e["metric"]) for e in webhooks)
    email_delivered = by["email", "delivered"]
    assert by["email", "delivered"] / by["email", "sent"] > 0.95
    opened_deliveries = {
        e["data"]["delivery_id"]
        for e in webhooks
        if e["object_type"] == "email" and e["metric"] == "opened"
    }
    assert 0.2 < len(opened_deliveries) / email_delivered < 0.5
    assert 0.01 < by["email", "clicked"] / email_delivered < 0.06
    assert 0.03 < by["sms", "clicked"] / by["sms", "delivered"] < 0.15
    assert by["email", "unsubscribed"] / email_delivered < 0.01


def test_content__parent_variants_and_journey_ids(webhooks: list[dict]) -> None:
    kinds = Counter()
    for e in webhooks:
        if e["object_type"] == "customer":
            continue
        data = e["data"]
        present = [k for k in PARENT_KEYS if k in data]
        assert len(present) == 1, data
        kinds[present[0]] += 1
        if present[0] in ("campaign_id", "broadcast_id"):
            assert isinstance(data["journey_id"], str)
            assert len(data["journey_id"]) == 26
            assert isinstance(data["action_id"], int)
        if present[0] == "broadcast_id":
            assert isinstance(data["trigger_id"], int)
        if present[0] == "transactional_message_id":
            assert e["object_type"] in ("email", "push")
        assert len(e["event_id"]) == 26
    assert all(kinds[k] > 0 for k in PARENT_KEYS), kinds


def test_content__identifiers_carry_the_documented_quirks(webhooks: list[dict]) -> None:
    emails = defaultdict(set)
    ids = defaultdict(set)
    for e in webhooks:
        ident = e["data"]["identifiers"]
        emails[ident["cio_id"]].add(ident["email"])
        ids[ident["cio_id"]].add(ident["id"])
        if ident["id"] is None:
            assert e["data"]["customer_id"] == ""
    # the same address in mixed case in one event, lowercase in another
    assert any(
        len(v) == 2 and len({x.lower() for x in v}) == 1 for v in emails.values()
    )
    assert any(None in v for v in ids.values())  # email-only people
    assert any(len(v) > 1 for v in ids.values())  # an id changed, cio_id did not


def test_content__campaign_catalogue_and_links(
    small_run: Path, webhooks: list[dict]
) -> None:
    catalogue = json.loads((small_run / "campaigns.json").read_text())
    kinds = {p["kind"] for p in catalogue["parents"]}
    assert {
        "cart_recovery", "replenishment", "welcome", "newsletter", "flash_sale",
        "order_confirmation",
    } <= kinds  # fmt: skip
    cart_ids = {
        p["campaign_id"] for p in catalogue["parents"] if p["kind"] == "cart_recovery"
    }
    replenishment = next(
        p for p in catalogue["parents"] if p["kind"] == "replenishment"
    )
    cart_clicks = [
        e for e in webhooks
        if e["metric"] == "clicked" and e["data"].get("campaign_id") in cart_ids
    ]  # fmt: skip
    assert {e["object_type"] for e in cart_clicks} >= {"email"}
    assert any(
        e["data"]["href"].startswith("https://shop.example/cart?") for e in cart_clicks
    )
    replenishment_events = [
        e
        for e in webhooks
        if e["data"].get("campaign_id") == replenishment["campaign_id"]
    ]
    assert replenishment_events  # the 30-day flow runs within the period
    catalogue_hrefs = [
        link["href"] for a in replenishment["actions"] for link in a["links"]
    ]
    assert any("/products/" in href for href in catalogue_hrefs)
    for e in replenishment_events:
        if e["metric"] == "clicked":
            assert e["data"]["href"] in catalogue_hrefs


def test_content__segment_mirrors_webhooks_and_follows_identity_rules(
    webhooks: list[dict], segment: list[dict]
) -> None:
    by_key = {
        (e["data"].get("delivery_id"), e["metric"], e["timestamp"]): e for e in webhooks
    }
    names = {"opened": "Email Opened", "clicked": "Email Link Clicked"}
    mirrored = only_here = 0
    for s in segment:
        assert s["type"] == "track"
        props = s["properties"]
        email = s["context"]["traits"]["email"]
        assert ("userId" in s) != ("anonymousId" in s)
        if "anonymousId" in s:
            assert s["anonymousId"] == email
        if s["event"] == "Email Link Clicked":
            assert props["link_url"] == props["href"]
            assert isinstance(props["link_id"], int)
        if s["event"] == "Email Opened":
            assert isinstance(props["prefetched"], bool)
        seconds = int(datetime.fromisoformat(s["timestamp"]).timestamp())
        metric = next((m for m, n in names.items() if n == s["event"]), None)
        twin = by_key.get((props["delivery_id"], metric, seconds)) if metric else None
        if metric and twin is None:
            only_here += 1
        elif twin is not None:
            mirrored += 1
            assert s.get("userId") == twin["data"]["identifiers"]["id"]
    assert mirrored > 100
    assert only_here > 0


def test_content__orders_follow_the_contract(
    orders: list[dict], webhooks: list[dict]
) -> None:
    assert {r["status"] for r in orders} == {"completed", "refunded", "cancelled"}
    first = {}
    for row in orders:
        assert row["ordered_at"].endswith("Z")
        assert row["updated_at"].endswith("Z")
        int(row["total_cents"])
        if row["status"] == "completed":
            assert row["updated_at"] == row["ordered_at"]
            first[row["order_id"]] = row
        else:
            original = first[row["order_id"]]  # a later version of an existing order
            assert row["updated_at"] > original["updated_at"]
            assert row["ordered_at"] == original["ordered_at"]
            assert row["total_cents"] == original["total_cents"]
    messaged = {e["data"]["identifiers"]["id"] for e in webhooks}
    messaged_emails = {e["data"]["identifiers"]["email"].lower() for e in webhooks}
    never_messaged = [
        r for r in orders
        if r["customer_id"] not in messaged and r["email"].lower() not in messaged_emails
    ]  # fmt: skip
    assert never_messaged


def test_content__some_cart_clickers_do_not_buy(
    small_run: Path, webhooks: list[dict], orders: list[dict]
) -> None:
    last_order = {}
    for row in orders:
        last_order[row["customer_id"]] = max(
            last_order.get(row["customer_id"], ""), row["ordered_at"]
        )
    catalogue = json.loads((small_run / "campaigns.json").read_text())
    cart_ids = {
        p["campaign_id"] for p in catalogue["parents"] if p["kind"] == "cart_recovery"
    }
    clickers = {
        e["data"]["identifiers"]["id"]
        for e in webhooks
        if e["metric"] == "clicked" and e["data"].get("campaign_id") in cart_ids
    }
    assert clickers
    assert any(c not in last_order for c in clickers)
