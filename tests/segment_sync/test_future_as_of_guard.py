"""Issue 8 §2 (the sync's side): after a what-if build with a future as_of, the sync
inputs hold that future membership; the sync refuses to send it. The boundary is the
ledger's skew (5 minutes): exactly at it passes, a second past it refuses."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from scripts.segment_sync import outbox
from scripts.segment_sync.guards import Refusal, check_dbt_as_of, check_inputs_as_of
from tests.segment_sync.conftest import Sync

RAN_AT = "2026-12-02T08:00:00.000000Z"


def _results(tmp_path: Path, variables: object) -> Path:
    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"generated_at": RAN_AT},
                "args": {"vars": variables},
                "results": [],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("as_of", "refused"),
    [
        ("2030-01-01T00:00:00Z", True),  # the what-if
        ("2026-12-02T08:05:01Z", True),  # one second past the skew
        ("2026-12-02T08:05:00Z", False),  # exactly at the skew
        ("2026-12-02T09:04:59+01:00", False),  # an offset, converted to UTC
        ("2026-12-02T09:05:01+01:00", True),
        ("2026-03-01T12:00:00Z", False),  # a replay of the past is not a what-if
    ],
)
def test_future_as_of_refuses_at_the_skew(tmp_path, as_of, refused) -> None:
    refusals = check_dbt_as_of(_results(tmp_path, {"as_of": as_of}))
    assert bool(refusals) is refused
    if refused:
        assert refusals[0].rule == "as_of"
        assert as_of in refusals[0].message
        assert "dbt build" in refusals[0].message


def test_builds_without_as_of_and_missing_results_pass(tmp_path) -> None:
    assert check_dbt_as_of(_results(tmp_path, {})) == []
    assert check_dbt_as_of(_results(tmp_path, {"as_of": None})) == []
    assert check_dbt_as_of(tmp_path / "absent.json") == []
    assert check_dbt_as_of(None) == []


def test_unreadable_as_of_refuses(tmp_path) -> None:
    refusals = check_dbt_as_of(_results(tmp_path, {"as_of": "next tuesday"}))
    assert [r.rule for r in refusals] == ["as_of"]


def test_the_run_s_own_skew_var_draws_the_line(tmp_path) -> None:
    ahead = "2026-12-02T08:10:00Z"  # 10 minutes after the run
    assert check_dbt_as_of(_results(tmp_path, {"as_of": ahead})) != []
    widened = {"as_of": ahead, "as_of_future_skew_minutes": 15}
    assert check_dbt_as_of(_results(tmp_path, widened)) == []


# ------------------------------------------------- the stamp on the inputs themselves
def _stamp(sync_cli: Sync, built_as_of: object, what_if: bool) -> None:
    with sync_cli.wh() as wh:
        for table in (
            "sync_segment__audience_memberships",
            "sync_segment__audience_exits",
        ):
            wh.execute(
                f"alter table analytics.{table} add column if not exists built_as_of timestamp"
            )
            wh.execute(
                f"alter table analytics.{table} "
                "add column if not exists is_built_for_future_as_of boolean"
            )
        wh.execute(
            "update analytics.sync_segment__audience_memberships "
            "set built_as_of = %s, is_built_for_future_as_of = %s",
            (built_as_of, what_if),
        )


def test_a_what_if_stamp_on_the_inputs_refuses_whatever_dbt_ran_since(
    duck: str, sync_cli: Sync
) -> None:
    # A what-if build wrote the inputs; a `dbt seed` since replaced run_results.json
    # (this test has none): the tables still say what they are.
    pairs = [("lapsed_buyers", "a"), ("lapsed_buyers", "b")]
    sync_cli.members(pairs)
    ahead = outbox.now_utc().replace(microsecond=0) + timedelta(days=2)
    _stamp(sync_cli, ahead, True)
    with sync_cli.wh() as wh:
        assert check_inputs_as_of(wh, "analytics") == [
            Refusal(
                "as_of",
                f"the sync inputs were built for as_of {ahead:%Y-%m-%d %H:%M} UTC, in "
                "the future of that build: a what-if build's membership, not today's; "
                "run a plain `dbt build` before syncing",
            )
        ]

    refused = sync_cli.run()

    assert refused.code == 3, refused.stderr
    assert "[as_of] the sync inputs were built for as_of" in refused.stderr
    assert sync_cli.receiver.messages() == {}
    _stamp(sync_cli, outbox.now_utc(), False)  # a plain build since
    assert sync_cli.run().code == 0
    assert sync_cli.state() == set(pairs)


def test_inputs_without_the_stamp_or_rows_leave_it_to_dbt_results(
    duck: str, sync_cli: Sync
) -> None:
    sync_cli.members([])
    with sync_cli.wh() as wh:
        assert check_inputs_as_of(wh, "analytics") == []  # an older build's tables
    _stamp(sync_cli, outbox.now_utc(), True)  # the columns, but no rows to say so
    with sync_cli.wh() as wh:
        assert check_inputs_as_of(wh, "analytics") == []


# ------------------------------------------------- a replay of an earlier moment
def _build(sync_cli: Sync, members: list[tuple[str, str]], as_of: object) -> None:
    """What a `dbt build` for `as_of` leaves: these members, stamped with it."""
    with sync_cli.wh() as wh:
        wh.execute("drop table if exists analytics.sync_segment__audience_memberships")
    sync_cli.members(members)
    _stamp(sync_cli, as_of, False)


def test_a_replay_earlier_than_the_last_decision_is_refused_then_a_plain_build_passes(
    duck: str, sync_cli: Sync
) -> None:
    """`dbt build --vars '{as_of: <two days ago>}'` left in place, then a sync: it sent
    exits for today's members, and the drop-to-zero rule then refused to put them back
    without --force. The sync remembers the as_of it last decided from and refuses an
    earlier one; the same moment again (tests, backfills) and a later one pass."""
    now = outbox.now_utc().replace(microsecond=0)
    sync_cli.members([("lapsed_buyers", "a"), ("lapsed_buyers", "b")])
    _stamp(sync_cli, now, False)
    assert sync_cli.run().code == 0
    assert (
        sync_cli.run().code == 0
    )  # the same moment again: nothing to send, no refusal
    with sync_cli.wh() as wh:
        assert outbox.last_decided_as_of(wh)[0] == now

    # Who was a member two days ago.
    _build(sync_cli, [("lapsed_buyers", "a")], now - timedelta(days=2))
    refused = sync_cli.run()

    assert refused.code == 3, refused.stderr
    assert "[as_of_went_back] the sync inputs were built for as_of" in refused.stderr
    assert f"before the as_of {now:%Y-%m-%d %H:%M} UTC the sync last decided" in (
        refused.stderr
    )
    assert sync_cli.state() == {("lapsed_buyers", "a"), ("lapsed_buyers", "b")}
    forced = sync_cli.run("--force")  # that moment, on purpose
    assert forced.code == 0, forced.stderr
    assert sync_cli.state() == {("lapsed_buyers", "a")}

    # Later than the forced replay: what Segment holds now is that replay's moment.
    _build(
        sync_cli,
        [("lapsed_buyers", "a"), ("lapsed_buyers", "b")],
        now - timedelta(days=1),
    )
    assert sync_cli.run().code == 0
    assert sync_cli.state() == {("lapsed_buyers", "a"), ("lapsed_buyers", "b")}
