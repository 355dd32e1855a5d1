"""Issue 10 §1-2 at the sync: members known only by email reach Segment under an
email-derived anonymousId and are re-keyed (not left stale) when they gain a user id;
members of SMS audiences carry their phone beside the email (never in output or logs);
each audience sends only the calls it chose; every member not sent is counted by reason
in the plan, its JSON and the runs table (DuckDB and PostgreSQL, real receiver)."""

from __future__ import annotations

import json

from tests.segment_sync import identity_inputs
from tests.segment_sync.conftest import Sync
from tests.segment_sync.identity_inputs import Member

LAPSED = "lapsed_buyers"
SUPPRESS = "recent_buyers"  # identify only
EVENTS = "cart_clickers"  # track only
SMS = "sms_clickers"


def _write(sync_cli: Sync, *args, **kwargs) -> None:
    with sync_cli.wh() as wh:
        identity_inputs.write(wh, *args, **kwargs)


def _by(receiver, **match) -> list[dict]:
    return [
        m
        for m in receiver.messages().values()
        if all(m.get(k) == v for k, v in match.items())
    ]


def test_identity__email_only_member_is_sent_anonymously_then_rekeyed(
    engine: str, sync_cli: Sync
):
    known = Member(LAPSED, "u1", "ann@example.org")
    email_only = Member(LAPSED, None, "Bob@Example.org ")
    anon = identity_inputs.anonymous_id("bob@example.org")
    _write(sync_cli, [known, email_only])

    assert sync_cli.run().code == 0
    (identify,) = _by(sync_cli.receiver, type="identify", anonymousId=anon)
    assert identify["userId"] is None
    assert identify["traits"] == {LAPSED: True, "email": "Bob@Example.org "}
    (entered,) = _by(sync_cli.receiver, type="track", anonymousId=anon)
    assert entered["event"] == "Audience Entered"
    assert entered["context"]["traits"] == {"email": "Bob@Example.org "}
    assert sync_cli.state() == {(LAPSED, "u1"), (LAPSED, anon)}

    # Bob signs up: the same person now has a user id. The anonymous profile is told he
    # left (identity_changed), the identified one that he is a member.
    identified = Member(LAPSED, "u2", "bob@example.org")
    _write(sync_cli, [known, identified], exits=[(email_only, "identity_changed")])
    out = sync_cli.run()

    assert out.code == 0, out.stderr
    anon_messages = _by(sync_cli.receiver, anonymousId=anon)
    exit_identify = [m for m in anon_messages if m["type"] == "identify"][-1]
    assert any(m["traits"][LAPSED] is False for m in anon_messages if "traits" in m)
    assert exit_identify["userId"] is None
    (exited,) = [m for m in anon_messages if m.get("event") == "Audience Exited"]
    assert exited["properties"]["exit_reason"] == "identity_changed"
    assert exited["properties"][LAPSED] is False
    (u2_identify,) = _by(sync_cli.receiver, type="identify", userId="u2")
    assert u2_identify["traits"] == {LAPSED: True, "email": "bob@example.org"}
    assert u2_identify["anonymousId"] is None
    assert sync_cli.state() == {(LAPSED, "u1"), (LAPSED, "u2")}


def test_identity__sms_member_phone_reaches_segment_and_survives_a_resend(
    engine: str, sync_cli: Sync
):
    phone, exit_phone = "+15550000001", "+15550000002"
    texter = Member(SMS, "u1", "ann@example.org", phone=phone)
    anonymous_texter = Member(SMS, None, "cat@example.org", phone="+15550000003")
    leaver = Member(SMS, "u2", "bob@example.org", phone=exit_phone)
    no_phone = Member(SMS, "u3", "dan@example.org")
    _write(sync_cli, [texter, anonymous_texter, leaver, no_phone])

    first = sync_cli.run()

    assert first.code == 0, first.stderr
    (identify,) = _by(sync_cli.receiver, type="identify", userId="u1")
    assert identify["traits"] == {SMS: True, "email": "ann@example.org", "phone": phone}
    (entered,) = _by(sync_cli.receiver, type="track", userId="u1")
    assert entered["context"]["traits"] == {"email": "ann@example.org", "phone": phone}
    anon = anonymous_texter.anonymous_id
    (anon_identify,) = _by(sync_cli.receiver, type="identify", anonymousId=anon)
    assert anon_identify["traits"]["phone"] == "+15550000003"
    (u3_identify,) = _by(sync_cli.receiver, type="identify", userId="u3")
    assert "phone" not in u3_identify["traits"]
    # Stored with the message, like the email, so a resend after a crash carries it.
    assert sync_cli.query(
        "select phone from segment_sync.outbox where user_id = 'u1'"
    ) == [(phone,), (phone,)]

    # Bob leaves: the exit carries the phone from the exits model.
    _write(
        sync_cli, [texter, anonymous_texter, no_phone], exits=[(leaver, "unsubscribed")]
    )
    second = sync_cli.run()

    assert second.code == 0, second.stderr
    exit_identify = [
        m for m in _by(sync_cli.receiver, type="identify", userId="u2")
        if m["traits"][SMS] is False
    ]  # fmt: skip
    assert [m["traits"]["phone"] for m in exit_identify] == [exit_phone]
    (exited,) = _by(sync_cli.receiver, event="Audience Exited", userId="u2")
    assert exited["context"]["traits"]["phone"] == exit_phone
    # PII: no phone in what the runs print or record.
    runs = json.dumps(sync_cli.query("select * from segment_sync.runs"), default=str)
    for text in (first.stdout, first.stderr, second.stdout, second.stderr, runs):
        for number in (phone, exit_phone, "+15550000003"):
            assert number not in text


def test_calls__each_audience_sends_only_the_calls_it_chose(
    engine: str, sync_cli: Sync
):
    members = [
        Member(SUPPRESS, "s1", "s1@example.org", "identify"),
        Member(SUPPRESS, "s2", "s2@example.org", "identify"),
        Member(EVENTS, "e1", "e1@example.org", "track"),
        Member(EVENTS, "e2", "e2@example.org", "track"),
        Member(LAPSED, "l1", "l1@example.org", "both"),
    ]
    _write(sync_cli, members)

    assert sync_cli.run().code == 0
    kinds = {(m["type"], m["userId"]) for m in sync_cli.receiver.messages().values()}
    assert kinds == {
        ("identify", "s1"), ("identify", "s2"), ("track", "e1"), ("track", "e2"),
        ("identify", "l1"), ("track", "l1"),
    }  # fmt: skip
    assert len(sync_cli.state()) == 5

    # s2 and e2 leave: the exits follow the same choice, and the state records them.
    _write(sync_cli, [members[0], members[2], members[4]])
    before = set(sync_cli.receiver.message_ids())
    assert sync_cli.run().code == 0
    new = [m for i, m in sync_cli.receiver.messages().items() if i not in before]
    assert sorted((m["type"], m["userId"]) for m in new) == [
        ("identify", "s2"),
        ("track", "e2"),
    ]
    assert len(sync_cli.state()) == 3

    # A full resync re-sends one call per pair: the track for a track-only audience.
    before = set(sync_cli.receiver.message_ids())
    assert sync_cli.run("--full-resync").code == 0
    resent = [m for i, m in sync_cli.receiver.messages().items() if i not in before]
    by_user = {m["userId"]: m["type"] for m in resent}
    assert by_user["e1"] == "track"
    assert by_user["e2"] == "track"
    assert by_user["s1"] == "identify"
    assert by_user["l1"] == "identify"
    assert len(resent) == len(by_user)


def test_skips__treatment_members_equal_sent_plus_skipped_by_reason(
    engine: str, sync_cli: Sync
):
    members = [
        Member(LAPSED, "u1", "a@example.org"),
        Member(LAPSED, "u2", "b@example.org"),
        Member(LAPSED, None, "c@example.org"),  # sent under an anonymousId
        Member(LAPSED, "u1", "a2@example.org"),  # a second person with u1's id
        Member(LAPSED, None, None),  # a row the sync cannot address at all
    ]
    skips = [
        (LAPSED, "missing_identifier"),
        (LAPSED, "missing_identifier"),
        (LAPSED, "missing_user_id"),
    ]
    treatment = len(members) + len(skips)
    _write(sync_cli, members, skips=skips)
    plan_file = sync_cli.tmp_path / "plan.json"

    dry = sync_cli.run("--dry-run", "--plan-out", str(plan_file), write_key=None)

    assert dry.code == 0, dry.stderr
    document = json.loads(plan_file.read_text())
    (audience,) = document["audiences"]
    assert audience["desired_members"] == 3
    assert audience["skipped_missing_user_id"] == 2
    assert audience["skipped_missing_identifier"] == 2
    assert audience["skipped_duplicate_identity"] == 1
    assert audience["desired_members"] + audience["skipped"] == treatment
    assert document["skipped_by_reason"] == {
        "missing_user_id": 2,
        "missing_identifier": 2,
        "duplicate_identity": 1,
    }
    assert "not sent: lapsed_buyers: 2 missing_user_id, 2 missing_identifier, " in (
        dry.stdout
    )

    assert sync_cli.run().code == 0
    assert sync_cli.query(
        "select count_sent, count_skipped_missing_user_id, "
        "count_skipped_missing_identifier, count_skipped_duplicate_identity "
        "from segment_sync.runs"
    ) == [(6, 2, 2, 1)]


def test_a_dry_run_prints_contacts_masked_and_writes_them_whole(
    duck: str, sync_cli: Sync
):
    """A dry run's output lands in logs (a scheduled tick's, each time): its sample
    payloads show an email by its first character and domain, a phone by its last two
    digits; the plan file the operator asked for keeps them whole."""
    _write(sync_cli, [Member(SMS, None, "Bob@Example.org ", phone="+15550000042")])
    plan_file = sync_cli.tmp_path / "plan.json"

    out = sync_cli.run("--dry-run", "--plan-out", str(plan_file), write_key=None)

    assert out.code == 0, out.stderr
    assert '"email": "B***@Example.org"' in out.stdout
    assert '"phone": "***42"' in out.stdout
    assert "Bob@" not in out.stdout + out.stderr
    assert "5550000042" not in out.stdout + out.stderr
    shown = json.loads(plan_file.read_text())["samples"]
    traits = [s.get("traits") or s["context"]["traits"] for s in shown]
    assert {(t["email"], t["phone"]) for t in traits} == {
        ("Bob@Example.org ", "+15550000042")
    }
