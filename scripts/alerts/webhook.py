"""Posting alerts to AUDIENCES_ALERT_WEBHOOK_URL: never twice per cause, never a secret,
never the reason a job fails.

The webhook URL is itself a credential (anyone holding a Slack incoming-webhook URL can post
to the channel), so it is read from the environment only and never printed: a failed post
logs one line with the error's type and HTTP status, not the exception text, which for
`requests` contains the URL.

A post has one deadline for the whole exchange (`requests`' timeout bounds each socket
wait only, so a server that answers a byte at a time never times out): it runs on a
daemon thread and the tick waits at most TIMEOUT_SECONDS for it. Once one post missed
its deadline, the run's other alerts are logged only, so an unresponsive webhook costs a
tick 10 s, not 10 s per cause. Redirects are not followed: `requests` would turn the
POST into a GET and report the final 200, so the alert would count as delivered.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping

import click
import requests

from scripts.alerts.message import Alert, AlertText

WEBHOOK_ENV = "AUDIENCES_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 10.0
# Environment variables whose values must never leave the process in an alert.
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|WEBHOOK_URL)$", re.IGNORECASE)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of secret-named variables, longest first so a prefix never masks the rest."""
    values = {v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= 4}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class Alerter:
    """Collects a run's alerts (one per cause) and posts them once, at `flush()`."""

    def __init__(
        self,
        context: str,
        *,
        environ: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ):
        environ = os.environ if environ is None else environ
        self.url = environ.get(WEBHOOK_ENV) or None
        self.context = context
        self.timeout = timeout
        self.secrets = secret_values(environ)
        self.log = log or (lambda line: click.echo(line, err=True))
        self.pending: dict[str, Alert] = {}
        self.sent: list[str] = []
        # Set once a post missed its deadline: the webhook is not answering.
        self.unanswered = False

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def add(self, alert: Alert) -> None:
        if alert.cause in self.pending:
            self.pending[alert.cause].merge(alert)
        else:
            self.pending[alert.cause] = alert

    def raised(self) -> set[str]:
        """The causes collected so far and not yet flushed (resolutions aside)."""
        return {cause for cause, alert in self.pending.items() if not alert.resolved}

    def flush(self, hold: Mapping[str, str] | None = None) -> list[str]:
        """Post every collected alert, except those in `hold` (cause -> why it is not
        posted again, which is logged instead); returns the causes delivered. Never
        raises."""
        hold = hold or {}
        delivered = []
        for cause, alert in self.pending.items():
            if cause in self.sent:
                continue
            self.log(redact(f"alert: {alert.text(self.context)}", self.secrets))
            if cause in hold:
                self.log(f"alert '{cause}' not posted again: {hold[cause]}")
                self.sent.append(cause)
                continue
            if self.url is None:
                continue
            if self.unanswered:
                self.log(
                    f"alert '{cause}' not delivered: the webhook did not answer an "
                    f"earlier alert within {self.timeout:g} s"
                )
                self.sent.append(cause)
                continue
            if self._post(alert):
                delivered.append(cause)
            self.sent.append(cause)
        self.pending.clear()
        return delivered

    def _post(self, alert: Alert) -> bool:
        # Redacted before the message is cut to Slack's limits: a secret that straddled
        # a cut would no longer match whole.
        text = AlertText(lambda value: redact(value, self.secrets))
        body = _redact_tree(alert.payload(self.context, text), self.secrets)
        answer: dict[str, object] = {}
        poster = threading.Thread(
            target=self._send, args=(body, answer), name="alert-post", daemon=True
        )
        poster.start()
        poster.join(self.timeout)
        if poster.is_alive():
            self.unanswered = True
            self.log(
                f"alert '{alert.cause}' not delivered: the webhook in {WEBHOOK_ENV} "
                f"did not answer within {self.timeout:g} s"
            )
            return False
        if "error" in answer:
            self.log(
                f"alert '{alert.cause}' not delivered: {answer['error']} "
                f"(the webhook in {WEBHOOK_ENV} {answer['why']})"
            )
            return False
        status = answer["status"]
        assert isinstance(status, int)
        if 300 <= status < 400:
            self.log(
                f"alert '{alert.cause}' not delivered: the webhook answered HTTP "
                f"{status}, a redirect, which is not followed: set {WEBHOOK_ENV} to "
                "the address it redirects to"
            )
            return False
        if status >= 300:
            self.log(
                f"alert '{alert.cause}' not delivered: the webhook answered HTTP {status}"
            )
            return False
        return True

    def _send(self, body: object, answer: dict[str, object]) -> None:
        """On the poster thread. Any error is kept by type only: its text holds the URL."""
        assert self.url is not None
        try:
            response = requests.post(
                self.url, json=body, timeout=self.timeout, allow_redirects=False
            )
            answer["status"] = response.status_code
        except Exception as exc:  # any: an alert never fails the tick
            answer["error"] = type(exc).__name__
            unreachable = isinstance(exc, requests.ConnectionError | requests.Timeout)
            answer["why"] = "is unreachable" if unreachable else "could not be used"


def _redact_tree(value: object, secrets: list[str]) -> object:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redact_tree(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redact_tree(item, secrets) for key, item in value.items()}
    return value
