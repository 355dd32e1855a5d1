"""What one sent group's results mean for its outbox rows: a pure function, no warehouse.

- a transient failure (5xx, network, rate-limit budget) stays `pending`: the next run
  resends it with the same id;
- a message Segment refused on its own (isolated by bisection) counts one attempt; at
  `max_attempts` it is dead-lettered with its payload;
- a message over Segment's 32 KB event limit is dead-lettered at once (no resend helps);
- every other message of the group was confirmed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scripts.segment_sync import payloads
from scripts.segment_sync.outbox import DeadLetter, MessageDetails

if TYPE_CHECKING:  # the client pulls in the Segment library, ~0.5 s of start-up
    from scripts.segment_sync.client import GroupResult


@dataclass
class GroupOutcome:
    failed: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids
    refused: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids
    dead: list[DeadLetter] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)  # failed, refused or dead

    @property
    def dead_ids(self) -> set[str]:
        return {letter.message_id for letter in self.dead}


def classify(
    rows: list[tuple],
    oversized: list[tuple[tuple, dict[str, Any]]],
    result: GroupResult,
    known: dict[str, MessageDetails],
    *,
    max_attempts: int,
    redact: Callable[[str], str],
) -> GroupOutcome:
    """`rows` were sent (outbox rows as payloads.outbox_columns_sql lists them, the
    message id second); `oversized` were held back with their built payloads; `known`
    has the outbox bookkeeping of every failed or oversized id."""
    failed: dict[str, list[str]] = defaultdict(list)
    refused: dict[str, list[str]] = defaultdict(list)
    for message_id, failure in result.failed.items():
        (refused if failure.row_level else failed)[failure.reason].append(message_id)
    dead: list[DeadLetter] = []
    for row, message in oversized:
        size = len(json.dumps(message).encode("utf-8"))
        reason = f"event is {size} bytes; Segment's limit is 32 KB"
        refused[reason].append(row[1])
        dead.append(DeadLetter(row[1], reason, message))
    # Payloads are rebuilt only for the rows refused on their own (dead letters).
    row_level = {mid for mid, f in result.failed.items() if f.row_level}
    builder = payloads.PayloadBuilder()
    payload_by_id = {
        row[1]: payloads.build_from_row(builder, row)
        for row in (rows if row_level else ())
        if row[1] in row_level
    }
    for reason, ids in refused.items():
        for message_id in ids:
            if message_id in payload_by_id and (
                known[message_id].attempts + 1 >= max_attempts
            ):
                dead.append(
                    DeadLetter(message_id, redact(reason), payload_by_id[message_id])
                )
    outcome = GroupOutcome(failed=dict(failed), refused=dict(refused), dead=dead)
    outcome.not_sent = sorted(set(result.failed) | outcome.dead_ids)
    return outcome
