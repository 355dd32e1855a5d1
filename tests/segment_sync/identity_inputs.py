"""Sync inputs with the identity columns (anonymous_id, email, phone, segment_calls) and the skips
model, written directly like tests/segment_sync/inputs.py does for the base contract."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from scripts.warehouse import Warehouse
from tests.segment_sync.inputs import SCHEMA, utc_now


def anonymous_id(email: str) -> str:
    """What macros/keys/segment_anonymous_id.sql computes."""
    digest = hashlib.md5(email.strip().lower().encode(), usedforsecurity=False)
    return "anon-email-" + digest.hexdigest()


@dataclass(frozen=True)
class Member:
    audience_key: str
    user_id: str | None
    email: str | None
    segment_calls: str = "both"
    phone: str | None = None  # the models set it for SMS audiences only

    @property
    def anonymous_id(self) -> str | None:
        if self.user_id is None and self.email is not None:
            return anonymous_id(self.email)
        return None


def _recreate(wh: Warehouse) -> None:
    wh.ensure_schema(SCHEMA)
    for table, columns in (
        (
            "sync_segment__audience_memberships",
            "audience_key varchar, audience_name varchar, audience_version integer, "
            "person_id varchar, user_id varchar, anonymous_id varchar, email varchar, "
            "phone varchar, segment_calls varchar, signal_at timestamp, entered_at timestamp",
        ),
        (
            "sync_segment__audience_exits",
            "audience_key varchar, user_id varchar, anonymous_id varchar, "
            "person_id varchar, email varchar, phone varchar, exit_reason varchar, "
            "exited_at timestamp",
        ),
        (
            "sync_segment__audience_skips",
            "audience_key varchar, audience_version integer, person_id varchar, "
            "skip_reason varchar",
        ),
    ):
        wh.execute(f"drop table if exists {SCHEMA}.{table}")
        wh.execute(f"create table {SCHEMA}.{table} ({columns})")


def write(
    wh: Warehouse,
    members: list[Member],
    exits: list[tuple[Member, str]] = (),  # type: ignore[assignment]
    skips: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> None:
    """Replace all three inputs: members, (member, exit_reason) and (audience, reason)."""
    _recreate(wh)
    now = utc_now()
    wh.executemany(
        f"insert into {SCHEMA}.sync_segment__audience_memberships values "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (
                m.audience_key, m.audience_key.title(), 1,
                f"p-{m.user_id or m.email}", m.user_id, m.anonymous_id, m.email,
                m.phone, m.segment_calls, now, now - timedelta(hours=1),
            )
            for m in members
        ],
    )  # fmt: skip
    if exits:
        wh.executemany(
            f"insert into {SCHEMA}.sync_segment__audience_exits values "
            "(%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    m.audience_key, m.user_id, m.anonymous_id, f"p-{m.email}",
                    m.email, m.phone, reason, now,
                )
                for m, reason in exits
            ],
        )  # fmt: skip
    if skips:
        wh.executemany(
            f"insert into {SCHEMA}.sync_segment__audience_skips values (%s, %s, %s, %s)",
            [(key, 1, f"p-skip-{i}", reason) for i, (key, reason) in enumerate(skips)],
        )
