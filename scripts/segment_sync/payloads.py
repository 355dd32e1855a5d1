"""Segment payloads and message ids: the only place Segment's camelCase appears.

Naming follows Engage (docs/segment-engage-payloads.md), so mappings built for Engage
audiences keep working:

- enter: `identify(userId, traits={<audience_key>: true})` and
  `track("Audience Entered", {audience_key, <audience_key>: true, audience_name,
  audience_version})`
- exit: the trait `false` and `track("Audience Exited", {..., <audience_key>: false,
  exit_reason})`
- `context.personas = {computation_class: "audience", computation_key: <audience_key>,
  computation_id: "aud_" + md5(audience_key), space_id, namespace}`, which is how Actions
  destinations recognise audience membership. `computation_id` depends on the audience key
  only, so a new version of an audience keeps it (the destination list stays the same list,
  as when an Engage audience is edited); a new key is a new audience with a new id.
  `space_id` and `namespace` come from SEGMENT_SPACE_ID / SEGMENT_NAMESPACE (namespace
  defaults to the space id, as in Engage's payloads) and are left out when unset.
- identifiers on every call: `traits.email` on identify, `context.traits.email` on track
  (ad destinations match on it), and likewise `traits.phone` / `context.traits.phone`
  when the member of an SMS audience has a known phone (the models send it only then).
  A member without a user id is sent under an anonymousId
  derived from the email (models/syncs/segment/, ANONYMOUS_ID_PREFIX), never a userId.
- each audience chooses its calls (identify, track or both: `segment_calls`); plan.py
  writes only those to the outbox.
- resync (`--full-resync`): the identify only (the track for track-only audiences), with
  the current trait value.
docs/segment-engage-payloads.md has the documented Engage shape these follow.

Message ids: `ea-` + md5(installation | audience_key | transition | generation | nonce |
call | user_id), 35 characters (Segment allows 100). Deterministic, so a resend after a
crash carries the same id and Segment's dedupe drops the copy; `generation` counts entries
of the person into the audience, so a genuine re-entry months later gets a new id (Segment
would drop a reused one). `nonce` is empty except for resyncs, which use the run id to get
fresh ids. The installation id makes ids unique across every workspace using this tool,
since Segment dedupes globally. The ids are computed in SQL (bulk, in plan.py) by
`message_id_sql`; `message_id` is the same scheme in Python for tests and docs. A
transition's id is the message id of its first call (identify, or track for track-only
audiences).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import orjson

MAX_EVENT_BYTES = 32 << 10  # the library's and Segment's per-event limit
EVENT_ENTERED = "Audience Entered"
EVENT_EXITED = "Audience Exited"
CALLS = ("identify", "track")
# Written by macros/keys/segment_anonymous_id.sql: the sync key of an email-only member.
ANONYMOUS_ID_PREFIX = "anon-email-"
# What the library stamps into context.library (read from its metadata, not by importing
# it, which costs half a second of start-up in runs that send nothing).
LIBRARY = {"name": "analytics-python", "version": version("segment-analytics-python")}
# orjson writes compact JSON; the library sizes messages with json.dumps' ", " and ": "
# separators, so near the limit we re-measure its way (see `oversized`).
_EXACT_CHECK_FROM = 30_000
# Below this many characters of free text (names, ids, reasons) a message cannot reach
# 32 KB even if every character were escaped to 12 bytes; callers skip the check.
SHORT_ENOUGH = 2_500


def message_id(
    installation_id: str,
    audience_key: str,
    transition: str,
    generation: int,
    nonce: str,
    call_type: str,
    user_id: str,
) -> str:
    parts = (
        installation_id,
        audience_key,
        transition,
        str(generation),
        nonce,
        call_type,
    )
    text = "|".join((*parts, user_id))
    return "ea-" + hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _concat(*parts: str) -> str:
    return " || '|' || ".join(parts)


def message_id_sql(installation: str, plan: str, call: str, nonce: str) -> str:
    """SQL twin of `message_id`; arguments are SQL expressions."""
    key = _concat(
        installation,
        f"{plan}.audience_key",
        f"{plan}.transition",
        f"cast({plan}.generation as varchar)",
        nonce,
        call,
        f"{plan}.user_id",
    )
    return f"'ea-' || md5({key})"


def computation_id(audience_key: str) -> str:
    """Engage-style `aud_…` id, stable per audience key (every version keeps it)."""
    digest = hashlib.md5(audience_key.encode("utf-8"), usedforsecurity=False)
    return "aud_" + digest.hexdigest()


def is_anonymous(sync_key: str) -> bool:
    return sync_key.startswith(ANONYMOUS_ID_PREFIX)


class PayloadBuilder:
    """Builds messages exactly as `Client.identify/track` would enqueue them.

    The client module puts these dicts on the library's queue directly: the library's own
    `_enqueue` re-cleans and re-serialises every message, which halved throughput in our
    measurements, while these are built from plain str/int/bool values and sized here.
    tests/segment_sync/test_payloads.py checks equality with the library's own output.
    """

    def __init__(
        self, space_id: str | None = None, namespace: str | None = None
    ) -> None:
        # Workers build their own builder in another process: the environment is the one
        # place every builder can read the Engage space from.
        self.space_id = space_id or os.environ.get("SEGMENT_SPACE_ID") or None
        self.namespace = (
            namespace or os.environ.get("SEGMENT_NAMESPACE") or self.space_id or None
        )
        self._contexts: dict[str, dict[str, Any]] = {}
        self._times: dict[datetime, str] = {}

    def _context(self, audience_key: str) -> dict[str, Any]:
        context = self._contexts.get(audience_key)
        if context is None:
            personas: dict[str, Any] = {
                "computation_class": "audience",
                "computation_id": computation_id(audience_key),
                "computation_key": audience_key,
            }
            if self.namespace:
                personas["namespace"] = self.namespace
            if self.space_id:
                personas["space_id"] = self.space_id
            context = {"personas": personas, "library": LIBRARY}
            self._contexts[audience_key] = context
        return context

    def _track_context(
        self, audience_key: str, email: str | None, phone: str | None
    ) -> dict[str, Any]:
        context = self._context(audience_key)
        traits = _identifier_traits(email, phone)
        if not traits:
            return context
        return {**context, "traits": traits}

    def _timestamp(self, occurred_at: datetime | str) -> str:
        if isinstance(occurred_at, str):  # already formatted in SQL (timestamp_sql)
            return occurred_at
        text = self._times.get(occurred_at)
        if text is None:
            aware = (
                occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
            )
            text = aware.isoformat(timespec="milliseconds")
            if len(self._times) > 100_000:
                self._times.clear()
            self._times[occurred_at] = text
        return text

    def build(
        self,
        *,
        message_id: str,
        call_type: str,
        audience_key: str,
        audience_name: str | None,
        audience_version: int | None,
        user_id: str,
        # informational: the payload depends on is_member only
        transition: str | None = None,
        is_member: bool,
        exit_reason: str | None,
        occurred_at: datetime | str,
        email: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        """`user_id` is the sync key: a userId, or an anonymousId (ANONYMOUS_ID_PREFIX)."""
        anonymous_id: str | None = None
        if is_anonymous(user_id):
            anonymous_id, user_id = user_id, None  # type: ignore[assignment]
        if call_type == "identify":
            traits: dict[str, Any] = {
                audience_key: is_member,
                **_identifier_traits(email, phone),
            }
            return {
                "integrations": {},
                "anonymousId": anonymous_id,
                "timestamp": self._timestamp(occurred_at),
                "context": self._context(audience_key),
                "type": "identify",
                "userId": user_id,
                "traits": traits,
                "messageId": message_id,
            }
        properties: dict[str, Any] = {
            "audience_key": audience_key,
            audience_key: is_member,
            "audience_name": audience_name,
            "audience_version": audience_version,
        }
        if not is_member:
            properties["exit_reason"] = exit_reason
        return {
            "integrations": {},
            "anonymousId": anonymous_id,
            "properties": properties,
            "timestamp": self._timestamp(occurred_at),
            "context": self._track_context(audience_key, email, phone),
            "userId": user_id,
            "type": "track",
            "event": EVENT_ENTERED if is_member else EVENT_EXITED,
            "messageId": message_id,
        }


def _identifier_traits(email: str | None, phone: str | None) -> dict[str, str]:
    """The identifiers destinations match on, under Segment's reserved trait names
    (docs/segment-engage-payloads.md); an unknown one is left out, never sent empty."""
    traits = {}
    if email:
        traits["email"] = email
    if phone:
        traits["phone"] = phone
    return traits


def timestamp_sql(dialect: str, column: str) -> str:
    """SQL rendering a UTC timestamp the way the library does (milliseconds, +00:00);
    converting millions of timestamps to Python datetimes costs more than sending."""
    if dialect == "postgres":
        return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"')"""
    return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%g+00:00')"


_ASCII = bytes(range(128))


def oversized(message: dict[str, Any]) -> bool:
    """True when the library (and Segment) would refuse the message for its size.

    The library measures `json.dumps(message)`, which escapes every non-ASCII character
    (`\\u4e2d`: 6 bytes for a 2- or 3-byte UTF-8 sequence, 12 for a 4-byte one, so at
    most 3 times its UTF-8 bytes). The compact UTF-8 size orjson gives is only a bound
    after that: an email of 6,000 CJK characters is 18 KB there and 36 KB to the
    library, which then dropped the message without telling its queue, and the sync's
    flush waited for it for ever (the library's `Consumer.next`)."""
    data = orjson.dumps(message)
    escaped = 2 * len(data.translate(None, _ASCII))  # what escaping can add, at most
    if len(data) + escaped < _EXACT_CHECK_FROM:
        return False
    return len(json.dumps(message).encode("utf-8")) > MAX_EVENT_BYTES


def outbox_columns_sql(dialect: str) -> str:
    """The outbox columns a sender needs, in the order `build_from_row` reads them."""
    return (
        "seq, message_id, call_type, audience_key, audience_name, audience_version, "
        f"user_id, is_member, exit_reason, {timestamp_sql(dialect, 'occurred_at')}, email, "
        "phone"
    )


def build_from_row(builder: PayloadBuilder, row: tuple) -> dict[str, Any]:
    """One message from a row selected with `outbox_columns_sql`."""
    return builder.build(
        message_id=row[1],
        call_type=row[2],
        audience_key=row[3],
        audience_name=row[4],
        audience_version=row[5],
        user_id=row[6],
        is_member=row[7],
        exit_reason=row[8],
        occurred_at=row[9],
        email=row[10],
        phone=row[11],
    )


def may_be_oversized(row: tuple) -> bool:
    """Only long free-text values can approach 32 KB; rows failing this need the check."""
    variable = (
        len(row[4] or "")
        + len(row[6])
        + len(row[8] or "")
        + len(row[10] or "")
        + len(row[11] or "")
        + 3 * len(row[3])
    )
    return variable > SHORT_ENOUGH
