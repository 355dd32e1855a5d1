"""The demo's Segment path speaks Customer.io's current names, on every channel.

The seed seeds/segment_message_event_names.csv is what the models map names with; every
name the generator emits must be there as a current name (is_current_name = true), so the
models are exercised on exactly what Customer.io sends to Segment today."""

from __future__ import annotations

import csv

from tests.conftest import REPO_ROOT

SEED = REPO_ROOT / "seeds" / "segment_message_event_names.csv"


def _seed() -> dict[str, dict[str, str]]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return {row["event_name"]: row for row in csv.DictReader(handle)}


def test_segment_names__every_emitted_name_is_a_current_seed_name(manifest: dict):
    seed = _seed()
    emitted = manifest["segment"]["events"]
    unknown = sorted(name for name in emitted if name not in seed)
    assert unknown == []
    older = sorted(n for n in emitted if seed[n]["is_current_name"] != "true")
    assert older == []


def test_segment_names__in_app_push_and_subscription_events_take_the_segment_path(
    manifest: dict,
):
    emitted = manifest["segment"]["events"]
    for name in ("In-App Clicked", "In-App Opened", "Push Suppressed", "Unsubscribed"):
        assert emitted.get(name, 0) > 0, name
    assert "In-App Link Clicked" not in emitted
