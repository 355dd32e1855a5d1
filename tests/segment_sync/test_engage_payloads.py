"""Issue 10 §2: every payload the sync sends has the shape Segment Engage documents for
audience events (docs/segment-engage-payloads.md), field by field, plus the identifiers
ad destinations match on; and still equals what segment-analytics-python would enqueue."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from segment.analytics import Client

from scripts.segment_sync import payloads

AT = datetime(2026, 3, 4, 5, 6, 7, 123000)
KEY = "first_time_shopper"
SPACE = "spa_test123"


def _documented_personas(key: str) -> dict:
    """context.personas as "Using Engage data" shows it for an audience."""
    return {
        "computation_class": "audience",
        "computation_id": payloads.computation_id(key),
        "computation_key": key,
        "namespace": SPACE,
        "space_id": SPACE,
    }


def _build(call: str, *, is_member: bool, user: str = "u123", **extra) -> dict:
    builder = payloads.PayloadBuilder(space_id=SPACE)
    return builder.build(
        message_id="ea-x",
        call_type=call,
        audience_key=KEY,
        audience_name="First-time shoppers",
        audience_version=2,
        user_id=user,
        is_member=is_member,
        exit_reason=None if is_member else "purchased",
        occurred_at=AT,
        **extra,
    )


@pytest.mark.parametrize("is_member", [True, False])
def test_engage__identify_matches_the_documented_shape(is_member: bool):
    message = _build("identify", is_member=is_member, email="ann@example.org")

    assert message["type"] == "identify"
    assert message["userId"] == "u123"
    assert message["anonymousId"] is None
    assert message["traits"] == {KEY: is_member, "email": "ann@example.org"}
    assert message["context"]["personas"] == _documented_personas(KEY)
    assert "event" not in message
    assert "properties" not in message
    assert message["timestamp"] == "2026-03-04T05:06:07.123+00:00"
    assert message["messageId"] == "ea-x"


def test_engage__audience_entered_matches_the_documented_shape():
    message = _build("track", is_member=True, email="ann@example.org")

    assert message["type"] == "track"
    assert message["event"] == "Audience Entered"
    assert message["userId"] == "u123"
    props = message["properties"]
    assert props["audience_key"] == KEY
    assert props[KEY] is True
    # Our additions, beside the documented two:
    assert props["audience_name"] == "First-time shoppers"
    assert props["audience_version"] == 2
    assert "exit_reason" not in props
    assert message["context"]["personas"] == _documented_personas(KEY)
    assert message["context"]["traits"] == {"email": "ann@example.org"}
    assert "traits" not in message


def test_engage__audience_exited_matches_the_documented_shape():
    message = _build("track", is_member=False, email="ann@example.org")

    assert message["event"] == "Audience Exited"
    assert message["properties"]["audience_key"] == KEY
    assert message["properties"][KEY] is False
    assert message["properties"]["exit_reason"] == "purchased"
    assert message["context"]["personas"] == _documented_personas(KEY)
    assert message["context"]["traits"] == {"email": "ann@example.org"}


def test_engage__computation_id_is_stable_per_audience_key_across_versions():
    ids = {
        payloads.PayloadBuilder(space_id=SPACE).build(
            message_id="m",
            call_type="identify",
            audience_key=KEY,
            audience_name=None,
            audience_version=version,
            user_id="u",
            is_member=True,
            exit_reason=None,
            occurred_at=AT,
        )["context"]["personas"]["computation_id"]
        for version in (1, 2, 7)
    }
    assert len(ids) == 1
    (only,) = ids
    assert re.fullmatch(r"aud_[0-9a-f]{32}", only)
    assert payloads.computation_id("other_audience") != only


def test_engage__space_and_namespace_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("SEGMENT_SPACE_ID", raising=False)
    monkeypatch.delenv("SEGMENT_NAMESPACE", raising=False)
    unset = payloads.PayloadBuilder()._context(KEY)["personas"]
    assert "space_id" not in unset
    assert "namespace" not in unset

    monkeypatch.setenv("SEGMENT_SPACE_ID", "spa_env")
    monkeypatch.setenv("SEGMENT_NAMESPACE", "spa_other")
    personas = payloads.PayloadBuilder()._context(KEY)["personas"]
    assert (personas["space_id"], personas["namespace"]) == ("spa_env", "spa_other")


def test_engage__email_only_member_goes_as_anonymous_id_on_both_calls():
    anon = payloads.ANONYMOUS_ID_PREFIX + "0" * 32
    identify = _build("identify", is_member=True, user=anon, email="bob@example.org")
    track = _build("track", is_member=True, user=anon, email="bob@example.org")

    for message in (identify, track):
        assert message["userId"] is None
        assert message["anonymousId"] == anon
    assert identify["traits"]["email"] == "bob@example.org"
    assert track["context"]["traits"]["email"] == "bob@example.org"


PHONE = "+15550000001"


@pytest.mark.parametrize("is_member", [True, False])
def test_engage__sms_member_identify_carries_the_phone_trait(is_member: bool):
    message = _build(
        "identify", is_member=is_member, email="ann@example.org", phone=PHONE
    )

    assert message["traits"] == {
        KEY: is_member,
        "email": "ann@example.org",
        "phone": PHONE,
    }


@pytest.mark.parametrize("is_member", [True, False])
def test_engage__sms_member_track_carries_the_phone_in_context_traits(is_member: bool):
    message = _build("track", is_member=is_member, email="ann@example.org", phone=PHONE)

    assert message["context"]["traits"] == {"email": "ann@example.org", "phone": PHONE}
    assert message["context"]["personas"] == _documented_personas(KEY)
    assert "phone" not in message["properties"]
    assert "traits" not in message


def test_engage__phone_without_email_is_sent_alone():
    anon = payloads.ANONYMOUS_ID_PREFIX + "0" * 32
    identify = _build("identify", is_member=True, user=anon, phone=PHONE)
    track = _build("track", is_member=True, user=anon, phone=PHONE)

    assert identify["traits"] == {KEY: True, "phone": PHONE}
    assert track["context"]["traits"] == {"phone": PHONE}


def test_engage__phone_does_not_leak_into_the_cached_audience_context():
    # The track context is shared per audience; a member's phone must not stick to it.
    builder = payloads.PayloadBuilder(space_id=SPACE)
    common = {
        "call_type": "track",
        "audience_key": KEY,
        "audience_name": None,
        "audience_version": 1,
        "is_member": True,
        "exit_reason": None,
        "occurred_at": AT,
    }
    builder.build(message_id="m1", user_id="u1", phone=PHONE, **common)
    later = builder.build(message_id="m2", user_id="u2", **common)

    assert "traits" not in later["context"]


def test_engage__no_email_known_means_no_email_field():
    identify = _build("identify", is_member=True)
    track = _build("track", is_member=True)

    assert identify["traits"] == {KEY: True}
    assert "traits" not in track["context"]


def test_engage__empty_phone_is_left_out():
    identify = _build("identify", is_member=True, phone="")
    track = _build("track", is_member=True, phone="")

    assert identify["traits"] == {KEY: True}
    assert "traits" not in track["context"]


@pytest.mark.parametrize("user", ["u123", payloads.ANONYMOUS_ID_PREFIX + "ab" * 16])
@pytest.mark.parametrize("call", payloads.CALLS)
def test_engage__equals_what_the_library_enqueues(call: str, user: str):
    message = _build(
        call, is_member=True, user=user, email="c@example.org", phone=PHONE
    )
    client = Client("unused", send=False)
    ids = {"user_id": message["userId"], "anonymous_id": message["anonymousId"]}
    common = {
        "context": {
            key: value for key, value in message["context"].items() if key != "library"
        },
        "timestamp": datetime.fromisoformat(message["timestamp"]),
        "message_id": message["messageId"],
    }
    if call == "identify":
        ok, built = client.identify(traits=dict(message["traits"]), **ids, **common)
    else:
        ok, built = client.track(
            event=message["event"],
            properties=dict(message["properties"]),
            **ids,
            **common,
        )
    assert ok
    assert built == message
