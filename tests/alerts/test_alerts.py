"""Issue 11 items 3 and 4: alerts reach a webhook, once per cause, with no secret; the
scheduled tick has one exit code and one runs row."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from scripts.alerts.message import Alert
from scripts.alerts.webhook import Alerter
from scripts.run.findings import (
    build_findings,
    load_findings,
    sync_delivery,
    sync_refusals,
)
from scripts.run.lock import exclusive
from scripts.run.steps import StepResult
from scripts.warehouse import connect
from tests.alerts.conftest import WRITE_KEY, Tick, closed_port
from tests.alerts.webhook_receiver import WebhookReceiver
from tests.segment_sync import inputs

EVENT_VOLUME_TEST = (
    "test.engagement_audiences.data_health_event_volume_fct_message_events_"
)


def _sync_inputs(*members: tuple[str, str]) -> None:
    with connect() as wh:
        inputs.set_members(wh, list(members))
        inputs.set_exits(wh, [])


def _runs() -> list[tuple]:
    with connect() as wh:
        return wh.query(
            "select status, exit_code, steps, alerts from audiences_ops.runs "
            "order by started_at"
        )


def _landing(directory: Path, name: str, lines: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("".join(f"not json {i}\n" for i in range(lines)))
    return directory


def test_forced_guardrail_refusal_posts_one_alert_naming_the_check(
    engine: str, tick: Tick, webhook: WebhookReceiver
) -> None:
    _sync_inputs(("email_clickers", "u1"), ("email_clickers", "u2"))
    tick.dbt_artifacts(
        [
            ("model.engagement_audiences.fct_message_events", "success", ""),
            # a generic test's unique_id ends in a hash; the alert names the test
            (EVENT_VOLUME_TEST + "clicked.4d24ad5b63", "fail", "event_volume"),
        ]
    )
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url

    out = tick.run("--no-build")

    assert out.code == 3, out.output + out.stderr
    assert len(webhook.bodies) == 1
    (body,) = webhook.bodies
    assert body["text"].startswith("[audiences] The Segment sync refused to send")
    assert (
        "data-health check 'event_volume' failed "
        "(data_health_event_volume_fct_message_events_clicked)"
    ) in body["text"]
    assert "look further: audiences sync segment --dry-run" in body["text"]
    assert [b["type"] for b in body["blocks"]] == [
        "header",
        "section",
        "section",
        "context",
    ]
    raw = json.dumps(body)
    assert WRITE_KEY not in raw
    assert "secret-webhook-token" not in raw
    assert "secret-webhook-token" not in out.output + out.stderr
    ((status, code, steps, alerts),) = _runs()
    assert (status, code, alerts) == ("attention", 3, "guardrail_refusal")
    assert [(s["step"], s["exit_code"]) for s in json.loads(steps)] == [
        ("sync segment", 3)
    ]
    with connect() as wh:
        assert wh.scalar("select count(*) from segment_sync.outbox") == 0


def test_rejects_over_threshold_in_two_loads_make_one_alert(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    webhooks = _landing(tmp_path / "landing" / "webhooks", "a.ndjson", 4)
    segment = _landing(tmp_path / "landing" / "segment", "b.ndjson", 3)
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url

    out = tick.run(
        "--webhooks",
        str(webhooks),
        "--segment-events",
        str(segment),
        "--no-build",
        "--no-sync",
    )

    assert out.code == 3, out.output + out.stderr
    assert len(webhook.bodies) == 1
    text = webhook.texts()[0]
    assert "Load rejected too many records" in text
    assert "webhooks: read 4 = loaded 0 + duplicate 0 + rejected 4" in text
    assert "segment-events: read 3 = loaded 0 + duplicate 0 + rejected 3" in text
    assert "from raw_loader.rejects" in text
    ((status, code, _, alerts),) = _runs()
    assert (status, code, alerts) == ("attention", 3, "load_rejects")

    # The same files again: skipped by their sha256, nothing new to alert about; the
    # loads ran clean, so the cause is posted once more, as resolved.
    again = tick.run("--webhooks", str(webhooks), "--no-build", "--no-sync")
    assert again.code == 0, again.output
    assert len(webhook.bodies) == 2
    assert webhook.texts()[1].startswith(
        "[audiences] Resolved: Load rejected too many records"
    )


def test_dead_letters_alert_names_the_audience(
    tick: Tick, webhook: WebhookReceiver
) -> None:
    from scripts.fakes.segment_receiver import SegmentReceiver

    _sync_inputs(("email_clickers", "small"))
    with connect() as wh:
        # An audience name so long that the event breaks Segment's 32 KB limit.
        wh.execute(
            "insert into analytics.sync_segment__audience_memberships select "
            "'fatigued', %s, audience_version, 'p-big', 'big', signal_at, entered_at "
            "from analytics.sync_segment__audience_memberships",
            ("x" * 40_000,),
        )
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    with SegmentReceiver(WRITE_KEY) as segment:
        tick.env["SEGMENT_HOST"] = segment.url
        out = tick.run("--no-build")

    assert out.code == 5, out.output + out.stderr
    (body,) = webhook.bodies
    assert body["text"].startswith("[audiences] Segment refused messages for good")
    assert "audiences: fatigued" in body["text"]
    assert "32 KB" in body["text"]
    assert "--retry-dead-letters" in body["text"]
    ((status, code, _, alerts),) = _runs()
    assert (status, code, alerts) == ("partial", 5, "dead_letters")


def test_failed_post_is_one_line_and_never_fails_the_tick(
    tick: Tick, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/services/T0/B0/secret-webhook-token"
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = url
    webhooks = _landing(tmp_path / "landing", "a.ndjson", 2)

    out = tick.run("--webhooks", str(webhooks), "--no-build", "--no-sync")

    assert out.code == 3  # the rejects, not the unreachable webhook
    failures = [line for line in out.stderr.splitlines() if "not delivered" in line]
    assert failures == [
        "alert 'load_rejects' not delivered: ConnectionError (the webhook in "
        "AUDIENCES_ALERT_WEBHOOK_URL is unreachable)"
    ]
    assert "secret-webhook-token" not in out.output + out.stderr


def _alerter(url: str, logged: list[str], **options: float) -> Alerter:
    """An Alerter posting to `url`, its log lines kept in `logged`."""
    return Alerter(
        "run x",
        environ={"AUDIENCES_ALERT_WEBHOOK_URL": url},
        log=logged.append,
        **options,
    )


def test_webhook_answering_500_is_logged_not_raised() -> None:
    logged: list[str] = []
    with WebhookReceiver(status=500) as receiver:
        alerter = _alerter(receiver.url, logged)
        alerter.add(Alert("build_failed", ["boom"], "dbt build"))
        assert alerter.flush() == []
    assert len(receiver.bodies) == 1
    assert (
        logged[-1]
        == "alert 'build_failed' not delivered: the webhook answered HTTP 500"
    )


def test_a_webhook_that_answers_a_byte_at_a_time_costs_one_deadline_per_run() -> None:
    # requests' timeout bounds each socket wait: a header line every 0.2 s kept the
    # old post (and the tick, its lock and its runs row) waiting for ever.
    logged: list[str] = []
    with WebhookReceiver(drip_seconds=0.2) as receiver:
        alerter = _alerter(receiver.url, logged, timeout=1.0)
        alerter.add(Alert("build_failed", ["boom"], "dbt build"))
        alerter.add(Alert("dead_letters", ["c"], "cmd2"))
        started = time.monotonic()
        assert alerter.flush() == []
        took = time.monotonic() - started
    assert took < 5, f"flush took {took:.1f} s"
    assert len(receiver.bodies) == 1  # the second alert was not posted to it
    failures = [line for line in logged if "not delivered" in line]
    assert failures == [
        "alert 'build_failed' not delivered: the webhook in "
        "AUDIENCES_ALERT_WEBHOOK_URL did not answer within 1 s",
        "alert 'dead_letters' not delivered: the webhook did not answer an earlier "
        "alert within 1 s",
    ]


def test_a_webhook_url_that_cannot_be_parsed_is_one_line_not_a_crash() -> None:
    logged: list[str] = []
    alerter = _alerter("http://a..b/services/T0/B0/XOXSECRET", logged)
    alerter.add(Alert("run_error", ["x"], "audiences run --help"))
    assert alerter.flush() == []
    (failure,) = [line for line in logged if "not delivered" in line]
    assert failure.startswith("alert 'run_error' not delivered: ")
    assert failure.endswith(
        "(the webhook in AUDIENCES_ALERT_WEBHOOK_URL could not be used)"
    )
    assert "XOXSECRET" not in "\n".join(logged)


def test_a_redirected_post_is_not_counted_as_delivered() -> None:
    # Following it, requests sends a GET with no body and reports the final 200.
    logged: list[str] = []
    with WebhookReceiver(status=302) as receiver:
        alerter = _alerter(receiver.url, logged)
        alerter.add(Alert("data_health", ["x"], "dbt test"))
        assert alerter.flush() == []
    assert receiver.gets == []
    assert logged[-1].startswith(
        "alert 'data_health' not delivered: the webhook answered HTTP 302, a redirect"
    )


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (299, None),  # any 2xx is delivered
        (300, "redirect"),
        (399, "redirect"),
        (400, "refused"),
    ],
)
def test_what_each_status_class_means_for_delivery(
    status: int, said: str | None
) -> None:
    logged: list[str] = []
    with WebhookReceiver(status=status) as receiver:
        alerter = _alerter(receiver.url, logged)
        alerter.add(Alert("data_health", ["x"], "dbt test"))
        delivered = alerter.flush()
    failures = [line for line in logged if "not delivered" in line]
    if said is None:
        assert (delivered, failures) == (["data_health"], [])
        return
    assert delivered == []
    assert failures == [
        f"alert 'data_health' not delivered: the webhook answered HTTP {status}"
        + (
            ", a redirect, which is not followed: set AUDIENCES_ALERT_WEBHOOK_URL to "
            "the address it redirects to"
            if said == "redirect"
            else ""
        )
    ]


def test_a_post_the_webhook_never_answers_ends_at_its_deadline() -> None:
    """The tick stops waiting at the deadline; the post itself must end then too, or a
    silent webhook would keep a connection (and a thread) open until the process exits."""
    logged: list[str] = []
    with socket.socket() as silent:  # accepts connections (the backlog), answers none
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        alerter = _alerter(
            f"http://127.0.0.1:{silent.getsockname()[1]}/", logged, timeout=0.5
        )
        alerter.add(Alert("build_failed", ["boom"], "dbt build"))
        before = set(threading.enumerate())
        assert alerter.flush() == []
        # Whatever the flush started and left running (by identity, not by name: a
        # renamed thread must not make this test pass without looking).
        posters = [t for t in threading.enumerate() if t not in before]
        for poster in posters:
            poster.join(10)
        assert not any(poster.is_alive() for poster in posters)
    assert len([line for line in logged if "not delivered" in line]) == 1


@pytest.mark.parametrize("at", [2880, 2890, 2899])
def test_a_secret_cut_by_a_length_limit_leaves_no_part_of_it(at: int) -> None:
    secret = "pg-Pa55word-0123456789abcdef"
    with WebhookReceiver() as receiver:
        alerter = Alerter(
            "run x",
            environ={"AUDIENCES_ALERT_WEBHOOK_URL": receiver.url, "PGPASSWORD": secret},
            log=lambda _: None,
        )
        # "• " starts the details section, cut at 2900 characters.
        alerter.add(Alert("run_error", ["x" * (at - 2) + secret], "cmd"))
        assert alerter.flush() == ["run_error"]
    posted = json.dumps(receiver.bodies)
    assert secret[:6] not in posted
    details = receiver.bodies[0]["blocks"][2]["text"]["text"]
    assert len(details) <= 2900
    assert details.startswith("• xxx")


def test_alerts_merge_per_cause_and_redact_secret_environment_values() -> None:
    with WebhookReceiver() as receiver:
        environ = {
            "AUDIENCES_ALERT_WEBHOOK_URL": receiver.url,
            "SEGMENT_WRITE_KEY": WRITE_KEY,
        }
        alerter = Alerter("run x", environ=environ, log=lambda _: None)
        alerter.add(Alert("guardrail_refusal", ["a"], "cmd", ["email_clickers"]))
        alerter.add(
            Alert("guardrail_refusal", [f"key {WRITE_KEY}"], "cmd", ["fatigued"])
        )
        alerter.add(Alert("dead_letters", ["c"], "cmd2"))
        assert alerter.flush() == ["guardrail_refusal", "dead_letters"]
        alerter.add(Alert("dead_letters", ["again"], "cmd2"))
        assert alerter.flush() == []  # at most one per cause per run
    first, second = receiver.texts()
    assert "audiences: email_clickers, fatigued" in first
    assert "- key ***" in first
    assert WRITE_KEY not in json.dumps(receiver.bodies)
    assert second.startswith("[audiences] Segment refused messages for good")


def test_no_webhook_configured_logs_the_alert_only() -> None:
    logged: list[str] = []
    alerter = Alerter("run x", environ={}, log=logged.append)
    alerter.add(Alert("run_error", ["x"], "audiences run --help"))
    assert alerter.flush() == []
    assert logged[0].startswith("alert: [audiences] The scheduled run stopped")


def test_refusal_lines_name_their_audiences() -> None:
    step = StepResult(
        "sync segment",
        [],
        3,
        0.1,
        [
            "refusing to send:",
            "  - [drop_to_zero] fatigued would drop from 120 members to zero",
            "  - [max_change] email_clickers would change by 80% (1 enter, ...)",
            "  - [holdout] sms_clickers: 2 holdout member(s) are in the sync input",
            "  - [stale] the newest signal/entry/exit in the sync inputs is 40.0 h old",
        ],
    )
    (alert,) = sync_refusals(step)
    assert alert.audiences == ["fatigued", "email_clickers", "sms_clickers"]
    assert len(alert.details) == 4


def test_build_findings_split_data_health_from_other_failures(tick: Tick) -> None:
    from datetime import UTC, datetime, timedelta

    tick.dbt_artifacts(
        [
            (EVENT_VOLUME_TEST + "clicked", "fail", "event_volume"),
            (
                "test.engagement_audiences.data_health_source_freshness_x",
                "pass",
                "freshness",
            ),
            ("model.engagement_audiences.fct_orders", "error", ""),
        ]
    )
    step = StepResult("dbt build", [], 1, 1.0, ["Done. PASS=1 WARN=0 ERROR=2"])
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    health, build = build_findings(step, tick.target_dir / "run_results.json", since)
    assert health.cause == "data_health"
    assert health.details[0].startswith("check 'event_volume'")
    assert build.cause == "build_failed"
    # fct_orders and everything downstream of it, which the failure skipped
    assert build.command == "dbt build --select fct_orders+"
    # results older than the tick are not this build's: only the exit status speaks
    (stale,) = build_findings(
        step,
        tick.target_dir / "run_results.json",
        datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1),
    )
    assert stale.cause == "build_failed"
    assert stale.details[0] == "`dbt build` exited 1"


def test_a_killed_build_s_alert_skips_the_resource_tracker_s_warnings(
    tmp_path: Path,
) -> None:
    """A killed dbt leaves multiprocessing's resource tracker to warn, two lines per
    warning, of leaked semaphores: the alert keeps the build's own last lines."""
    tracker = "/usr/lib/python3.11/multiprocessing/resource_tracker.py:224: UserWarning"
    output = [
        "14:01:02  5 of 162 START sql incremental model analytics.int_people_phone",
        "14:01:02  6 of 162 START sql table model analytics.fct_orders",
        "14:01:03  4 of 162 OK created sql table model analytics.dim_audiences",
        f"{tracker}: resource_tracker: There appear to be 6 leaked semaphore objects "
        "to clean up at shutdown",
        "  warnings.warn('resource_tracker: There appear to be %d '",
    ]
    step = StepResult("dbt build", [], -9, 1.0, output)
    (alert,) = build_findings(step, tmp_path / "run_results.json", datetime.now())
    assert alert.cause == "build_failed"
    assert alert.details == ["`dbt build` exited -9", *output[:3]]


def test_a_second_tick_while_one_holds_the_lock_does_nothing(tick: Tick) -> None:
    with exclusive(Path(tick.env["AUDIENCES_RUN_LOCK"])):
        out = tick.run("--no-build", "--no-sync")
    assert out.code == 4
    assert "another `audiences run` holds" in out.stderr
    with connect() as wh:
        assert not wh.table_exists("audiences_ops", "runs")


def test_a_lock_file_that_holds_other_data_is_refused_and_left_as_it_is(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    """AUDIENCES_RUN_LOCK pointed at the warehouse by a slip: the tick refuses it,
    alerts, and writes nothing into it."""
    not_a_lock = tmp_path / "copy-of-the-warehouse.duckdb"
    not_a_lock.write_bytes(b"DUCK" + bytes(range(256)) * 64)
    before = not_a_lock.read_bytes()
    tick.env["AUDIENCES_RUN_LOCK"] = str(not_a_lock)
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url

    out = tick.run("--no-build", "--no-sync")

    assert out.code == 1, out.output + out.stderr
    assert f"error: {not_a_lock} holds something other than a tick's pid" in out.stderr
    assert "Traceback" not in out.stderr
    assert not_a_lock.read_bytes() == before
    (alert,) = webhook.texts()
    assert alert.startswith("[audiences] The scheduled run stopped with an error")
    assert "holds something other than a tick's pid" in alert
    with connect() as wh:
        assert not wh.table_exists("audiences_ops", "runs")


@pytest.mark.parametrize("content", [b"", b"4242\n", b"4242"])
def test_a_lock_file_of_an_ended_tick_is_taken_over(
    tmp_path: Path, content: bytes
) -> None:
    """Empty, a pid, or a pid cut short by a full disk: a lock file, whose holder has
    ended (the flock is free); its pid is replaced by this process's."""
    path = tmp_path / "run.lock"
    path.write_bytes(content)
    with exclusive(path):
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_lock_file_that_cannot_be_opened_is_a_clear_error(
    tick: Tick, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    tick.env["AUDIENCES_RUN_LOCK"] = str(a_file / "run.lock")  # a file, not a folder

    out = tick.run("--no-build", "--no-sync")

    assert out.code == 1, out.output + out.stderr
    assert f"error: cannot create the folder of {a_file / 'run.lock'}" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("replaced_by_a_new_file", [True, False])
def test_a_lock_file_replaced_while_being_locked_is_locked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replaced_by_a_new_file: bool
) -> None:
    """Between opening the file and locking it, the file at the path was replaced (or
    only removed): the lock taken on the old one keeps no one out, so the tick locks
    the file that is at the path now."""
    path = tmp_path / "run.lock"
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock_after_a_replacement(handle: object, operation: int) -> None:
        if not calls:
            path.unlink()
            if replaced_by_a_new_file:
                path.write_bytes(b"")
        calls.append(operation)
        real_flock(handle, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_replacement)
    with exclusive(path) as descriptor:
        assert len(calls) == 2  # the first lock was dropped, a second one taken
        assert os.fstat(descriptor).st_ino == path.stat().st_ino
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_missing_landing_folder_is_a_failed_tick_recorded_and_alerted(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    """An unmounted volume under cron: the tick was a usage error (exit 2), which no
    alert and no runs row told anyone of, every tick, for as long as it lasted."""
    webhooks = _landing(tmp_path / "landing" / "webhooks", "a.ndjson", 0)
    missing = tmp_path / "mnt" / "orders"
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url

    out = tick.run("--webhooks", str(webhooks), "--orders", str(missing), "--no-sync")

    assert out.code == 6, out.output + out.stderr
    assert f"--orders {missing} does not exist" in out.stderr
    (text,) = webhook.texts()
    assert "`audiences load orders` exited 2" in text
    assert str(missing) in text
    ((status, code, steps, alerts),) = _runs()
    assert (status, code, alerts) == ("failed", 6, "load_failed")
    ran = [step["step"] for step in json.loads(steps)]
    assert ran == ["load webhooks", "load orders"]  # no build after a failed load

    # A file where a folder is expected is still the operator's typo: a usage error.
    a_file = tmp_path / "orders.csv"
    a_file.write_text("")
    typo = tick.run("--orders", str(a_file), "--no-build", "--no-sync")
    assert typo.code == 2, typo.output + typo.stderr
    assert f"Directory '{a_file}' is a file" in typo.stderr
    # Something else that is no folder (click lets a named pipe through): the same.
    pipe = tmp_path / "orders.fifo"
    os.mkfifo(pipe)
    piped = tick.run("--orders", str(pipe), "--no-build", "--no-sync")
    assert piped.code == 2, piped.output + piped.stderr
    assert f"--orders {pipe} is not a directory" in piped.stderr
    assert len(_runs()) == 1


def test_a_load_that_fails_names_the_loader_and_the_error() -> None:
    step = StepResult(
        "load orders",
        [],
        4,
        0.5,
        ["error: orders-2026-11-30.csv failed to load: Conversion Error: …"],
    )
    (alert,) = load_findings(step, "orders")
    assert alert.cause == "load_failed"
    assert alert.details == [
        "`audiences load orders` exited 4",
        "error: orders-2026-11-30.csv failed to load: Conversion Error: …",
    ]


def _sync_run(
    wh,
    run_id: str,
    since: datetime,
    status: str,
    counts: tuple,
    error: str | None = None,
) -> None:
    """A sync run a minute after `since`: (planned, sent, failed), exit 5."""
    from datetime import timedelta

    from scripts.segment_sync import outbox

    outbox.ensure(wh)
    wh.execute(
        f"insert into {outbox.RUNS} (run_id, target_name, started_at, status, "
        "exit_code, is_forced, is_full_resync, count_planned, count_sent, "
        "count_failed, error) values (%s, 'dev', %s, %s, 5, false, false, %s, %s, %s, %s)",
        (run_id, since + timedelta(minutes=1), status, *counts, error),
    )


def _pending_message(wh, run_id: str, at: datetime) -> None:
    """One message of `run_id` still in the outbox, for audience fatigued."""
    from scripts.segment_sync import outbox

    wh.execute(
        f"insert into {outbox.OUTBOX} (seq, message_id, transition_id, run_id, "
        "audience_key, audience_name, audience_version, user_id, person_id, "
        "transition, call_type, is_member, generation, occurred_at, status, "
        "attempts, created_at) values (1, 'm1', 't1', %s, 'fatigued', 'Fatigued', 1, "
        "'u1', 'p1', 'enter', 'identify', true, 1, %s, 'pending', 1, %s)",
        (run_id, at, at),
    )


def test_undelivered_sync_names_the_audiences_still_pending(duckdb_path: Path) -> None:
    since = datetime(2026, 11, 30, 6)
    with connect() as wh:
        _sync_run(wh, "r9", since, "partial", (10, 7, 3))
        _pending_message(wh, "r9", since)
        step = StepResult("sync segment", [], 5, 3.0, [])
        (alert,) = sync_delivery(wh, since, step)
    assert alert.cause == "sync_undelivered"
    assert alert.audiences == ["fatigued"]
    assert alert.details[0] == (
        "sync run r9 ended 'partial': sent 7 of 10, 3 failed, 1 pending "
        "(resent by the next run)"
    )


def test_a_sync_stopped_by_a_signal_after_sending_everything_is_no_undelivered_alert(
    duckdb_path: Path,
) -> None:
    since = datetime(2026, 11, 30, 6)
    with connect() as wh:
        _sync_run(wh, "r10", since, "interrupted", (20, 20, 0), "stopped by a signal")
        step = StepResult("sync segment", [], 5, 3.0, [])
        assert sync_delivery(wh, since, step) == []
        # One message still pending: that is undelivered, and said so.
        _pending_message(wh, "r10", since)
        (alert,) = sync_delivery(wh, since, step)
    assert alert.details == [
        "sync run r10 ended 'interrupted': sent 20 of 20, 0 failed, 1 pending "
        "(resent by the next run)",
        "stopped by a signal",
    ]


def test_sigterm_reaches_the_running_sync_and_the_tick_records_itself(
    tick: Tick, webhook: WebhookReceiver
) -> None:
    import signal

    from scripts.fakes.segment_receiver import SegmentReceiver

    _sync_inputs(*[("email_clickers", f"u{i}") for i in range(10)])
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    with SegmentReceiver(WRITE_KEY) as segment:
        # The first batch is parked until released: the sync is mid-send, for certain.
        segment.set_faults(hold_after_batches=0, hold_accepts=False)
        tick.env["SEGMENT_HOST"] = segment.url
        process = tick.start("--no-build")
        try:
            assert segment.wait_holding(120)
            process.send_signal(signal.SIGTERM)
            segment.release()
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()

    assert process.returncode == 5, stdout + stderr
    assert "stopped by a signal during sync segment; no further step" in stderr
    assert "received signal 15" in stdout  # the sync itself saw it and stopped cleanly
    ((status, code, steps, alerts),) = _runs()
    assert (status, code) == ("partial", 5)
    assert [(s["step"], s["exit_code"]) for s in json.loads(steps)] == [
        ("sync segment", 5)
    ]
    # The signal came while the one group was in flight: the sync finished it, so all
    # went out and nothing is undelivered; exit 5 and the run row say it was stopped.
    assert alerts is None
    with connect() as wh:
        assert wh.query(
            "select status, count_sent, count_planned from segment_sync.runs"
        ) == [("interrupted", 20, 20)]
        assert (
            wh.scalar(
                "select count(*) from segment_sync.outbox where status = 'pending'"
            )
            == 0
        )


def test_sigterm_after_the_last_step_lets_the_tick_finish_recording(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    """A signal outside any step (here while the tick posts its alert, after its one
    load) no longer kills the tick half recorded: it posts, records its row and exits
    with its own code."""
    import signal

    webhooks = _landing(tmp_path / "landing" / "webhooks", "a.ndjson", 4)
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    process = tick.start("--webhooks", str(webhooks), "--no-build", "--no-sync")
    # The tick waits for the answer to its post, so the signal arrives mid-post.
    webhook.on_post = lambda: process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 3, stdout + stderr  # not -15: it was not killed
    assert len(webhook.bodies) == 1
    ((status, code, steps, alerts),) = _runs()
    assert (status, code, alerts) == ("attention", 3, "load_rejects")
    assert [(s["step"], s["exit_code"]) for s in json.loads(steps)] == [
        ("load webhooks", 3)
    ]


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for the signal (/proc/PID/status, SigCgt)."""
    status = Path(f"/proc/{pid}/status").read_text()
    (mask,) = (
        line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")
    )
    return bool(int(mask, 16) >> (signum - 1) & 1)


def test_a_second_sigterm_outside_a_step_ends_the_tick_at_once(
    tick: Tick, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    """The first SIGTERM (here while the tick waits on its alert's answer) asks it to
    wind down; a second ends it at once, by the kernel's default action, as a scheduler's
    timeout or an operator asking twice expects."""
    import signal
    import time

    webhooks = _landing(tmp_path / "landing" / "webhooks", "a.ndjson", 4)
    tick.env["AUDIENCES_ALERT_WEBHOOK_URL"] = webhook.url
    process = tick.start("--webhooks", str(webhooks), "--no-build", "--no-sync")
    handled: list[bool] = []

    def twice() -> None:  # the tick waits for this post's answer meanwhile
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        # The first one's handler has run once the tick no longer catches SIGTERM.
        while _catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.01)
        handled.append(not _catches(process.pid, signal.SIGTERM))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # ended before its post was answered

    webhook.on_post = twice
    try:
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert handled == [True]
    assert process.returncode == -signal.SIGTERM
    ((status, code, _, _),) = _runs()
    assert (status, code) == ("running", None)  # killed before recording its end
