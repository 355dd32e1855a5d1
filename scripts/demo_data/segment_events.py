"""The same traffic as Customer.io's "Segment (Message Metrics)" integration sends it.

`track` calls named as Customer.io's "Journeys Message Metrics Source" page lists them
(docs/customerio-events.md): `Email Link Clicked`, `Push Suppressed`, `In-App Clicked`,
and the customer-level `Subscribed` / `Unsubscribed`; `userId` is the person's id, or the email
goes in `anonymousId` when the person has none; `properties` carry the webhook `data`
fields (`delivery_id`, parent ids, `journey_id`, `subject`, `recipient`, `href` plus
`link_url`, `link_id`, MPP/machine flags); `context.traits.email` the address.

Which events reach Segment (see `SegmentPolicy`): the integration was switched on part
way through the period and forwards the engagement metrics only, so most Segment events
duplicate a webhook event (same delivery, metric and second) and must be counted once
downstream. During a webhook outage longer than Customer.io's 7-day retry window the
webhook copies were lost, so those days exist only here.
"""

from __future__ import annotations

from scripts.demo_data.clock import DAY, Period

EVENT_NAMES = {
    "email": {
        "delivered": "Email Delivered",
        "opened": "Email Opened",
        "clicked": "Email Link Clicked",
        "converted": "Email Converted",
        "bounced": "Email Bounced",
        "spammed": "Email Marked as Spam",
        "unsubscribed": "Email Unsubscribed",
        "dropped": "Email Suppressed",
    },
    "sms": {
        "delivered": "SMS Delivered",
        "clicked": "SMS Link Clicked",
        "converted": "SMS Converted",
        "bounced": "SMS Bounced",
    },
    "push": {
        "delivered": "Push Delivered",
        "opened": "Push Opened",
        "clicked": "Push Link Clicked",
        "converted": "Push Converted",
        "bounced": "Push Bounced",
        "dropped": "Push Suppressed",
    },
    "in_app": {
        "opened": "In-App Opened",
        "clicked": "In-App Clicked",
        "converted": "In-App Converted",
    },
}
# Customer-level subscription changes, which the page lists under "Subscription".
CUSTOMER_EVENT_NAMES = {"subscribed": "Subscribed", "unsubscribed": "Unsubscribed"}


class SegmentPolicy:
    """When the integration was on, and when the webhook receiver lost events."""

    def __init__(self, period: Period) -> None:
        days = period.days
        self.on_day = int(days * 0.65)
        self.on_ts = period.day_start(self.on_day)
        outage_day = self.on_day + max(1, (days - self.on_day) // 3)
        outage_days = max(1, days // 60)
        if outage_day + outage_days > days - 1:
            outage_day, outage_days = days, 0  # too short a run for an outage
        self.outage_from = period.day_start(outage_day)
        self.outage_to = self.outage_from + outage_days * DAY

    def in_outage(self, ts: int) -> bool:
        return self.outage_from <= ts < self.outage_to


def line(
    name: str,
    message_id: str,
    timestamp: str,
    received_at: str,
    who: str,
    properties: str,
    email: str,
) -> str:
    return (
        f'{{"type":"track","event":"{name}","messageId":"{message_id}",'
        f'"timestamp":"{timestamp}","receivedAt":"{received_at}",{who},'
        f'"properties":{{{properties}}},"context":{{"traits":{{"email":"{email}"}}}}}}\n'
    )
