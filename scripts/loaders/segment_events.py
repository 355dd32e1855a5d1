"""`audiences load segment-events`: Segment-format `track` events into
`raw_customerio_segment.tracks`, one row per `messageId` (docs/segment-http-api.md).

Input is what Customer.io's Segment (Message Metrics) integration sends
(docs/customerio-events.md) and what Segment's S3 / warehouse exports hold: one Segment
message per line or array element. Decisions:

- only `type: track` is loaded; identify/page/… are rejected `not_a_track` (they belong
  to other tables, and silently skipping them would hide a wrong input folder);
- `messageId` (or the exports' `message_id`) must be a non-empty string;
- `event` must be a non-empty string; names are not checked, so new metrics land;
- identity is `userId` or `anonymousId` (Customer.io sends the email as `anonymousId`
  for people without an id); a record with neither is `missing_identity`;
- `occurred_at` is `timestamp` (Segment's corrected time, recommended for analysis),
  falling back to `originalTimestamp`, then `sentAt`, when absent or empty; an ISO-8601 string
  without a zone is taken as UTC; unparsable is `invalid_timestamp`; DuckDB's special
  values (`infinity`, `-infinity`) and a UTC offset beyond ±23:59 are
  `invalid_timestamp` too, and outside the window
  every loader shares (validity.py: before 2000-01-01, which catches `epoch`, year 0001
  and 1969, or more than a day ahead of the load) is `timestamp_out_of_range` /
  `timestamp_in_future`.
"""

from __future__ import annotations

from scripts.loaders import validity
from scripts.loaders.bulk import TableSpec
from scripts.loaders.stage import Check, Column, payload_columns, sql_literal

# The values dbt's staging model (stg_customerio_segment__tracks) reads from the message,
# as text, copied into columns of their own as each event lands (see webhooks.py for
# why). Property names are those of Customer.io's Segment (Message Metrics) integration
# (docs/customerio-events.md); the payload itself is kept whole.
PAYLOAD_FIELDS = {
    "delivery_id": "$.properties.delivery_id",
    "campaign_id": "$.properties.campaign_id",
    "broadcast_id": "$.properties.broadcast_id",
    "newsletter_id": "$.properties.newsletter_id",
    "action_id": "$.properties.action_id",
    "journey_id": "$.properties.journey_id",
    "transactional_message_id": "$.properties.transactional_message_id",
    "href": "$.properties.href",
    "link_url": "$.properties.link_url",
    "failure_message": "$.properties.failure_message",
    "recipient": "$.properties.recipient",
    "traits_email": "$.context.traits.email",
    "prefetched": "$.properties.prefetched",
    "proxied": "$.properties.proxied",
    "machine": "$.properties.machine",
}

SPEC = TableSpec(
    loader="segment-events",
    schema="raw_customerio_segment",
    table="tracks",
    key="message_id",
    columns=(
        Column("message_id", "varchar"),
        Column("event", "varchar"),
        Column("user_id", "varchar"),
        Column("anonymous_id", "varchar"),
        Column("occurred_at", "timestamp"),
        *payload_columns(PAYLOAD_FIELDS),
    ),
)

PATHS = {
    "type": "$.type",
    "message_id": "$.messageId",
    "message_id_snake": "$.message_id",
    "event": "$.event",
    "user_id": "$.userId",
    "user_id_snake": "$.user_id",
    "anonymous_id": "$.anonymousId",
    "anonymous_id_snake": "$.anonymous_id",
    "timestamp": "$.timestamp",
    "original_timestamp": "$.originalTimestamp",
    "original_timestamp_snake": "$.original_timestamp",
    "sent_at": "$.sentAt",
    "sent_at_snake": "$.sent_at",
}


def _identity(camel: str, snake: str) -> str:
    # Numbers are accepted as ids (some libraries send them); blank strings are not ids.
    return (
        f"coalesce(case when t_{camel} in ('VARCHAR', 'UBIGINT', 'BIGINT') "
        f"and trim(v_{camel}) <> '' then v_{camel} end, "
        f"case when t_{snake} in ('VARCHAR', 'UBIGINT', 'BIGINT') "
        f"and trim(v_{snake}) <> '' then v_{snake} end)"
    )


def _unusable(field: str, name: str) -> str:
    """Why an identity field that is present is not an id (SQL NULL when it is absent
    or usable): a record rejected for its identity says what it held."""
    return (
        f"case when t_{name} = 'VARCHAR' and trim(v_{name}) = '' then '{field} is blank' "
        f"when t_{name} not in ('VARCHAR', 'UBIGINT', 'BIGINT', 'NULL') then "
        f"'{field} is a ' || lower(t_{name}) || ' (' || left(v_{name}, 40) || '), not a "
        "string or a whole number within 64 bits' end"
    )


# A 23-digit numeric userId (JSON reads it as a double, which cannot hold it exactly)
# or a blank one said "neither is set": the detail names what was there.
_WHY_NOT = ", ".join(
    _unusable(field, name)
    for field, name in (
        ("userId", "user_id"),
        ("user_id", "user_id_snake"),
        ("anonymousId", "anonymous_id"),
        ("anonymous_id", "anonymous_id_snake"),
    )
)
_MISSING_IDENTITY_DETAIL = (
    f"coalesce('no usable userId or anonymousId: ' || nullif(concat_ws('; ', "
    f"{_WHY_NOT}), ''), 'neither userId nor anonymousId is set')"
)


# messageId, else the exports' message_id: the type and the value from the same field. A
# JSON null counts as absent ('NULL' type, no value), as when the field is left out.
_CAMEL_MESSAGE_ID = "coalesce(t_message_id, 'NULL') <> 'NULL'"

# An offset after the time (":MM" or ":SS[.fff]", so a date's "-31" is none) of 24
# hours or more, or with 60 or more minutes or seconds (DuckDB also reads +HH:MM:SS).
_OFFSET_OUT_OF_RANGE = (
    r":[0-9]{2}(\.[0-9]+)? ?[+-]"  # the end of the time, then the sign
    r"((2[4-9]|[3-9][0-9])(:?[0-9]{2}){0,2}"
    r"|[0-9]{2}:?[6-9][0-9](:?[0-9]{2})?|[0-9]{2}:?[0-9]{2}:?[6-9][0-9])$"
)

# The event's time: the first of these that is set. An empty string is not set (the
# orders loader reads Segment's events the same way): `"timestamp": ""` with an
# originalTimestamp was an invalid_timestamp reject.
_TIME_VALUES = (
    "v_timestamp",
    "v_original_timestamp",
    "v_original_timestamp_snake",
    "v_sent_at",
    "v_sent_at_snake",
)
_FIRST_TIME = "coalesce(" + ", ".join(f"nullif({v}, '')" for v in _TIME_VALUES) + ")"

DERIVED = {
    "message_type": f"case when {_CAMEL_MESSAGE_ID} then t_message_id "
    "else t_message_id_snake end",
    "message_value": f"case when {_CAMEL_MESSAGE_ID} then v_message_id "
    "else v_message_id_snake end",
    "uid": _identity("user_id", "user_id_snake"),
    "aid": _identity("anonymous_id", "anonymous_id_snake"),
    "ts_text": _FIRST_TIME,
    "ts_value": f"try_cast({_FIRST_TIME} as timestamptz)",
}


# Timestamps without a zone are read as UTC: the staging connection runs in UTC.
_EARLIEST = sql_literal(validity.EARLIEST.isoformat(sep=" "))


def checks(future_limit: str) -> list[Check]:
    return [
        Check(
            "v_type is null or v_type <> 'track'",
            "not_a_track",
            "'only track messages are loaded, got type ' || coalesce(v_type, 'none')",
        ),
        Check(
            "message_type is null or message_type = 'NULL'",
            "missing_message_id",
            "'messageId is missing or null'",
        ),
        Check(
            "message_type <> 'VARCHAR' or trim(message_value) = ''",
            "invalid_message_id",
            "'messageId must be a non-empty string, got ' || lower(message_type)",
        ),
        Check(
            "t_event is null or t_event = 'NULL'",
            "missing_event",
            "'event is missing or null'",
        ),
        Check(
            "t_event <> 'VARCHAR' or trim(v_event) = ''",
            "invalid_event",
            "'event must be a non-empty string, got ' || lower(t_event)",
        ),
        Check(
            "uid is null and aid is null",
            "missing_identity",
            _MISSING_IDENTITY_DETAIL,
        ),
        Check(
            "ts_text is null",
            "missing_timestamp",
            "'none of timestamp, originalTimestamp, sentAt is set'",
        ),
        Check(
            "ts_value is null",
            "invalid_timestamp",
            "'timestamp is not ISO-8601: ' || left(ts_text, 100)",
        ),
        Check(
            # DuckDB's cast takes any two-digit offset (+99:00 moved the event four days
            # back); ISO 8601 and the orders loader's parser stop at ±23:59.
            f"regexp_matches(trim(ts_text), {sql_literal(_OFFSET_OUT_OF_RANGE)})",
            "invalid_timestamp",
            "'timestamp has a UTC offset beyond ±23:59: ' || left(ts_text, 100)",
        ),
        Check(
            "not isfinite(ts_value)",
            "invalid_timestamp",
            "'timestamp is not a point in time: ' || left(ts_text, 100)",
        ),
        Check(
            f"ts_value < {_EARLIEST}::timestamptz",
            validity.OUT_OF_RANGE,
            "'timestamp ' || left(ts_text, 100) || ' is before 2000-01-01'",
        ),
        Check(
            f"ts_value > {future_limit}::timestamptz",
            validity.IN_FUTURE,
            "'timestamp ' || ts_text || ' is more than a day after the load'",
        ),
    ]


COLUMNS = {
    "message_id": "message_value",
    "event": "v_event",
    "user_id": "uid",
    "anonymous_id": "aid",
    "occurred_at": "cast(ts_value as timestamp)",
}
