"""The body an alert posts (scripts/alerts/message.py), pinned whole: Slack's incoming
webhooks refuse a malformed Block Kit payload outright (HTTP 400 `invalid_blocks`), so a
misspelt block type or key would lose every alert, and the receiver of test_alerts.py
accepts any JSON. The block shapes and limits are Slack's (docs/alerts.md)."""

from __future__ import annotations

from scripts.alerts.message import Alert, AlertText

CONTEXT = "run 0123456789ab on target dev"


def test_the_body_is_a_fallback_text_and_four_blocks() -> None:
    alert = Alert(
        "dead_letters",
        ["fatigued: 2 message(s), e.g. HTTP 400", "sms_clickers: 1 message(s)"],
        "select * from segment_sync.dead_letters",
        ["fatigued", "sms_clickers"],
    )
    assert alert.payload(CONTEXT) == {
        "text": (
            "[audiences] Segment refused messages for good (dead letters) "
            f"({CONTEXT})\n"
            "audiences: fatigued, sms_clickers\n"
            "- fatigued: 2 message(s), e.g. HTTP 400\n"
            "- sms_clickers: 1 message(s)\n"
            "look further: select * from segment_sync.dead_letters"
        ),
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": "Segment refused messages for good (dead letters)",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*cause*\n`dead_letters`"},
                    {"type": "mrkdwn", "text": "*audiences*\nfatigued, sms_clickers"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "• fatigued: 2 message(s), e.g. HTTP 400\n"
                    "• sms_clickers: 1 message(s)",
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "look further: `select * from segment_sync.dead_letters`",
                    },
                    {"type": "mrkdwn", "text": CONTEXT},
                ],
            },
        ],
    }


def test_no_audiences_no_field_and_no_details_said_so() -> None:
    body = Alert("run_error", [], "audiences run --help").payload(CONTEXT)
    _, fields, details, _ = body["blocks"]
    assert fields == {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": "*cause*\n`run_error`"}],
    }
    assert details["text"]["text"] == "(no details)"


def test_long_texts_are_cut_to_slack_s_limits_after_they_are_prepared() -> None:
    """A field's text is capped at 2000 characters and a section's at 3000: the
    audiences are cut at 1900 and the details at 2900, after `prepare` (the poster's
    redaction) has run on the whole text."""
    audiences = [f"audience_{i:04d}" for i in range(300)]  # 4,498 characters joined
    details = ["x" * 1000] * 4
    text = AlertText(lambda value: value.replace("x", "y"))
    body = Alert("build_failed", details, "dbt build", audiences).payload(CONTEXT, text)
    _, fields, section, _ = body["blocks"]
    shown = fields["fields"][1]["text"]
    assert shown == "*audiences*\n" + ", ".join(audiences)[:1900]
    assert len(section["text"]["text"]) == 2900
    assert set(section["text"]["text"]) == {"•", " ", "y", "\n"}
