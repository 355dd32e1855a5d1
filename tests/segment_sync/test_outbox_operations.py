"""The outbox's maintenance operations through the real command: `--retry-dead-letters`
requeues (only the selected audiences'), and a successful run prunes sent rows older
than the retention, never unsent ones."""

from __future__ import annotations

from datetime import timedelta

from scripts.segment_sync import outbox
from scripts.segment_sync.service import OUTBOX_RETENTION_DAYS
from tests.segment_sync.conftest import Sync, expected_enters, transitions

LAPSED = "lapsed_buyers"
VIP = "vip_customers"


def _poison(sync_cli: Sync, users: list[tuple[str, str]]) -> list[str]:
    """Dead-letter the track message of each (audience, user) with --max-attempts 1."""
    sync_cli.receiver.set_faults(error_rate=1.0, error_status=501)
    assert sync_cli.run().code == 5  # plans the outbox, sends nothing
    targets = [
        sync_cli.query(
            "select message_id from segment_sync.outbox where audience_key = %s "
            "and user_id = %s and call_type = 'track'",
            (key, user),
        )[0][0]
        for key, user in users
    ]
    sync_cli.receiver.set_faults(error_rate=0.0, reject_message_ids=targets)
    assert sync_cli.run("--max-attempts", "1").code == 5
    dead = {
        mid
        for (mid,) in sync_cli.query("select message_id from segment_sync.dead_letters")
    }
    assert dead == set(targets)
    sync_cli.receiver.set_faults(reject_message_ids=[])
    return targets


def test_sync_segment__retry_dead_letters_requeues_only_selected_audiences(
    engine: str, sync_cli: Sync
):
    pairs = [(LAPSED, "u1"), (LAPSED, "u2"), (VIP, "v1")]
    sync_cli.members(pairs)
    lapsed_dead, vip_dead = _poison(sync_cli, [(LAPSED, "u2"), (VIP, "v1")])

    out = sync_cli.run("--retry-dead-letters", "--audience", VIP)

    assert out.code == 0, out.stderr
    assert vip_dead in sync_cli.receiver.message_ids()
    assert lapsed_dead not in sync_cli.receiver.message_ids()
    assert sync_cli.query("select message_id from segment_sync.dead_letters") == [
        (lapsed_dead,)
    ]
    assert sync_cli.query(
        "select status from segment_sync.outbox where message_id = %s", (lapsed_dead,)
    ) == [("dead",)]
    assert sync_cli.state() == {(LAPSED, "u1"), (VIP, "v1")}

    assert sync_cli.run("--retry-dead-letters").code == 0
    assert sync_cli.query("select count(*) from segment_sync.dead_letters") == [(0,)]
    assert transitions(sync_cli.receiver) == expected_enters(pairs)
    assert sync_cli.state() == set(pairs)


def test_sync_segment__ok_run_prunes_only_old_sent_rows(engine: str, sync_cli: Sync):
    sync_cli.members([(LAPSED, "old"), (LAPSED, "new")])
    assert sync_cli.run().code == 0
    sync_cli.members([(LAPSED, "old"), (LAPSED, "new"), (LAPSED, "waiting")])
    sync_cli.receiver.set_faults(error_rate=1.0, error_status=501)
    assert sync_cli.run().code == 5  # "waiting" stays pending
    sync_cli.receiver.set_faults(error_rate=0.0)
    retention = timedelta(days=OUTBOX_RETENTION_DAYS)
    now = outbox.now_utc()
    with sync_cli.wh() as wh:
        # One sent transition just past the retention, one just inside it, and the
        # pending rows made to look old too: they must survive.
        wh.execute(
            "update segment_sync.outbox set sent_at = %s where user_id = 'old'",
            (now - retention - timedelta(hours=1),),
        )
        wh.execute(
            "update segment_sync.outbox set sent_at = %s where user_id = 'new'",
            (now - retention + timedelta(hours=1),),
        )
        wh.execute(
            "update segment_sync.outbox set created_at = %s where user_id = 'waiting'",
            (now - retention - timedelta(days=5),),
        )
    sync_cli.receiver.set_faults(error_rate=1.0, error_status=501)
    assert sync_cli.run().code == 5  # a partial run prunes nothing
    assert sync_cli.query(
        "select count(*) from segment_sync.outbox where user_id = 'old'"
    ) == [(2,)]
    sync_cli.receiver.set_faults(error_rate=0.0)

    assert sync_cli.run().code == 0

    remaining = sync_cli.query(
        "select user_id, status, count(*) from segment_sync.outbox group by 1, 2 "
        "order by 1"
    )
    assert remaining == [("new", "sent", 2), ("waiting", "sent", 2)]
    assert sync_cli.state() == {(LAPSED, "old"), (LAPSED, "new"), (LAPSED, "waiting")}
