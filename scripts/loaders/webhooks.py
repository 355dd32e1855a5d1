"""`audiences load webhooks`: Customer.io reporting-webhook events into
`raw_customerio.webhook_events`, one row per `event_id` (docs/customerio-webhooks.md).

The whole event is kept as `payload`, unknown object types, metrics and fields included:
Customer.io adds them without notice (§6.5). Decisions on doubtful input, each covered by
the bad-input catalogue in tests/loaders/test_bad_input.py:

- `event_id` must be a non-empty string; a number is rejected (`invalid_event_id`)
  rather than coerced, because the key must match what Customer.io re-sends byte for byte.
- `object_type` and `metric` must be strings; their values are not checked against the
  documented lists (§1.5) so new channels and metrics land.
- `timestamp` is Unix seconds (§1.2). An integer is taken as is; a float is floored
  (whole seconds is the documented grain, a fraction is re-serialisation noise); a string
  of digits is accepted (some relays stringify numbers); anything else, ISO strings
  included, is `invalid_timestamp`. Outside the window every loader shares
  (validity.py: before 2000-01-01 is `timestamp_out_of_range`, more than one day ahead
  of the load is `timestamp_in_future`, which also catches milliseconds sent as seconds).
- `data` must be an object; `data.identifiers` may be missing or partial: the event is
  still a fact (a deleted person has a blank `customer_id`, §6.4) and dbt decides.
"""

from __future__ import annotations

from scripts.loaders import validity
from scripts.loaders.bulk import TableSpec
from scripts.loaders.stage import Check, Column, payload_columns

# The values dbt's staging model (stg_customerio__webhook_events) reads from `data`, as
# text, copied into columns of their own as each event lands (bulk.with_payload_columns),
# where parsing every payload again in dbt cost a third of a full `dbt build` at a
# brand's size. Field names follow Customer.io's reporting-webhook
# schema (docs/customerio-webhooks.md); the payload itself is kept whole.
PAYLOAD_FIELDS = {
    "delivery_id": "$.data.delivery_id",
    "campaign_id": "$.data.campaign_id",
    "broadcast_id": "$.data.broadcast_id",
    "newsletter_id": "$.data.newsletter_id",
    "action_id": "$.data.action_id",
    "journey_id": "$.data.journey_id",
    "transactional_message_id": "$.data.transactional_message_id",
    "identifiers_id": "$.data.identifiers.id",
    "identifiers_cio_id": "$.data.identifiers.cio_id",
    "identifiers_email": "$.data.identifiers.email",
    "email_address": "$.data.email_address",
    "href": "$.data.href",
    "failure_message": "$.data.failure_message",
    "recipient": "$.data.recipient",
    "prefetched": "$.data.prefetched",
    "proxied": "$.data.proxied",
    "machine": "$.data.machine",
}

SPEC = TableSpec(
    loader="webhooks",
    schema="raw_customerio",
    table="webhook_events",
    key="event_id",
    columns=(
        Column("event_id", "varchar"),
        Column("object_type", "varchar"),
        Column("metric", "varchar"),
        Column("occurred_at", "timestamp"),
        *payload_columns(PAYLOAD_FIELDS),
    ),
)

PATHS = {
    "event_id": "$.event_id",
    "object_type": "$.object_type",
    "metric": "$.metric",
    "timestamp": "$.timestamp",
    "data": "$.data",
}

TYPE_ONLY = frozenset({"data"})

DERIVED = {
    "ts_seconds": """case t_timestamp
        when 'UBIGINT' then try_cast(v_timestamp as bigint)
        when 'BIGINT' then try_cast(v_timestamp as bigint)
        when 'DOUBLE' then try_cast(floor(try_cast(v_timestamp as double)) as bigint)
        when 'VARCHAR' then case when regexp_full_match(v_timestamp, '[0-9]{1,11}')
            then try_cast(v_timestamp as bigint) end
    end""",
}


def _missing(name: str) -> str:
    return f"(t_{name} is null or t_{name} = 'NULL')"


def _string_field(name: str) -> list[Check]:
    return [
        Check(_missing(name), f"missing_{name}", f"'{name} is missing or null'"),
        Check(
            f"t_{name} <> 'VARCHAR' or trim(v_{name}) = ''",
            f"invalid_{name}",
            f"'{name} must be a non-empty string, got ' || lower(t_{name}) || ' ' "
            f"|| coalesce(left(v_{name}, 100), '')",
        ),
    ]


def checks(future_limit: int) -> list[Check]:
    return [
        *_string_field("event_id"),
        *_string_field("object_type"),
        *_string_field("metric"),
        Check(
            _missing("timestamp"), "missing_timestamp", "'timestamp is missing or null'"
        ),
        Check(
            "ts_seconds is null",
            "invalid_timestamp",
            "'timestamp must be Unix seconds, got ' || lower(t_timestamp) || ' ' "
            "|| left(v_timestamp, 100)",
        ),
        Check(
            f"ts_seconds < {validity.EARLIEST_UNIX}",
            validity.OUT_OF_RANGE,
            "'timestamp ' || ts_seconds || ' is before 2000-01-01'",
        ),
        Check(
            f"ts_seconds > {future_limit}",
            validity.IN_FUTURE,
            "'timestamp ' || ts_seconds || ' is more than a day after the load "
            "(milliseconds instead of seconds?)'",
        ),
        Check(_missing("data"), "missing_data", "'data is missing or null'"),
        Check(
            "t_data <> 'OBJECT'",
            "invalid_data",
            "'data must be an object, got ' || lower(t_data)",
        ),
    ]


COLUMNS = {
    "event_id": "v_event_id",
    "object_type": "v_object_type",
    "metric": "v_metric",
    # Clamped so an absurd value on a rejected row cannot overflow the whole statement.
    "occurred_at": "make_timestamp(least(greatest(ts_seconds, 0), 253402300799) * 1000000)",
}
