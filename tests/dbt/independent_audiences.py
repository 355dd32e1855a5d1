"""The shipped audiences recomputed in plain Python from the raw landing tables.

Written from the audience definitions in models/audiences/_audiences.yml and the README,
not from the SQL: raw payloads are parsed here with `json`, identities are stitched with
dictionaries, windows are datetime arithmetic. If the dbt models and this module agree on
the demo data, both read the rules the same way.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

EPOCH = datetime(1970, 1, 1)


@dataclass
class Event:
    source_rank: int
    source_id: str
    person_ref: tuple[str | None, str | None, str | None]  # cio_id, customer_id, email
    channel: str
    metric: str
    delivery_id: str | None
    campaign_id: str | None
    link_url: str | None
    machine: bool | None
    at: datetime


@dataclass
class Person:
    last_purchase_at: datetime | None = None
    customer_unsub_at: datetime | None = None
    subscribed_at: datetime | None = None
    email_unsub_at: datetime | None = None
    sms_unsub_at: datetime | None = None
    spam_at: datetime | None = None
    bounced_at: datetime | None = None
    delivered_at: datetime | None = None
    events: list[Event] = field(default_factory=list)


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _segment_name(event_name: str) -> tuple[str, str] | None:
    """Customer.io's Segment event names back to (channel, metric)."""
    # Customer.io's Journeys Message Metrics page: subscription changes are person-level.
    if event_name in ("Subscribed", "Unsubscribed"):
        return "customer", event_name.lower()
    if event_name == "Subscription Preferences Changed":
        return "customer", "cio_subscription_preferences_changed"
    if event_name in ("Customer Subscribed", "Customer Unsubscribed"):
        return "customer", event_name.split()[1].lower()
    if event_name == "In-App Clicked":
        return "in_app", "clicked"
    prefixes = {"Email ": "email", "SMS ": "sms", "Push ": "push", "In-App ": "in_app"}
    for prefix, channel in prefixes.items():
        if event_name.startswith(prefix):
            rest = event_name[len(prefix) :]
            metric = {
                "Link Clicked": "clicked",
                "Marked as Spam": "spammed",
                "Suppressed": "dropped",
            }.get(rest, rest.lower())
            return channel, metric
    return None


def _machine(channel: str, metric: str, data: dict) -> bool | None:
    if metric == "opened":
        # The default machine_open_flags: prefetched only (proxied alone is a human's
        # privacy proxy, per Customer.io's webhook spec).
        flags = [data.get("prefetched")]
        if any(flag is True for flag in flags):
            return True
        if any(flag is False for flag in flags):
            return False
        return None
    if metric == "clicked":
        return data.get("machine")
    return None


def read_events(connection) -> list[Event]:
    events = []
    for event_id, payload in connection.execute(
        "select event_id, cast(payload as varchar) from raw_customerio.webhook_events"
    ).fetchall():
        body = json.loads(payload)
        data = body.get("data") or {}
        ids = data.get("identifiers") or {}
        events.append(
            Event(
                1,
                event_id,
                (
                    _text(ids.get("cio_id")),
                    _text(ids.get("id")),
                    _lower(ids.get("email") or data.get("email_address")),
                ),
                body["object_type"],
                body["metric"],
                _text(data.get("delivery_id")),
                _text(data.get("campaign_id")),
                data.get("href"),
                _machine(body["object_type"], body["metric"], data),
                EPOCH + timedelta(seconds=int(body["timestamp"])),
            )
        )
    for message_id, payload, at in connection.execute(
        "select message_id, cast(payload as varchar), occurred_at "
        "from raw_customerio_segment.tracks"
    ).fetchall():
        body = json.loads(payload)
        mapped = _segment_name(body.get("event", ""))
        if mapped is None:
            continue
        props = body.get("properties") or {}
        anonymous = body.get("anonymousId")
        recipient = props.get("recipient")
        # An SMS recipient is the phone number: only an email-shaped one is an email.
        email = (
            ((body.get("context") or {}).get("traits") or {}).get("email")
            or (recipient if recipient and "@" in recipient else None)
            or (anonymous if anonymous and "@" in anonymous else None)
        )
        events.append(
            Event(
                2,
                message_id,
                (None, _text(body.get("userId")), _lower(email)),
                mapped[0],
                mapped[1],
                _text(props.get("delivery_id")),
                _text(props.get("campaign_id")),
                props.get("href") or props.get("link_url"),
                _machine(mapped[0], mapped[1], props),
                at,
            )
        )
    # One event per (delivery or person, channel, metric, second); webhooks win.
    best: dict[tuple, Event] = {}
    for event in events:
        cio, cid, email = event.person_ref
        key = (
            event.delivery_id or cid or email or cio,
            event.channel,
            event.metric,
            event.at.replace(microsecond=0),
        )
        current = best.get(key)
        if current is None or (event.source_rank, event.source_id) < (
            current.source_rank,
            current.source_id,
        ):
            best[key] = event
    return list(best.values())


def read_orders(connection) -> list[tuple[str | None, str | None, str, datetime]]:
    return [
        (customer_id, _lower(email), status.lower(), ordered_at)
        for customer_id, email, status, ordered_at in connection.execute(
            "select customer_id, email, status, ordered_at from raw_shop.orders"
        ).fetchall()
    ]


class Identity:
    """cio_id anchors a person; ids and emails follow the cio_id seen with them last."""

    def __init__(
        self, observations: list[tuple[str | None, str | None, str | None, datetime]]
    ):
        id_cio: dict[str, tuple[datetime, str]] = {}
        email_cio: dict[str, tuple[datetime, str]] = {}
        email_id: dict[str, tuple[datetime, str]] = {}
        id_email: dict[str, tuple[datetime, str]] = {}
        cio_id: dict[str, tuple[datetime, str]] = {}
        for cio, cid, email, at in observations:
            if cid and cio:
                id_cio[cid] = max(id_cio.get(cid, (at, cio)), (at, cio))
                cio_id[cio] = max(cio_id.get(cio, (at, cid)), (at, cid))
            if email and cio:
                email_cio[email] = max(email_cio.get(email, (at, cio)), (at, cio))
            if email and cid:
                email_id[email] = max(email_id.get(email, (at, cid)), (at, cid))
                id_email[cid] = max(id_email.get(cid, (at, email)), (at, email))
        self.id_cio = {k: v[1] for k, v in id_cio.items()}
        self.email_cio = {k: v[1] for k, v in email_cio.items()}
        self.email_id = {k: v[1] for k, v in email_id.items()}
        self.id_email = {k: v[1] for k, v in id_email.items()}
        self.cio_id = {k: v[1] for k, v in cio_id.items()}
        self.latest_id: dict[str, tuple[datetime, str]] = {}
        for cio, cid, email, at in observations:
            if cid:
                person = self.person(cio, cid, email)
                self.latest_id[person] = max(
                    self.latest_id.get(person, (at, cid)), (at, cid)
                )

    def _by_cio(self, cio: str) -> str:
        # A cio_id whose id moved on to another cio_id (merged, re-created) joins it, to
        # the end of a chain of such merges (each hop is to a later sighting: no cycle).
        while (latest_id := self.cio_id.get(cio)) and self.id_cio[latest_id] != cio:
            cio = self.id_cio[latest_id]
        return f"cio:{cio}"

    def _by_id(self, cid: str) -> str:
        if cid in self.id_cio:
            return self._by_cio(self.id_cio[cid])
        # An account Customer.io has not seen joins the person of its latest email.
        if self.id_email.get(cid) in self.email_cio:
            return self._by_cio(self.email_cio[self.id_email[cid]])
        return f"id:{cid}"

    def _by_email(self, email: str) -> str:
        if email in self.email_cio:
            return self._by_cio(self.email_cio[email])
        if email in self.email_id:
            return self._by_id(self.email_id[email])
        return f"email:{email}"

    def person(self, cio: str | None, cid: str | None, email: str | None) -> str | None:
        if cio:
            return self._by_cio(cio)
        if cid:
            return self._by_id(cid)
        if email:
            return self._by_email(email)
        return None

    def user_id(self, person: str) -> str | None:
        found = self.latest_id.get(person)
        return found[1] if found else None


def bought_since(p: Person, signal_at: datetime) -> bool:
    """A purchase in the same second as the signal counts as bought since it."""
    return p.last_purchase_at is not None and p.last_purchase_at.replace(
        microsecond=0
    ) >= signal_at.replace(microsecond=0)


def _later(a: datetime | None, b: datetime | None) -> bool:
    """a happened and is after b (or b never happened)."""
    return a is not None and (b is None or a > b)


def people_as_of(
    events: list[Event], orders: list, as_of: datetime
) -> tuple[Identity, dict[str, Person]]:
    visible = [e for e in events if e.at <= as_of]
    observations = [(*e.person_ref, e.at) for e in visible]
    observations += [
        (None, cid, email, at) for cid, email, _, at in orders if at <= as_of
    ]
    observations = [o for o in observations if any(o[:3])]
    identity = Identity(observations)
    people: dict[str, Person] = defaultdict(Person)
    for event in visible:
        person = people[identity.person(*event.person_ref)]
        person.events.append(event)
        channel, metric, at = event.channel, event.metric, event.at

        def latest(current: datetime | None, at: datetime = at) -> datetime:
            return at if current is None or at > current else current

        if channel == "customer" and metric == "unsubscribed":
            person.customer_unsub_at = latest(person.customer_unsub_at)
        elif channel == "customer" and metric == "subscribed":
            person.subscribed_at = latest(person.subscribed_at)
        elif channel == "email" and metric == "unsubscribed":
            person.email_unsub_at = latest(person.email_unsub_at)
        elif channel == "sms" and metric == "unsubscribed":
            person.sms_unsub_at = latest(person.sms_unsub_at)
        elif channel == "email" and metric == "spammed":
            person.spam_at = latest(person.spam_at)
        elif channel == "email" and metric == "bounced":
            person.bounced_at = latest(person.bounced_at)
        elif channel == "email" and metric == "delivered":
            person.delivered_at = latest(person.delivered_at)
    for cid, email, status, at in orders:
        if at > as_of or status == "cancelled":
            continue
        person = people[identity.person(None, cid, email)]
        if person.last_purchase_at is None or at > person.last_purchase_at:
            person.last_purchase_at = at
    people.pop(None, None)  # type: ignore[call-overload]
    return identity, people


def _suppressed_by_list(identity: Identity, seed: Path) -> set[str]:
    listed = set()
    with seed.open(newline="") as handle:
        for row in csv.DictReader(handle):
            kind, value = row["identifier_type"], row["identifier_value"]
            if kind == "email":
                listed.add(identity._by_email(value.strip().lower()))
            elif kind == "customer_id":
                listed.add(identity._by_id(value))
            else:
                listed.add(identity._by_cio(value))
    return listed


def compute(
    connection, as_of: datetime, suppression_seed: Path
) -> dict[str, dict[str, datetime]]:
    """{audience_key_vN: {person_id: signal_at}} for every shipped audience version."""
    events = read_events(connection)
    orders = read_orders(connection)
    identity, people = people_as_of(events, orders, as_of)
    listed = _suppressed_by_list(identity, suppression_seed)

    def clean(
        pid: str,
        p: Person,
        channels: tuple[str, ...] = (),
        spam: bool = True,
        bounce: bool = False,
        unsub: bool = True,
        global_list: bool = True,
    ) -> bool:
        if unsub and _later(p.customer_unsub_at, p.subscribed_at):
            return False
        if "email" in channels and _later(p.email_unsub_at, p.subscribed_at):
            return False
        if "sms" in channels and _later(p.sms_unsub_at, p.subscribed_at):
            return False
        if spam and p.spam_at is not None:
            return False
        if bounce and _later(p.bounced_at, p.delivered_at):
            return False
        return not (global_list and pid in listed)

    def clicks(p: Person, channels: set[str], campaigns: set[str] | None, link: str | None,
               newest: timedelta, oldest: timedelta | None = None) -> datetime | None:  # fmt: skip
        times = [
            e.at
            for e in p.events
            if e.metric == "clicked"
            and e.channel in channels
            and (campaigns is None or e.campaign_id in campaigns)
            and (link is None or (e.link_url or "").find(link) >= 0)
            and e.machine is not True
            and e.at >= as_of - newest
        ]
        if not times:
            return None
        last = max(times)
        if oldest is not None and last > as_of - oldest:
            return None
        return last

    result: dict[str, dict[str, datetime]] = defaultdict(dict)
    for pid, p in people.items():
        for version, hours in ((1, 7 * 24), (2, 3 * 24)):
            at = clicks(
                p, {"email", "sms"}, {"102", "103"}, "/cart", timedelta(hours=hours)
            )
            if at and not bought_since(p, at) and clean(pid, p):
                result[f"cart_recovery_clicked_no_purchase_v{version}"][pid] = at
        at = clicks(
            p, {"email", "sms", "push"}, {"104"}, "/products/", timedelta(hours=120),
            timedelta(hours=48),
        )  # fmt: skip
        if at and not bought_since(p, at) and clean(pid, p):
            result["replenishment_clicked_no_purchase_v1"][pid] = at
        window = as_of - timedelta(days=45)
        on_channels = [e for e in p.events if e.channel in ("email", "sms")]
        recent_deliveries = [
            e.at for e in on_channels if e.metric == "delivered" and e.at >= window
        ]
        human_engaged = any(
            e.metric in ("opened", "clicked")
            and e.machine is not True
            and e.at >= window
            for e in on_channels
        )
        if (
            on_channels
            and min(e.at for e in on_channels) <= window
            and recent_deliveries
            and not human_engaged
            and clean(pid, p, bounce=True)
        ):
            result["unengaged_45_days_v1"][pid] = max(recent_deliveries)
        recently_bought = (
            p.last_purchase_at and p.last_purchase_at >= as_of - timedelta(days=30)
        )
        if recently_bought and clean(pid, p, spam=False, unsub=False):
            result["recent_purchasers_v1"][pid] = p.last_purchase_at
        sends = [
            e.at
            for e in p.events
            if e.metric == "sent"
            and e.channel in ("email", "sms")
            and e.at >= as_of - timedelta(days=7)
        ]
        if len(sends) >= 6:
            result["fatigued_v1"][pid] = max(sends)
    cart_now = result["cart_recovery_clicked_no_purchase_v2"]
    for pid, p in people.items():
        for key, channel in (
            ("email_clickers_v1", "email"),
            ("sms_clickers_v1", "sms"),
        ):
            at = clicks(p, {channel}, None, None, timedelta(days=30))
            if at and pid not in cart_now and clean(pid, p, channels=(channel,)):
                result[key][pid] = at
    return result


def holdout_arm(audience_key: str, person_id: str, share: float) -> str:
    if share <= 0:
        return "treatment"
    threshold = f"{min(int(share * 65536), 65535):04x}"
    digest = hashlib.md5(f"{audience_key}:{person_id}".encode()).hexdigest()  # noqa: S324 (bucketing, not security)
    return "holdout" if digest[:4] < threshold else "treatment"
