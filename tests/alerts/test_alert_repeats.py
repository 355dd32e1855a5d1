"""A cause the ticks keep raising is posted once, then every --alert-repeat-hours, and
once more as resolved when it clears (scripts/alerts/repeats.py). A tick every 15
minutes over a lasting problem posted the same message 96 times a day, and never said
when it was fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scripts.alerts import repeats
from scripts.alerts.message import Alert
from scripts.alerts.repeats import OpenAlert
from scripts.warehouse import connect
from tests.alerts.conftest import Tick
from tests.alerts.webhook_receiver import WebhookReceiver

NOW = datetime(2026, 12, 6, 12, 0)
SIX_HOURS = timedelta(hours=6)


def _open(posted_hours_ago: float | None, since_hours_ago: float = 10) -> OpenAlert:
    posted = (
        None if posted_hours_ago is None else NOW - timedelta(hours=posted_hours_ago)
    )
    return OpenAlert(NOW - timedelta(hours=since_hours_ago), posted)


def test_plan__raised_again_within_the_window_is_held_after_it_is_posted() -> None:
    earlier = {"load_rejects": _open(1), "build_failed": _open(7)}
    decided = repeats.plan(
        earlier, {"load_rejects", "build_failed"}, {"load_rejects"}, NOW, SIX_HOURS
    )
    assert decided.held == {"load_rejects": NOW - timedelta(hours=1)}
    assert decided.post == ["build_failed"]
    assert decided.resolved == {}


@pytest.mark.parametrize(
    ("earlier", "repeat"),
    [
        (_open(None), SIX_HOURS),  # never delivered (the webhook was down): again
        (_open(1), timedelta(0)),  # --alert-repeat-hours 0: every tick
        (_open(-1), SIX_HOURS),  # posted "in the future": a clock went back
        (_open(6), SIX_HOURS),  # the window has passed
    ],
)
def test_plan__posted_again(earlier: OpenAlert, repeat: timedelta) -> None:
    decided = repeats.plan(
        {"data_health": earlier}, {"data_health"}, set(), NOW, repeat
    )
    assert decided.post == ["data_health"]
    assert decided.held == {}


def test_plan__a_tick_at_the_moment_of_the_last_post_holds_it() -> None:
    """The window starts at the last post itself; only a clock that went back before
    it posts again (test_plan__posted_again)."""
    decided = repeats.plan(
        {"data_health": _open(0)}, {"data_health"}, set(), NOW, SIX_HOURS
    )
    assert decided.held == {"data_health": NOW}
    assert decided.post == []


def test_held_and_resolved_alerts_say_since_when_and_where_to_look() -> None:
    earlier = _open(1, since_hours_ago=10)
    assert repeats.held_reason(earlier, timedelta(hours=1.5)) == (
        "raised by every tick since 2026-12-06 02:00 UTC, last posted at "
        "2026-12-06 11:00 UTC; posted again 1.5 h after that (--alert-repeat-hours), "
        "or as resolved when it clears"
    )
    resolved = Alert.resolution("build_failed", earlier.since)
    assert resolved.resolved
    assert resolved.title.startswith("Resolved: ")
    assert resolved.details == [
        "raised by every tick since 2026-12-06 02:00 UTC that could tell; this tick's "
        "step ran and did not raise it"
    ]
    assert resolved.command == (
        "select run_id, started_at, status, alerts from audiences_ops.runs order by "
        "started_at desc limit 10"
    )


def test_a_time_with_an_offset_is_read_as_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        read = repeats.loads('{"run_error": {"since": "2026-12-06T04:00:00+02:00"}}')
    finally:
        monkeypatch.undo()
        time.tzset()
    assert read == {"run_error": OpenAlert(datetime(2026, 12, 6, 2, 0), None)}


def test_plan__a_cause_judged_and_gone_is_resolved_only_if_it_was_told() -> None:
    earlier = {
        "dead_letters": _open(2),
        "sync_undelivered": _open(None),  # nobody was told: nothing to resolve
        "build_failed": _open(2),  # not judged this tick (no build): still open
    }
    decided = repeats.plan(
        earlier, set(), {"dead_letters", "sync_undelivered"}, NOW, SIX_HOURS
    )
    assert list(decided.resolved) == ["dead_letters"]
    after = repeats.after(
        earlier, set(), {"dead_letters", "sync_undelivered"}, set(), NOW
    )
    assert after == {"build_failed": earlier["build_failed"]}


def test_after__a_streak_keeps_its_start_and_a_failed_post_its_last_post() -> None:
    earlier = {"load_rejects": _open(2, since_hours_ago=30)}
    after = repeats.after(earlier, {"load_rejects", "run_error"}, set(), set(), NOW)
    assert after["load_rejects"] == earlier["load_rejects"]
    assert after["run_error"] == OpenAlert(NOW, None)
    posted = repeats.after(earlier, {"load_rejects"}, set(), {"load_rejects"}, NOW)
    assert posted["load_rejects"] == OpenAlert(NOW - timedelta(hours=30), NOW)


def test_judged_causes__only_what_the_steps_that_ran_can_tell() -> None:
    everything = {
        "load webhooks": 0,
        "load orders": 3,
        "dbt build": 1,
        "sync segment": 5,
    }
    assert repeats.judged_causes(
        everything, loads_expected=2, finished=True, sync_sent=True
    ) == {"run_error", *repeats.JUDGED_BY}
    # One of two loads ran (the first failed and stopped the tick); a dry-run sync
    # cannot tell about delivery; a tick that crashed cannot tell about run_error.
    assert repeats.judged_causes(
        {"load webhooks": 4, "sync segment": 0}, loads_expected=2, finished=False,
        sync_sent=False,
    ) == {"guardrail_refusal"}  # fmt: skip


@pytest.mark.parametrize(
    ("sync_exit", "judged"),
    [
        (0, {"guardrail_refusal", "dead_letters", "sync_undelivered"}),
        (5, {"guardrail_refusal", "dead_letters", "sync_undelivered"}),
        # Refused: it sent nothing, so it cannot say the dead letters went away.
        (3, {"guardrail_refusal"}),
        # Locked by another sync, or an error: it judged nothing.
        (4, set()),
        (1, set()),
    ],
)
def test_judged_causes__a_sync_judges_what_it_got_as_far_as(
    sync_exit: int, judged: set[str]
) -> None:
    assert repeats.judged_causes(
        {"sync segment": sync_exit}, loads_expected=0, finished=True, sync_sent=True
    ) == {"run_error", *judged}


def test_state_round_trips_and_a_damaged_one_reads_as_none() -> None:
    state = {"load_rejects": _open(1), "run_error": _open(None)}
    assert repeats.loads(repeats.dumps(state)) == state
    assert repeats.dumps({}) is None
    for damaged in (None, "", "[1]", '{"x": {"since": "yesterday"}}', "{"):
        assert repeats.loads(damaged) == {}
    # A time with an offset (a hand-edited state) is read as naive UTC: planning with
    # it compares it with naive times, which raised and crashed every tick.
    edited = repeats.loads(
        '{"run_error": {"since": "2026-12-06T04:00:00+02:00",'
        ' "posted_at": "2026-12-06T11:30:00+00:00"}}'
    )
    assert edited == {"run_error": _open(0.5, since_hours_ago=10)}
    assert repeats.plan(edited, {"run_error"}, set(), NOW, SIX_HOURS).held


def _rejects(landing: Path, name: str) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text(f"not json {name} 1\nnot json {name} 2\n")
    return landing


def test_ticks_post_a_lasting_cause_once_then_its_resolution_once(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    landing = _rejects(tmp_path / "landing", "a.ndjson")
    args = ("--webhooks", str(landing), "--no-build", "--no-sync")

    assert tick.run(*args).code == 3
    assert len(webhook.bodies) == 1

    _rejects(landing, "b.ndjson")  # the next tick's files are rejected too
    second = tick.run(*args)
    assert second.code == 3
    assert len(webhook.bodies) == 1
    assert "alert 'load_rejects' not posted again: raised by every tick since" in (
        second.stderr
    )
    assert "posted again 6 h after that (--alert-repeat-hours)" in second.stderr

    _rejects(landing, "c.ndjson")
    assert tick.run(*args, "--alert-repeat-hours", "0").code == 3
    assert len(webhook.bodies) == 2  # 0: every tick

    clean = tick.run(*args)  # nothing new: the loads ran and rejected nothing
    assert clean.code == 0
    assert len(webhook.bodies) == 3
    resolved = webhook.texts()[2]
    assert resolved.startswith("[audiences] Resolved: Load rejected too many records")
    assert "this tick's step ran and did not raise it" in resolved

    assert tick.run(*args).code == 0
    assert len(webhook.bodies) == 3  # closed: nothing more to say
    with connect() as wh:
        rows = wh.query(
            "select alerts, open_alerts from audiences_ops.runs order by started_at"
        )
    assert [alerts for alerts, _ in rows] == [
        "load_rejects", "load_rejects", "load_rejects", None, None,
    ]  # fmt: skip
    assert rows[-1][1] is None


def test_a_loop_over_an_unreachable_warehouse_posts_run_error_once(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    # Its ticks cannot read the runs table: the loop keeps their open alerts itself. A
    # tick every 15 minutes posted run_error 96 times a day.
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    tick.env["AUDIENCES_DUCKDB_PATH"] = str(tmp_path)  # a folder: DuckDB cannot open it
    out = tick.run("--no-build", "--no-sync", "--every", "0.01", "--ticks", "3")
    assert out.code == 1
    assert len(webhook.bodies) == 1, webhook.texts()
    assert webhook.texts()[0].startswith("[audiences] The scheduled run stopped")
    assert out.stderr.count("alert 'run_error' not posted again") == 2


def _unreachable(tick: Tick, webhook: WebhookReceiver, tmp_path: Path) -> Path:
    """Ticks whose warehouse cannot be opened; returns where one-shot ticks keep their
    open alerts (scripts/run/unreached_alerts.py)."""
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    tick.env["AUDIENCES_DUCKDB_PATH"] = str(tmp_path)  # a folder: DuckDB cannot open it
    return tmp_path / "run.lock.dev.open-alerts.json"


def _run_error_then_resolved(webhook: WebhookReceiver) -> None:
    texts = webhook.texts()
    assert len(texts) == 2, texts
    assert texts[0].startswith("[audiences] The scheduled run stopped with an error")
    assert texts[1].startswith(
        "[audiences] Resolved: The scheduled run stopped with an error"
    )


def test_one_shot_ticks_over_an_unreachable_warehouse_post_run_error_once(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path, duckdb_path: Path
) -> None:
    # A one-shot tick from cron is a new process each time, and cannot read the runs
    # table: it posted run_error on every tick. What it leaves open is now kept beside
    # the lock until a tick reaches the warehouse, which posts the resolution.
    kept = _unreachable(tick, webhook, tmp_path)
    outcomes = [tick.run("--no-build", "--no-sync") for _ in range(3)]
    assert [outcome.code for outcome in outcomes] == [1, 1, 1]
    assert len(webhook.bodies) == 1, webhook.texts()
    assert webhook.texts()[0].startswith("[audiences] The scheduled run stopped")
    assert "alert 'run_error' not posted again" not in outcomes[0].stderr
    for later in outcomes[1:]:
        assert "alert 'run_error' not posted again" in later.stderr
    # Cause names and times, never an alert's text (which may name paths or hosts).
    assert list(json.loads(kept.read_text())) == ["run_error"]
    assert str(tmp_path) not in kept.read_text()

    tick.env["AUDIENCES_DUCKDB_PATH"] = str(duckdb_path)
    back = tick.run("--no-build", "--no-sync")
    assert back.code == 0, back.stderr
    assert len(webhook.bodies) == 2
    assert webhook.texts()[1].startswith(
        "[audiences] Resolved: The scheduled run stopped with an error"
    )
    assert not kept.exists()
    assert tick.run("--no-build", "--no-sync").code == 0
    assert len(webhook.bodies) == 2  # closed: nothing more to say


def _hold_duckdb(path: Path) -> subprocess.Popen[str]:
    """Another process that holds the DuckDB file until its stdin is closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_tick_that_cannot_record_itself_keeps_its_open_alerts_in_the_file(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path, duckdb_path: Path
) -> None:
    # It read the runs table, but another process took the DuckDB file while it posted
    # its alert, so its runs row was never written: the file keeps what it left open,
    # and the next tick that records itself resolves it from there.
    holders: list[subprocess.Popen[str]] = []
    webhook.on_post = lambda: holders.append(_hold_duckdb(duckdb_path))
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    landing = _rejects(tmp_path / "landing", "a.ndjson")
    kept = tmp_path / "run.lock.dev.open-alerts.json"
    try:
        first = tick.run("--webhooks", str(landing), "--no-build", "--no-sync")
    finally:
        for holder in holders:
            holder.communicate("")
    assert "cannot record the run" in first.stderr, first.stderr
    assert list(json.loads(kept.read_text())) == ["load_rejects"]
    webhook.on_post = None
    clean = tick.run("--webhooks", str(landing), "--no-build", "--no-sync")
    assert clean.code == 0, clean.stderr
    assert webhook.texts()[-1].startswith(
        "[audiences] Resolved: Load rejected too many records"
    )
    assert not kept.exists()


def test_a_loop_resolves_what_one_shot_ticks_left_and_removes_their_file(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path, duckdb_path: Path
) -> None:
    # Cron's one-shot ticks could not reach the warehouse; then the operator starts the
    # loop, which reaches it: their run_error is said resolved, not left behind.
    kept = _unreachable(tick, webhook, tmp_path)
    assert tick.run("--no-build", "--no-sync").code == 1
    assert kept.exists()
    tick.env["AUDIENCES_DUCKDB_PATH"] = str(duckdb_path)
    out = tick.run("--no-build", "--no-sync", "--every", "0.01", "--ticks", "1")
    assert out.code == 0, out.stderr
    _run_error_then_resolved(webhook)
    assert not kept.exists()


def test_a_loop_resolves_run_error_once_the_warehouse_is_back(
    tick: Tick, webhook: WebhookReceiver, duckdb_path: Path
) -> None:
    # Another process holds the DuckDB file for the first tick, and lets go while that
    # tick posts its run_error (before the answer, so before the next tick starts).
    holder = _hold_duckdb(duckdb_path)
    webhook.on_post = lambda: holder.communicate("")
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    try:
        out = tick.run("--no-build", "--no-sync", "--every", "0.01", "--ticks", "2")
    finally:
        if holder.poll() is None:
            holder.kill()
    assert out.code == 0, out.stderr
    _run_error_then_resolved(webhook)
