"""The brand's calendar, identical in every shard: newsletters, flash sales, restocks.

Drawn from an RNG seeded by the run's seed alone, so shard k and shard j send the same
broadcast with the same trigger id at the same time to their own people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scripts.demo_data.campaigns import (
    BACK_IN_STOCK_EMAIL,
    BACK_IN_STOCK_PUSH,
    FLASH_EMAIL,
    FLASH_PUSH,
    FLASH_SMS,
    Message,
    newsletter,
)
from scripts.demo_data.clock import HOUR, MINUTE, Period

NEWSLETTER_WEEKDAY = 3  # Thursday
NEWSLETTER_HOUR = 15  # 15:00 UTC: morning on the US west coast, afternoon in Europe


@dataclass(frozen=True)
class Broadcast:
    """One send to everyone eligible: `messages` go out `spread` seconds apart per person."""

    ts: int
    kind: str  # newsletter | flash_sale | back_in_stock
    messages: tuple[Message, ...]
    trigger_id: int | None = None
    week: int | None = None
    audience_share: float = 1.0  # back-in-stock goes to people who asked to be told


def build(period: Period, seed: int) -> list[Broadcast]:
    rng = random.Random(f"schedule:{seed}")
    out: list[Broadcast] = []
    week = 0
    for day in range(period.days):
        if period.weekday(day) == NEWSLETTER_WEEKDAY:
            ts = period.day_start(day) + NEWSLETTER_HOUR * HOUR
            out.append(Broadcast(ts, "newsletter", (newsletter(week),), week=week))
            week += 1
    trigger_id = 7000
    day = rng.randint(2, 9)
    while day < period.days:
        ts = period.day_start(day) + rng.choice((13, 16, 17)) * HOUR + 30 * MINUTE
        trigger_id += rng.randint(1, 40)  # the trigger API is shared with other tools
        out.append(
            Broadcast(
                ts,
                "flash_sale",
                (FLASH_EMAIL, FLASH_SMS, FLASH_PUSH),
                trigger_id=trigger_id,
            )
        )
        day += rng.randint(16, 24)
    day = rng.randint(10, 25)
    while day < period.days:
        ts = period.day_start(day) + 18 * HOUR
        trigger_id += rng.randint(1, 40)
        out.append(
            Broadcast(
                ts,
                "back_in_stock",
                (BACK_IN_STOCK_EMAIL, BACK_IN_STOCK_PUSH),
                trigger_id=trigger_id,
                audience_share=0.25,
            )
        )
        day += rng.randint(35, 50)
    out.sort(key=lambda b: b.ts)
    return out


def newsletter_weeks(
    period: Period, broadcasts: list[Broadcast]
) -> list[tuple[int, str]]:
    return [
        (b.week, period.day_names[period.day_of(b.ts)])
        for b in broadcasts
        if b.kind == "newsletter" and b.week is not None
    ]


def trigger_list(period: Period, broadcasts: list[Broadcast]) -> list[dict]:
    return [
        {
            "broadcast_id": b.messages[0].parent_id,
            "trigger_id": b.trigger_id,
            "sent_at": period.iso_plain(b.ts),
        }
        for b in broadcasts
        if b.trigger_id is not None
    ]
