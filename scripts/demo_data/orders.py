"""The shop's order export: monthly CSV change files, one row per order version.

A refund or cancellation is a later row with the same `order_id`, a new `status` and a
later `updated_at` (latest version wins downstream). Rows are written in `updated_at`
order into the file of that month, so a refund can sit in a later file than its order.
"""

from __future__ import annotations

import random
from pathlib import Path

from scripts.demo_data.campaigns import PRODUCTS, REPLENISHED_PRODUCT, Product
from scripts.demo_data.clock import Period

HEADER = (
    "order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at\n"
)
STATUSES = ("completed", "refunded", "cancelled")
FREE_SHIPPING_CENTS = 5000
SHIPPING_CENTS = 595
# Serum buyers are the replenishment flow's audience, so it is the bestseller.
_WEIGHTS = (0.34, 0.18, 0.16, 0.12, 0.12, 0.08)


def basket(rng: random.Random, replenishing: bool) -> tuple[int, bool]:
    """(total_cents, contains the replenished serum)."""
    items = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
    total = 0
    has_serum = replenishing
    if replenishing:
        total += REPLENISHED_PRODUCT.price_cents * (1 + (rng.random() < 0.2))
        items -= 1
    for _ in range(items):
        product = _pick(rng.random())
        total += product.price_cents
        has_serum = has_serum or product is REPLENISHED_PRODUCT
    if total < FREE_SHIPPING_CENTS:
        total += SHIPPING_CENTS
    return total, has_serum


def _pick(x: float) -> Product:
    for product, weight in zip(PRODUCTS, _WEIGHTS, strict=True):
        x -= weight
        if x < 0:
            return product
    return PRODUCTS[-1]


def currency_for(person_index: int) -> str:
    bucket = person_index % 25
    return "CAD" if bucket < 2 else "GBP" if bucket == 2 else "USD"


class OrderFiles:
    def __init__(self, root: Path, shard: int, period: Period) -> None:
        self.dir = root / "orders"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard = shard
        self.period = period
        self.month = ""
        self.handle = None
        self.files: list[dict] = []
        self.rows_by_status = dict.fromkeys(STATUSES, 0)
        self.orders = 0

    def write(
        self,
        updated_at: int,
        order_id: str,
        customer_id: str,
        email: str,
        status: str,
        total_cents: int,
        currency: str,
        ordered_at: int,
    ) -> None:
        period = self.period
        month = period.day_names[period.day_of(updated_at)][:7]
        if month != self.month:
            self._open(month)
        self.handle.write(
            f"{order_id},{customer_id},{email},{status},{total_cents},{currency},"
            f"{period.iso_plain(ordered_at)},{period.iso_plain(updated_at)}\n"
        )
        self.files[-1]["lines"] += 1
        self.files[-1]["rows"] += 1
        self.rows_by_status[status] += 1
        if status == "completed":
            self.orders += 1

    def _open(self, month: str) -> None:
        self.close()
        self.month = month
        name = f"{month}_s{self.shard:02d}.csv"
        self.handle = (self.dir / name).open("w", encoding="utf-8", newline="")
        self.handle.write(HEADER)
        self.files.append({"path": f"orders/{name}", "lines": 1, "rows": 0})

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
