"""How many opens each Customer.io open flag removed from engagement.

Which flags mean "machine" is the dbt variable machine_open_flags
(macros/engagement/machine_open.sql); this reads the result in fct_message_events, so the
table shows what the current setting does: opens carrying each flag, and how many of them
count as machine opens (excluded from every audience's engagement)."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.report.table import format_rows
from scripts.warehouse import Warehouse

# (label, condition on an open); "proxied only" isolates what proxied alone would remove.
FLAG_GROUPS = (
    ("prefetched", "is_prefetched"),
    ("proxied", "is_proxied"),
    ("proxied only", "is_proxied and not coalesce(is_prefetched, false)"),
    ("all opens", "true"),
)


@dataclass(frozen=True)
class FlagCount:
    flag: str
    opens: int
    machine: int


def machine_opens(warehouse: Warehouse) -> list[FlagCount]:
    schema = warehouse.target.schema
    if not warehouse.table_exists(schema, "fct_message_events"):
        return []
    sums = ", ".join(
        f"sum(case when {condition} then 1 else 0 end), "
        f"sum(case when ({condition}) and is_machine then 1 else 0 end)"
        for _, condition in FLAG_GROUPS
    )
    row = warehouse.query(
        f"select {sums} from {schema}.fct_message_events where metric = 'opened'"
    )[0]
    values = [int(v or 0) for v in row]
    return [
        FlagCount(label, values[2 * i], values[2 * i + 1])
        for i, (label, _) in enumerate(FLAG_GROUPS)
    ]


def format_machine_opens(rows: list[FlagCount]) -> str:
    header = ("open flag", "opens", "counted as machine")
    return format_rows(header, [(r.flag, str(r.opens), str(r.machine)) for r in rows])
