"""What an alert says: one cause, what happened, which audiences, and where to look next.

The body follows Slack's incoming-webhook format (a `text` fallback plus Block Kit `blocks`,
within Slack's length limits; sources in docs/alerts.md), which Mattermost, Rocket.Chat and
Discord's `/slack` endpoint also accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# One per thing that can go wrong in a run; "at most one alert per cause per run" keys on it.
CAUSES = {
    "load_rejects": "Load rejected too many records",
    "load_failed": "A landing file failed to load",
    "build_failed": "dbt build failed",
    "data_health": "A data-health check failed",
    "guardrail_refusal": "The Segment sync refused to send",
    "dead_letters": "Segment refused messages for good (dead letters)",
    "sync_undelivered": "The Segment sync did not deliver everything",
    "run_error": "The scheduled run stopped with an error",
}


@dataclass
class AlertText:
    """How a payload's texts are prepared before they are cut to Slack's limits (the
    webhook poster redacts secrets here, so no part of one survives a cut)."""

    prepare: Callable[[str], str] = lambda value: value

    def cut(self, value: str, limit: int) -> str:
        return self.prepare(value)[:limit]


@dataclass
class Alert:
    cause: str
    details: list[str]
    command: str
    audiences: list[str] = field(default_factory=list)
    # A message that the cause, raised by earlier ticks, is gone (scripts/alerts/repeats.py).
    resolved: bool = False

    def __post_init__(self) -> None:
        if self.cause not in CAUSES:
            raise ValueError(f"unknown alert cause {self.cause!r}")

    @classmethod
    def resolution(cls, cause: str, since: datetime) -> Alert:
        return cls(
            cause,
            [
                f"raised by every tick since {since:%Y-%m-%d %H:%M} UTC that could tell; "
                "this tick's step ran and did not raise it"
            ],
            "select run_id, started_at, status, alerts from audiences_ops.runs order "
            "by started_at desc limit 10",
            resolved=True,
        )

    @property
    def title(self) -> str:
        return ("Resolved: " if self.resolved else "") + CAUSES[self.cause]

    def merge(self, other: Alert) -> None:
        """A second finding of the same cause joins this alert instead of sending another."""
        self.details += [d for d in other.details if d not in self.details]
        self.audiences += [a for a in other.audiences if a not in self.audiences]

    def text(self, context: str) -> str:
        """The plain-text fallback, shown in notifications and by webhook targets that
        ignore blocks."""
        lines = [f"[audiences] {self.title} ({context})"]
        if self.audiences:
            lines.append("audiences: " + ", ".join(self.audiences))
        lines += [f"- {d}" for d in self.details]
        lines.append(f"look further: {self.command}")
        return "\n".join(lines)

    def payload(self, context: str, text: AlertText | None = None) -> dict[str, Any]:
        text = text or AlertText()
        fields = [{"type": "mrkdwn", "text": f"*cause*\n`{self.cause}`"}]
        if self.audiences:
            # A field's text is capped at 2000 characters.
            audiences = text.cut(", ".join(self.audiences), 1900)
            fields.append({"type": "mrkdwn", "text": "*audiences*\n" + audiences})
        details = "\n".join(f"• {d}" for d in self.details) or "(no details)"
        return {
            "text": text.prepare(self.text(context)),
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": text.cut(self.title, 150)},
                },
                {"type": "section", "fields": fields},
                # Slack caps a section's text at 3000 characters.
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": text.cut(details, 2900)},
                },
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": text.prepare(f"look further: `{self.command}`"),
                        },
                        {"type": "mrkdwn", "text": text.prepare(context)},
                    ],
                },
            ],
        }
