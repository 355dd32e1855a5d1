"""Issue 10 §3: the seed that maps Customer.io's Segment-path event names covers every
name on Customer.io's "Journeys Message Metrics Source" page, per channel, as Customer.io
means it (docs/customerio-events.md), and keeps the older names real data may carry."""

from __future__ import annotations

import csv

from tests.conftest import REPO_ROOT

SEED = REPO_ROOT / "seeds" / "segment_message_event_names.csv"

# Customer.io's table, channel by channel, as published at
# https://docs.customer.io/integrations/data-in/connections/cio-journeys/
PAGE = {
    "email": "Email Drafted, Email Attempted, Email Sent, Email Delivered, Email Opened, "
    "Email Link Clicked, Email Converted, Email Unsubscribed, Email Bounced, "
    "Email Suppressed, Email Marked as Spam, Email Failed",
    "push": "Push Drafted, Push Attempted, Push Sent, Push Delivered, Push Opened, "
    "Push Link Clicked, Push Converted, Push Bounced, Push Suppressed, Push Failed",
    "sms": "SMS Drafted, SMS Attempted, SMS Sent, SMS Delivered, SMS Link Clicked, "
    "SMS Converted, SMS Bounced, SMS Failed",
    "in_app": "In-App Drafted, In-App Attempted, In-App Sent, In-App Opened, "
    "In-App Clicked, In-App Converted, In-App Failed",
    "webhook": "Webhook Drafted, Webhook Attempted, Webhook Sent, Webhook Link Clicked, "
    "Webhook Converted, Webhook Failed",
    "slack": "Slack Drafted, Slack Attempted, Slack Sent, Slack Link Clicked, "
    "Slack Failed",
    "customer": "Subscribed, Unsubscribed, Subscription Preferences Changed",
}
WEBHOOK_METRICS = {
    "drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
    "unsubscribed", "bounced", "dropped", "spammed", "failed", "replied", "subscribed",
    "cio_subscription_preferences_changed",
}  # fmt: skip


def _seed() -> dict[str, tuple[str, str, str]]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return {
            row["event_name"]: (row["channel"], row["metric"], row["is_current_name"])
            for row in csv.DictReader(handle)
        }


def test_event_names__every_name_on_the_page_is_mapped_to_its_channel():
    seed = _seed()
    for channel, names in PAGE.items():
        for name in names.split(", "):
            assert name in seed, f"{name} is not mapped"
            mapped_channel, metric, current = seed[name]
            assert mapped_channel == channel, name
            assert metric in WEBHOOK_METRICS, name
            assert current == "true", name


def test_event_names__issue_cases_map_as_customerio_means_them():
    seed = _seed()
    assert seed["In-App Clicked"][:2] == ("in_app", "clicked")
    assert seed["Push Suppressed"][:2] == ("push", "dropped")
    # Person-level: a global unsubscribe and its resubscribe, never an email one.
    assert seed["Unsubscribed"][:2] == ("customer", "unsubscribed")
    assert seed["Subscribed"][:2] == ("customer", "subscribed")
    assert seed["Subscription Preferences Changed"][:2] == (
        "customer",
        "cio_subscription_preferences_changed",
    )
    assert seed["Email Unsubscribed"][:2] == ("email", "unsubscribed")


def test_event_names__older_names_stay_mapped_but_marked():
    seed = _seed()
    on_page = {name for names in PAGE.values() for name in names.split(", ")}
    older = {name for name, (_, _, current) in seed.items() if current == "false"}
    assert older == set(seed) - on_page
    for name in ("In-App Link Clicked", "Customer Unsubscribed", "Customer Subscribed"):
        assert name in older
    assert seed["In-App Link Clicked"][:2] == ("in_app", "clicked")
    assert seed["Customer Unsubscribed"][:2] == ("customer", "unsubscribed")
