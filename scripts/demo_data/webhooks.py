"""Customer.io reporting-webhook events as JSON lines, built from string templates.

The shape follows Customer.io's OpenAPI (`webhooks.reportingWebhook`): envelope
`event_id, object_type, metric, timestamp, data`; `data` holds one parent variant
(campaign, API-triggered broadcast, newsletter, transactional), `customer_id`
(deprecated, blank for email-only people), `identifiers {id, email, cio_id}` and the
metric's own fields. Everything that is the same for all events of a delivery is
rendered once per delivery; one event costs a ULID and one f-string.
"""

from __future__ import annotations

from scripts.demo_data.campaigns import Message, js
from scripts.demo_data.funnel import (
    OPEN_HUMAN,
    OPEN_PREFETCH,
    OPEN_PROXIED,
    OPEN_SYNTHETIC,
)

SMS_SENDER = "+15550100100"

OPEN_FLAGS = {
    OPEN_HUMAN: ',"proxied":false,"prefetched":false,"synthetic":false',
    OPEN_PROXIED: ',"proxied":true,"prefetched":false,"synthetic":false',
    OPEN_PREFETCH: ',"proxied":true,"prefetched":true,"synthetic":false',
    OPEN_SYNTHETIC: ',"proxied":false,"prefetched":false,"synthetic":true',
}
IN_APP_RESPONSES = ("Shop now", "Redeem points", "Take the quiz")

_failure_json: dict[str, str] = {}


def failure(message: str) -> str:
    cached = _failure_json.get(message)
    if cached is None:
        cached = _failure_json[message] = f',"failure_message":{js(message)}'
    return cached


class Delivery:
    """One message instance to one person: the pieces every event of it repeats."""

    __slots__ = (
        "base",
        "channel",
        "email",
        "ident",
        "message",
        "parent",
        "person_id",
        "recipient",
        "token",
    )

    def __init__(
        self,
        message: Message,
        parent: str,
        person_id: str | None,
        email: str,
        ident: str,
        token: str,
        phone: str,
        device: tuple[str, str] | None,
    ) -> None:
        self.message = message
        self.channel = message.channel
        self.parent = parent
        self.person_id = person_id
        self.email = email
        self.token = token
        self.ident = ident
        channel = message.channel
        if channel == "email":
            self.base = f',"recipient":"{email}","subject":{message.subject_json}'
            self.recipient = ""
        elif channel == "sms":
            self.base = f',"recipient":"{phone}"'
            self.recipient = phone
        elif channel == "push":
            device_id, platform = device or ("", "ios")
            self.base = (
                f',"recipients":[{{"device_id":"{device_id}",'
                f'"device_platform":"{platform}"}}]'
            )
            self.recipient = f'"device_id":"{device_id}","device_platform":"{platform}"'
        else:
            self.base = f',"recipient":"{person_id or email}"'
            self.recipient = ""

    def segment_identity(self) -> str:
        """`"userId":...` or, for people without an id, the email as `anonymousId`."""
        if self.person_id is None:
            return f'"anonymousId":"{self.email}"'
        return f'"userId":"{self.person_id}"'

    def href(self, link: int) -> str:
        href = self.message.links[link][1]
        if "{token}" in href:
            href = href.replace("{token}", self.token)
        return href

    def fields(self, metric: str, detail) -> str:
        """The metric-specific `data` fields, as a JSON fragment starting with a comma."""
        channel = self.channel
        if channel == "email":
            if detail is None:
                return self.base
            if metric == "opened":
                return self.base + OPEN_FLAGS[detail]
            if metric == "clicked":
                link = detail >> 1
                machine = "true" if detail & 1 else "false"
                return (
                    f'{self.base},"href":{js(self.href(link))},"link_id":{link + 1},'
                    f'"machine":{machine}'
                )
            if metric == "attempted":
                return failure(detail)
            return self.base + failure(detail)
        if channel == "sms":
            if metric == "sent":
                text = self.message.content.replace("{link}", self.href(0))
                return f'{self.base},"content":{js(text)}'
            if metric == "clicked":
                return f'{self.base},"href":{js(self.href(0))},"link_id":1'
            if metric == "bounced":
                return self.base + failure(detail)
            if metric == "failed":
                return failure(detail)
            if metric == "replied":
                return (
                    f',"inbound_event_id":"{detail}","to":"{SMS_SENDER}",'
                    f'"recipient":"{self.recipient}"'
                )
            return self.base
        if channel == "push":
            if metric == "clicked":
                return f'{self.base},"href":{js(self.href(0))},"link_id":1'
            if metric == "sent":
                return f'{self.base},"content":{push_content(self.message)}'
            if metric in ("bounced", "dropped"):
                return (
                    f',"recipients":[{{{self.recipient},'
                    f'"failure_message":{js(detail)}}}]'
                )
            if metric == "failed":
                return failure(detail)
            return self.base
        # in_app
        if metric == "opened":
            return ""
        if metric == "sent":
            return f'{self.base},"content":{js(self.message.content)}'
        if metric == "clicked":
            response = IN_APP_RESPONSES[self.message.action_id % len(IN_APP_RESPONSES)]
            return (
                f'{self.base},"href":{js(self.href(0))},"link_id":1,'
                f'"tracked_response":"{response}"'
            )
        if metric == "failed":
            return failure(detail)
        return self.base


_push_content: dict[str, str] = {}


def push_content(message: Message) -> str:
    """The stringified push payload Customer.io reports on `sent`."""
    cached = _push_content.get(message.key)
    if cached is None:
        payload = (
            '{"message":'
            + js(message.content)
            + ',"title":"Lumen Skin","link":'
            + js(message.links[0][1] if message.links else "")
            + "}"
        )
        cached = _push_content[message.key] = js(payload)
    return cached


def parent_fields(
    message: Message,
    delivery_id: str,
    journey_id: str,
    trigger_event_id: str | None,
    trigger_id: int | None,
    content_id: int,
) -> str:
    """The parent-variant fields of `data` (no leading comma)."""
    kind = message.parent_type
    if kind == "campaign":
        tev = "null" if trigger_event_id is None else f'"{trigger_event_id}"'
        return (
            f'"campaign_id":{message.parent_id},"action_id":{message.action_id},'
            f'"journey_id":"{journey_id}","trigger_event_id":{tev},'
            f'"delivery_id":"{delivery_id}"'
        )
    if kind == "broadcast":
        return (
            f'"broadcast_id":{message.parent_id},"trigger_id":{trigger_id},'
            f'"action_id":{message.action_id},"journey_id":"{journey_id}",'
            f'"delivery_id":"{delivery_id}"'
        )
    if kind == "newsletter":
        return (
            f'"newsletter_id":{message.parent_id},"content_id":{content_id},'
            f'"delivery_id":"{delivery_id}"'
        )
    return (
        f'"transactional_message_id":{message.parent_id},"delivery_id":"{delivery_id}"'
    )


def identifiers(person_id: str | None, email: str, cio_id: str) -> str:
    """`,"customer_id":...,"identifiers":{...}`: the person part of every message event."""
    id_json = "null" if person_id is None else f'"{person_id}"'
    return (
        f',"customer_id":"{person_id or ""}","identifiers":'
        f'{{"id":{id_json},"email":"{email}","cio_id":"{cio_id}"}}'
    )


def line(event_id: str, object_type: str, metric: str, ts: int, data: str) -> str:
    return (
        f'{{"event_id":"{event_id}","object_type":"{object_type}","metric":"{metric}",'
        f'"timestamp":{ts},"data":{{{data}}}}}\n'
    )


def customer_data(person_id: str | None, email: str, cio_id: str) -> str:
    """`data` of a customer (un)subscribed event: email_address + identifiers."""
    id_json = "null" if person_id is None else f'"{person_id}"'
    return (
        f'"customer_id":"{person_id or ""}","email_address":"{email}",'
        f'"identifiers":{{"id":{id_json},"email":"{email}","cio_id":"{cio_id}"}}'
    )
