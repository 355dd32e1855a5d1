"""Who the brand's people are: identity, consent, devices, and how they tend to behave.

A person's traits are drawn once; their state (unsubscribed, bounced, last order ...)
changes as the simulation runs. Identity quirks are deliberate: email-only leads
(`id` null until they first order), a few legacy ids migrated mid-period (same `cio_id`,
new `id`), and addresses stored in mixed case for a while before being normalised.
"""

from __future__ import annotations

import random

from scripts.demo_data.clock import DAY, Period
from scripts.demo_data.ids import IdMaker, cio_id_for

FIRST_NAMES = (
    "Ana", "Bea", "Carla", "Dani", "Elif", "Fatima", "Grace", "Hana", "Ines", "Jade",
    "Kira", "Lena", "Maya", "Nora", "Olivia", "Priya", "Quinn", "Rosa", "Sofia", "Tara",
    "Uma", "Vera", "Wen", "Yara", "Zoe", "Adam", "Ben", "Chris", "Diego", "Ethan",
    "Felix", "Hugo", "Ivan", "Jon", "Kai", "Leo", "Marco", "Noah", "Omar", "Sam",
)  # fmt: skip
LAST_NAMES = (
    "Lopez", "Smith", "Nguyen", "Garcia", "Kim", "Muller", "Rossi", "Silva", "Khan",
    "Cohen", "Okafor", "Dubois", "Tanaka", "Novak", "Jensen", "Costa", "Patel", "Brown",
    "Wilson", "Moreau", "Fischer", "Santos", "Ali", "Haddad", "Ivanova", "Lee", "Walker",
    "Young", "Bauer", "Larsen",
)  # fmt: skip
# Reserved example domains (RFC 2606 / 6761) that still read as real mailbox providers.
DOMAINS = (
    ("gmail.example", 0.42),
    ("icloud.example", 0.17),
    ("outlook.example", 0.12),
    ("yahoo.example", 0.08),
    ("hotmail.example", 0.05),
    ("example.com", 0.11),  # work addresses: where link scanners click
    ("proton.example", 0.05),
)
# Apple Mail users get Mail Privacy Protection prefetches; most iCloud users, some others.
MPP_SHARE = {"icloud.example": 0.9, "gmail.example": 0.16}
MPP_SHARE_OTHER = 0.12

# Engagement tiers: share of people, human open prob, click-given-open, SMS click,
# organic orders per year, cart abandons per year.
TIERS = (
    (0.20, 0.42, 0.20, 0.15, 2.6, 3.0),
    (0.45, 0.14, 0.12, 0.07, 1.1, 1.8),
    (0.35, 0.02, 0.05, 0.02, 0.35, 0.6),
)


SIGNUP_SPAN = 3 * 365 * DAY


class Person:
    __slots__ = (
        "app_platform",
        "cart_rate",
        "cio_id",
        "click_prob",
        "customer_id",
        "device_id",
        "display_email",
        "email",
        "email_marketing",
        "email_suppressed",
        "gmail",
        "hard_bounce",
        "id_change_ts",
        "ident_json",
        "ident_key",
        "in_cio",
        "index",
        "last_engaged_ts",
        "last_order_ts",
        "legacy_id",
        "lowercase_from_ts",
        "mpp",
        "open_prob",
        "order_rate",
        "orders",
        "phone",
        "push_bounced",
        "scanner",
        "signup_ts",
        "sms_click_prob",
        "sms_opt_in",
        "sms_stopped",
        "unsubscribed",
    )

    def identity(self, ts: int) -> tuple[str | None, str]:
        """(`identifiers.id`, `identifiers.email`) as Customer.io reports them at `ts`."""
        pid = self.legacy_id if ts < self.id_change_ts else self.customer_id
        email = self.display_email if ts < self.lowercase_from_ts else self.email
        return pid, email


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in pairs:
        x -= weight
        if x < 0:
            return value
    return pairs[-1][0]


def make_person(
    index: int,
    rng: random.Random,
    period: Period,
    ids: IdMaker,
    salt: int,
    in_cio: bool,
) -> Person:
    """Draw person `index`; `in_cio=False` makes a shop-only buyer Customer.io never saw."""
    p = Person()
    p.index = index
    p.customer_id = f"cus_{index + 1:06d}"
    p.cio_id = cio_id_for(index, salt)
    p.in_cio = in_cio
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    style = rng.random()
    if style < 0.55:
        local = f"{first}.{last}{index + 1}"
    elif style < 0.75:
        local = f"{first}{last[0]}{index + 1}"
    elif style < 0.9:
        local = f"{first[0]}{last}{index + 1}"
    else:
        local = f"{first}_{last}{index + 1}"
    domain = _weighted(rng, DOMAINS)
    p.email = f"{local}@{domain}".lower()
    p.lowercase_from_ts = 0
    p.display_email = p.email
    if rng.random() < 0.1:
        # Typed with capitals at signup; a later profile update stored it lowercased.
        p.display_email = f"{local}@{domain.capitalize()}"
        p.lowercase_from_ts = period.start_ts + int(
            rng.random() * 1.6 * period.days * DAY
        )  # about a third are never normalised within the period
    p.gmail = domain == "gmail.example"
    p.mpp = rng.random() < MPP_SHARE.get(domain, MPP_SHARE_OTHER)
    p.scanner = domain == "example.com"
    p.hard_bounce = rng.random() < 0.012
    _, open_prob, click_prob, sms_click, order_rate, cart_rate = _tier(rng)
    p.open_prob = open_prob * (0.6 + 0.8 * rng.random())
    p.click_prob = click_prob
    p.sms_click_prob = sms_click
    p.order_rate = order_rate
    p.cart_rate = cart_rate
    p.phone = f"+1555{index % 10_000_000:07d}"
    p.legacy_id = p.customer_id
    p.id_change_ts = 0
    lead = in_cio and rng.random() < 0.08
    if lead:
        # An email-only lead from the newsletter pop-up: no id until an order makes one.
        p.legacy_id = None
        p.id_change_ts = 1 << 62
        p.email_marketing = True
        p.sms_opt_in = False
        p.app_platform = None
    else:
        if rng.random() < 0.006:
            p.legacy_id = f"shopify_{4_800_000 + index * 7}"
            p.id_change_ts = period.start_ts + int(rng.random() * period.days * DAY)
        p.email_marketing = rng.random() < 0.36
        p.sms_opt_in = rng.random() < 0.25
        p.app_platform = (
            ("ios" if rng.random() < 0.58 else "android")
            if rng.random() < 0.25
            else None
        )
    p.device_id = ids.token(16) if p.app_platform else ""
    # The list grew steadily over the three years before the period ends.
    p.signup_ts = period.end_ts - 1 - int(rng.random() * SIGNUP_SPAN)
    p.unsubscribed = False
    p.email_suppressed = False
    p.push_bounced = False
    p.sms_stopped = False
    p.last_engaged_ts = p.signup_ts
    if p.signup_ts < period.start_ts:
        # Long-time subscribers last engaged some time ago; the disengaged longer ago.
        window = (45 if open_prob >= 0.1 else 300) * DAY
        p.last_engaged_ts = max(
            p.signup_ts, period.start_ts - int(rng.random() * window)
        )
    p.last_order_ts = -1
    p.orders = 0
    p.ident_key = None
    p.ident_json = ""
    return p


def _tier(rng: random.Random) -> tuple[float, ...]:
    x = rng.random()
    for tier in TIERS:
        x -= tier[0]
        if x < 0:
            return tier
    return TIERS[-1]
