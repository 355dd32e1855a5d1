"""Posting alerts to AUDIENCES_ALERT_WEBHOOK_URL: never twice per cause, never a secret,
never the reason a job fails.

The webhook URL is itself a credential (anyone holding a Slack incoming-webhook URL can post
to the channel), so it is read from the environment only and never printed: a failed post
logs one line with the error's type and HTTP status, not the exception text, which for
`requests` contains the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

import click
import requests

from scripts.alerts.message import Alert

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
    ):
        environ = os.environ if environ is None else environ
        self.url = environ.get(WEBHOOK_ENV) or None
        self.context = context
        self.secrets = secret_values(environ)
        self.log = log or (lambda line: click.echo(line, err=True))
        self.pending: dict[str, Alert] = {}
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def add(self, alert: Alert) -> None:
        if alert.cause in self.pending:
            self.pending[alert.cause].merge(alert)
        else:
            self.pending[alert.cause] = alert

    def flush(self) -> list[str]:
        """Post every collected alert; returns the causes delivered. Never raises."""
        delivered = []
        for cause, alert in self.pending.items():
            if cause in self.sent:
                continue
            self.log(redact(f"alert: {alert.text(self.context)}", self.secrets))
            if self.url is None:
                continue
            if self._post(alert):
                delivered.append(cause)
            self.sent.append(cause)
        self.pending.clear()
        return delivered

    def _post(self, alert: Alert) -> bool:
        body = _redact_tree(alert.payload(self.context), self.secrets)
        assert self.url is not None
        try:
            response = requests.post(self.url, json=body, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            self.log(
                f"alert '{alert.cause}' not delivered: {type(exc).__name__} "
                f"(the webhook in {WEBHOOK_ENV} is unreachable)"
            )
            return False
        if response.status_code >= 300:
            self.log(
                f"alert '{alert.cause}' not delivered: the webhook answered HTTP "
                f"{response.status_code}"
            )
            return False
        return True


def _redact_tree(value: object, secrets: list[str]) -> object:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redact_tree(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redact_tree(item, secrets) for key, item in value.items()}
    return value
