"""The core path of `audiences sync segment`, on DuckDB and PostgreSQL, against a real
local receiver: diff, exactly-once ids, exits with reasons, re-entry, no-change runs."""

from __future__ import annotations

import json
import subprocess

from tests.segment_sync.conftest import Sync, expected_enters, transitions

LAPSED = "lapsed_buyers"
VIP = "vip_customers"


def test_sync_segment__first_run_sends_entries_then_nothing(
    engine: str, sync_cli: Sync
):
    pairs = [(LAPSED, f"u{i}") for i in range(12)] + [(VIP, f"u{i}") for i in range(3)]
    sync_cli.members(pairs)

    first = sync_cli.run()

    assert first.code == 0, first.stderr
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)
    entered = next(
        m
        for m in sync_cli.receiver.messages().values()
        if m.get("event") == "Audience Entered"
    )
    assert entered["properties"][entered["properties"]["audience_key"]] is True
    assert entered["properties"]["audience_version"] == 1
    assert entered["context"]["personas"]["computation_class"] == "audience"
    requests_after_first = sync_cli.receiver.stats()["requests"]

    second = sync_cli.run()

    assert second.code == 0, second.stderr
    assert sync_cli.receiver.stats()["requests"] == requests_after_first
    runs = sync_cli.query(
        "select status, count_planned, count_sent from segment_sync.runs order by started_at"
    )
    assert runs == [("ok", 30, 30), ("ok", 0, 0)]


def test_sync_segment__exits_carry_reasons_and_reentry_gets_new_ids(
    engine: str, sync_cli: Sync
):
    sync_cli.members([(LAPSED, "ann"), (LAPSED, "bob"), (LAPSED, "cat")])
    assert sync_cli.run().code == 0
    first_ids = sync_cli.receiver.message_ids()

    # ann converts (reason from the exits model), bob ages out (no exit row).
    sync_cli.members([(LAPSED, "cat")])
    sync_cli.exits([(LAPSED, "ann", "converted")])
    out = sync_cli.run()

    assert out.code == 0, out.stderr
    exited = {
        m["userId"]: m
        for m in sync_cli.receiver.messages().values()
        if m.get("event") == "Audience Exited"
    }
    assert {user: m["properties"]["exit_reason"] for user, m in exited.items()} == {
        "ann": "converted",
        "bob": "window_expired",
    }
    assert all(m["properties"][LAPSED] is False for m in exited.values())
    identifies_false = [
        m["userId"]
        for m in sync_cli.receiver.messages().values()
        if m["type"] == "identify" and m["traits"][LAPSED] is False
    ]
    assert sorted(identifies_false) == ["ann", "bob"]
    assert sync_cli.state() == {(LAPSED, "cat")}

    # ann comes back: a genuine re-entry must not reuse her first entry's ids.
    sync_cli.members([(LAPSED, "cat"), (LAPSED, "ann")])
    before = sync_cli.receiver.message_ids()
    assert sync_cli.run().code == 0
    new_ids = sync_cli.receiver.message_ids() - before
    assert len(new_ids) == 2
    assert not new_ids & first_ids
    ann_entries = [
        m
        for m in sync_cli.receiver.messages().values()
        if m["userId"] == "ann" and m.get("event") == "Audience Entered"
    ]
    assert len(ann_entries) == 2
    assert sync_cli.state() == {(LAPSED, "cat"), (LAPSED, "ann")}
    generation = sync_cli.query(
        "select generation from segment_sync.audience_state where user_id = 'ann'"
    )
    assert generation == [(2,)]


def test_sync_segment__faults_then_exactly_once(engine: str, sync_cli: Sync):
    """20% 5xx, a 429 burst with Retry-After, resets: every transition lands exactly once."""
    pairs = [(LAPSED, f"u{i:03d}") for i in range(150)] + [
        (VIP, f"u{i:03d}") for i in range(50)
    ]
    sync_cli.members(pairs)
    sync_cli.receiver.set_faults(
        error_rate=0.2, rate_limit_next=2, retry_after=1, seed=7
    )
    sync_cli.receiver.set_faults(reset_next=1)

    code = sync_cli.run("--batch-size", "40", "--group-size", "100").code
    for _ in range(3):  # failures past the library's retries stay pending for a rerun
        if code == 0:
            break
        code = sync_cli.run("--batch-size", "40", "--group-size", "100").code

    stats = sync_cli.receiver.stats()
    assert code == 0
    assert stats["rejected_batches"].get("500", 0) > 0
    assert stats["rejected_batches"].get("429", 0) == 2
    assert stats["resets"] == 1
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert stats["distinct_ids"] == 2 * len(pairs)
    assert sync_cli.state() == set(pairs)
    sync_cli.receiver.set_faults(error_rate=0.0)
    requests = stats["requests"]
    assert sync_cli.run().code == 0
    assert sync_cli.receiver.stats()["requests"] == requests


def test_sync_segment__poisoned_message_isolated_retried_then_dead_lettered(
    engine: str, sync_cli: Sync
):
    pairs = [(LAPSED, f"u{i:02d}") for i in range(20)]
    sync_cli.members(pairs)
    # A first run whose every batch fails (501, not retryable) plans the outbox and
    # leaves it pending: that is how the test learns a message id to poison.
    sync_cli.receiver.set_faults(error_rate=1.0, error_status=501)
    assert sync_cli.run().code == 5
    target = sync_cli.query(
        "select message_id from segment_sync.outbox where user_id = 'u07' "
        "and call_type = 'track'"
    )[0][0]
    sync_cli.receiver.set_faults(error_rate=0.0, reject_message_ids=[target])

    codes = [sync_cli.run().code for _ in range(3)]

    assert codes == [5, 5, 5]
    assert sync_cli.receiver.message_ids() == {
        mid for (mid,) in sync_cli.query("select message_id from segment_sync.outbox")
    } - {target}
    dead = sync_cli.query(
        "select message_id, reason, attempts from segment_sync.dead_letters"
    )
    assert [(d[0], d[2]) for d in dead] == [(target, 3)]
    assert "400" in dead[0][1]
    runs = sync_cli.query(
        "select count_dead_lettered, count_failed from segment_sync.runs "
        "order by started_at"
    )
    assert runs[-1] == (1, 0)
    assert runs[1][1] == 1  # refused once, kept for retry
    # u07's transition is incomplete: not a member in state, deferred, never re-planned.
    assert sync_cli.state() == set(pairs) - {(LAPSED, "u07")}
    requests = sync_cli.receiver.stats()["requests"]
    plan_file = sync_cli.tmp_path / "plan.json"
    assert sync_cli.run("--plan-out", str(plan_file)).code == 0
    assert sync_cli.receiver.stats()["requests"] == requests
    (audience,) = json.loads(plan_file.read_text())["audiences"]
    assert audience["deferred"] == 1


def _members_small_and_one_named(sync_cli: Sync, user: str, audience_name: str) -> None:
    """Member `small`, and `user` in the same audience under a name of this size (the
    free text that makes a message large)."""
    sync_cli.members([(LAPSED, "small")])
    with sync_cli.wh() as wh:
        wh.execute(
            "insert into analytics.sync_segment__audience_memberships "
            "select audience_key, %s, audience_version, %s, %s, signal_at, "
            "entered_at from analytics.sync_segment__audience_memberships",
            (audience_name, f"p-{user}", user),
        )


def test_sync_segment__oversized_event_dead_lettered_not_crashing(
    engine: str, sync_cli: Sync
):
    _members_small_and_one_named(sync_cli, "big", "x" * 40_000)

    out = sync_cli.run()

    assert out.code == 5
    dead = sync_cli.query(
        "select user_id, call_type, reason from segment_sync.dead_letters"
    )
    assert len(dead) == 1
    assert dead[0][:2] == ("big", "track")
    assert "32 KB" in dead[0][2]
    received = transitions(sync_cli.receiver)
    assert ("Audience Entered", "small", LAPSED, None) in received
    assert all(t[0] != "Audience Entered" or t[1] != "big" for t in received)


def test_sync_segment__oversized_by_escaped_non_ascii_is_dead_lettered_not_a_hang(
    engine: str, sync_cli: Sync
):
    """6,000 CJK characters are 18 KB as UTF-8 and 36 KB as the library measures them
    (json.dumps escapes each to 6 bytes). The size check read the first and let the
    message through; the library dropped it without telling its queue, and the sync
    waited for it for ever, SIGTERM included. Run as a process with a deadline, so a
    return of that hang fails the test instead of stalling the suite."""
    _members_small_and_one_named(sync_cli, "cjk", "中" * 6_000)

    process = sync_cli.popen()
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the sync hung on a message the library dropped") from None

    assert process.returncode == 5, out + err
    dead = sync_cli.query(
        "select user_id, call_type, reason from segment_sync.dead_letters"
    )
    assert [row[:2] for row in dead] == [("cjk", "track")]
    assert "32 KB" in dead[0][2]
    assert "Item exceeds 32kb limit" not in err  # never handed to the library
    received = transitions(sync_cli.receiver)
    assert ("Audience Entered", "small", LAPSED, None) in received


def test_sync_segment__limit_audience_filter_and_full_resync(
    engine: str, sync_cli: Sync
):
    pairs = [(LAPSED, f"u{i}") for i in range(6)] + [(VIP, "v1"), (VIP, "v2")]
    sync_cli.members(pairs)

    assert sync_cli.run("--audience", VIP).code == 0
    assert sync_cli.state() == {(VIP, "v1"), (VIP, "v2")}
    assert sync_cli.run("--limit", "4").code == 0
    assert len(sync_cli.state()) == 2 + 4
    assert sync_cli.run().code == 0
    assert sync_cli.state() == set(pairs)
    before = sync_cli.receiver.message_ids()

    assert sync_cli.run("--full-resync", "--audience", VIP).code == 0

    new = {
        mid: m for mid, m in sync_cli.receiver.messages().items() if mid not in before
    }
    assert sorted((m["type"], m["userId"], m["traits"][VIP]) for m in new.values()) == [
        ("identify", "v1", True),
        ("identify", "v2", True),
    ]
    assert sync_cli.state() == set(pairs)


def test_sync_segment__missing_user_ids_skipped_and_reported(
    engine: str, sync_cli: Sync
):
    sync_cli.members([(LAPSED, "u1"), (LAPSED, "")])
    plan_file = sync_cli.tmp_path / "plan.json"

    out = sync_cli.run("--dry-run", "--plan-out", str(plan_file), write_key=None)

    assert out.code == 0, out.stderr
    (audience,) = json.loads(plan_file.read_text())["audiences"]
    assert audience["skipped_missing_user_id"] == 1
    assert audience["enter"] == 1
    assert sync_cli.run().code == 0
    assert {m["userId"] for m in sync_cli.receiver.messages().values()} == {"u1"}


def test_sync_segment__audience_filter_leaves_other_pending_rows_pending(
    engine: str, sync_cli: Sync
):
    # Every batch fails: VIP's first transition, then LAPSED's, wait in the outbox.
    sync_cli.receiver.set_faults(error_rate=1.0, error_status=501)
    sync_cli.members([(VIP, "v1")])
    assert sync_cli.run("--audience", VIP).code == 5
    sync_cli.members([(VIP, "v1"), (LAPSED, "u1")])
    assert sync_cli.run("--audience", LAPSED).code == 5
    sync_cli.receiver.set_faults(error_rate=0.0)

    # A new VIP member: VIP's pending and new rows now bracket LAPSED's pending ones.
    pairs = [(VIP, "v1"), (LAPSED, "u1"), (VIP, "v2")]
    sync_cli.members(pairs)
    assert sync_cli.run("--audience", VIP).code == 0

    assert {m["userId"] for m in sync_cli.receiver.messages().values()} == {"v1", "v2"}
    assert sync_cli.state() == {(VIP, "v1"), (VIP, "v2")}
    assert sync_cli.run().code == 0
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)


def test_sync_segment__an_unknown_audience_is_a_usage_error(
    engine: str, sync_cli: Sync
):
    """`--audience lapsed_buyer` (a typo) planned nothing and exited 0, so a scheduled
    `--force` run silently did nothing. Refused before planning, sending or logging."""
    sync_cli.members([(LAPSED, "u1"), (VIP, "v1")])
    plan_file = sync_cli.tmp_path / "plan.json"

    dry = sync_cli.run(
        "--dry-run", "--audience", "lapsed_buyer", "--plan-out", str(plan_file)
    )
    real = sync_cli.run("--audience", VIP, "--audience", "vip", "--force")

    expected = (
        "error: --audience {}: no such audience in the sync's input "
        "(analytics.sync_segment__audience_memberships and its exits and skips), "
        f"dbt's dim_audiences or the sync's state; known: {LAPSED}, {VIP}\n"
    )
    assert (dry.code, dry.stderr) == (2, expected.format("lapsed_buyer"))
    assert (real.code, real.stderr) == (2, expected.format("vip"))
    assert not plan_file.exists()
    assert sync_cli.receiver.stats()["requests"] == 0
    assert sync_cli.query("select count(*) from segment_sync.runs") == [(0,)]


def test_sync_segment__an_audience_of_the_registry_is_known_or_said_unsynced(
    engine: str, sync_cli: Sync
):
    """A synced audience with no member yet is an audience (a scheduled `--audience`
    run failed every tick until its first member), and one not synced is said so, not
    called unknown."""
    sync_cli.members([(LAPSED, "u1")])
    with (
        sync_cli.wh() as wh
    ):  # dbt's registry, as dim_audiences holds it (read columns)
        wh.execute(
            "create table analytics.dim_audiences as "
            "select 'new_audience' as audience_key, true as is_synced "
            "union all select 'texters', false"
        )

    new = sync_cli.run("--dry-run", "--audience", "new_audience")
    unsynced = sync_cli.run("--dry-run", "--audience", "texters")

    assert new.code == 0, new.stderr
    assert (unsynced.code, unsynced.stderr) == (
        2,
        "error: --audience texters: not synced (is_synced: false in its yml under "
        f"models/audiences/); the sync sends synced audiences only: {LAPSED}, "
        "new_audience\n",
    )


def test_sync_segment__an_audience_only_in_the_state_is_known(
    engine: str, sync_cli: Sync
):
    """Removed from the input, an audience's members must still exit: --audience names
    it by what the sync's state holds."""
    sync_cli.members([(LAPSED, "u1"), (VIP, "v1")])
    assert sync_cli.run().code == 0
    sync_cli.members([(LAPSED, "u1")])

    out = sync_cli.run("--audience", VIP, "--force")  # past drop_to_zero

    assert out.code == 0, out.stderr
    assert sync_cli.state() == {(LAPSED, "u1")}
    assert ("Audience Exited", "v1", VIP, "window_expired") in transitions(
        sync_cli.receiver
    )


def test_sync_segment__the_plan_table_is_as_wide_as_the_longest_key(
    duck: str, sync_cli: Sync
):
    """A fixed 32-character column shifted every row of a longer key (the demo's
    cart_recovery_clicked_no_purchase is 33) one place right of its header."""
    long_key = "cart_recovery_clicked_no_purchase"
    sync_cli.members([(long_key, "u1"), (VIP, "v1")])

    out = sync_cli.run("--dry-run", "--plan-out", str(sync_cli.tmp_path / "plan.json"))

    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("audience ")))
    table = lines[header : header + 3]
    assert [line.split()[0] for line in table] == ["audience", long_key, VIP]
    assert {len(line) for line in table} == {len(table[0])}
    assert table[0].index("current") == len(long_key) + 2  # one space, 8 wide
    for row in table[1:]:
        assert row.split()[1:] == ["0", "1", "1", "0", "0", "0", "0", "0"]
