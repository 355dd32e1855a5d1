"""How the alerter redacts and which alerts each flush logs and posts
(scripts/alerts/webhook.py), pinned without a tick: a local webhook receiver and plain
environments. test_alerts.py covers the same through the real `audiences run`."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from scripts.alerts.message import Alert
from scripts.alerts.webhook import Alerter, redact, secret_values
from tests.alerts.webhook_receiver import WebhookReceiver
from tests.conftest import REPO_ROOT

CONTEXT = "run 0123456789ab on target dev"


def _alert(cause: str) -> Alert:
    return Alert(cause, [f"{cause} happened"], "audiences run --help")


def test_secrets_are_the_values_of_secret_names_longest_first() -> None:
    """A value of a secret-named variable is redacted whole even when a shorter secret
    is part of it (replaced first, it would leave the rest of the longer one readable);
    values under 4 characters, and every other variable, are left alone."""
    environ = {
        "PGPASSWORD": "zzzz",
        "SEGMENT_WRITE_KEY": "abcd-zzzz-1234",
        "API_TOKEN": "abc",
        "AUDIENCES_TARGET": "prod",
        "HOME": "/root",
    }
    secrets = secret_values(environ)
    assert secrets == ["abcd-zzzz-1234", "zzzz"]
    said = "key abcd-zzzz-1234, password zzzz, token abc, target prod in /root"
    assert (
        redact(said, secrets)
        == "key ***, password ***, token abc, target prod in /root"
    )


def test_without_a_webhook_every_alert_is_logged_with_its_context() -> None:
    logged: list[str] = []
    alerter = Alerter(CONTEXT, environ={}, log=logged.append)
    alerter.add(_alert("load_rejects"))
    alerter.add(_alert("build_failed"))
    assert alerter.flush() == []
    assert logged == [
        f"alert: [audiences] Load rejected too many records ({CONTEXT})\n"
        "- load_rejects happened\nlook further: audiences run --help",
        f"alert: [audiences] dbt build failed ({CONTEXT})\n"
        "- build_failed happened\nlook further: audiences run --help",
    ]


def test_a_held_cause_is_logged_not_posted_and_never_posted_later_in_the_run() -> None:
    logged: list[str] = []
    with WebhookReceiver() as receiver:
        alerter = Alerter(
            CONTEXT,
            environ={"AUDIENCES_ALERT_WEBHOOK_URL": receiver.url},
            log=logged.append,
        )
        alerter.add(_alert("data_health"))
        alerter.add(_alert("build_failed"))
        assert alerter.flush({"data_health": "posted an hour ago"}) == ["build_failed"]
        assert "alert 'data_health' not posted again: posted an hour ago" in logged
        # The same causes raised again later in the run (the sync's, after the build's):
        # each cause is dealt with once per run, and a new one still goes out.
        for cause in ("data_health", "build_failed", "dead_letters"):
            alerter.add(_alert(cause))
        assert alerter.flush() == ["dead_letters"]
    posted = [body["text"].splitlines()[0] for body in receiver.bodies]
    assert posted == [
        f"[audiences] dbt build failed ({CONTEXT})",
        f"[audiences] Segment refused messages for good (dead letters) ({CONTEXT})",
    ]


def test_after_a_missed_deadline_every_other_alert_is_logged_once() -> None:
    logged: list[str] = []
    with WebhookReceiver(drip_seconds=0.2) as receiver:
        alerter = Alerter(
            CONTEXT,
            environ={"AUDIENCES_ALERT_WEBHOOK_URL": receiver.url},
            log=logged.append,
            timeout=0.5,
        )
        for cause in ("build_failed", "dead_letters", "run_error"):
            alerter.add(_alert(cause))
        assert alerter.flush() == []
        alerter.add(_alert("build_failed"))  # posted, never answered
        alerter.add(_alert("dead_letters"))  # logged after the missed deadline
        assert alerter.flush() == []  # both already dealt with in this run
    assert len(receiver.bodies) == 1
    assert [line for line in logged if "not delivered" in line] == [
        "alert 'build_failed' not delivered: the webhook in "
        "AUDIENCES_ALERT_WEBHOOK_URL did not answer within 0.5 s",
        "alert 'dead_letters' not delivered: the webhook did not answer an earlier "
        "alert within 0.5 s",
        "alert 'run_error' not delivered: the webhook did not answer an earlier "
        "alert within 0.5 s",
    ]


def test_an_unknown_cause_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown alert cause 'disk_full'"):
        Alert("disk_full", [], "df -h")


def test_a_post_still_being_answered_does_not_keep_the_process_alive() -> None:
    """A webhook that answers a header line at a time never trips the read timeout, so
    the post goes on after the flush gave up on it: the tick must still exit at once (the
    poster is a daemon thread), not wait at the interpreter's exit for as long as the
    webhook drips (here 40 s, until http.client refuses a 101st header line)."""
    child = (
        "import sys\n"
        "from scripts.alerts.message import Alert\n"
        "from scripts.alerts.webhook import Alerter\n"
        "alerter = Alerter('run x', environ={'AUDIENCES_ALERT_WEBHOOK_URL': sys.argv[1]},"
        " log=print, timeout=0.5)\n"
        "alerter.add(Alert('build_failed', ['boom'], 'dbt build'))\n"
        "print('delivered', alerter.flush())\n"
    )
    with WebhookReceiver(drip_seconds=0.4) as receiver:
        # In this process: the poster the flush left running is a daemon thread.
        alerter = Alerter(
            CONTEXT,
            environ={"AUDIENCES_ALERT_WEBHOOK_URL": receiver.url},
            log=lambda _: None,
            timeout=0.5,
        )
        alerter.add(_alert("build_failed"))
        before = set(threading.enumerate())
        assert alerter.flush() == []
        left_running = [t for t in threading.enumerate() if t not in before]
        assert left_running, "the never-answered post should still be running"
        assert all(thread.daemon for thread in left_running), left_running
        # And what that means: a process in that state exits at once.
        ended = subprocess.run(
            [sys.executable, "-c", child, receiver.url],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        assert receiver.bodies  # it was posted, and the answer was still dripping
    assert ended.returncode == 0, ended.stderr
    assert "delivered []" in ended.stdout
