"""The sync's own tables, schema `segment_sync` (the only schema the sync writes).

- `audience_state`: what Segment has been told, one row per (audience_key, user_id) ever
  sent: `is_member` is the trait value Segment holds, `generation` counts entries so a
  re-entry gets new message ids. It advances only for transitions whose every message
  the client confirmed.
- `outbox`: the plan, one row per message, written before anything is sent. `status` is
  `pending` → `sent`, or `dead` after `max_attempts` row-level refusals. `seq` orders
  sending; a rerun resends `pending` rows with their stored ids.
- `dead_letters`: messages given up on, with the reason and the payload.
- `runs`: one row per real run (dry runs change nothing, so they log nothing), with the
  members not sent counted per reason (`count_skipped_*`).
- `lock`: at most one row; see lock.py.
- `installation`: one random id mixed into every messageId, because Segment dedupes
  globally across all workspaces (segment.md §1.5) and audience keys and user ids are not
  unique across the world.

State tables are created on first real run; `create ... if not exists` keeps this
idempotent. Column types are plain so the same DDL runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from scripts.warehouse import Warehouse

SCHEMA = "segment_sync"
AUDIENCE_STATE = f"{SCHEMA}.audience_state"
OUTBOX = f"{SCHEMA}.outbox"
DEAD_LETTERS = f"{SCHEMA}.dead_letters"
RUNS = f"{SCHEMA}.runs"
LOCK = f"{SCHEMA}.lock"
INSTALLATION = f"{SCHEMA}.installation"

STATE_COLUMNS = """
    audience_key varchar not null,
    user_id varchar not null,
    audience_name varchar,
    audience_version integer,
    is_member boolean not null,
    generation integer not null,
    entered_at timestamp,
    exited_at timestamp,
    exit_reason varchar,
    last_transition_id varchar,
    last_run_id varchar,
    updated_at timestamp not null,
    primary key (audience_key, user_id)
"""

OUTBOX_COLUMNS = """
    message_id varchar not null,
    seq bigint not null,
    transition_id varchar not null,
    run_id varchar not null,
    audience_key varchar not null,
    audience_name varchar,
    audience_version integer,
    person_id varchar,
    user_id varchar not null,
    transition varchar not null,
    generation integer not null,
    is_member boolean not null,
    exit_reason varchar,
    occurred_at timestamp not null,
    call_type varchar not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    created_at timestamp not null,
    sent_at timestamp,
    email varchar
"""


def now_utc() -> datetime:
    """UTC wall time without zone, the warehouse convention (warehouse-contracts.md)."""
    return datetime.now(UTC).replace(tzinfo=None)


def state_exists(wh: Warehouse) -> bool:
    return wh.table_exists(SCHEMA, "outbox") and wh.table_exists(
        SCHEMA, "audience_state"
    )


def ensure_state(wh: Warehouse) -> str:
    """Create the sync's tables if absent; return the installation id."""
    wh.ensure_schema(SCHEMA)
    ddl = [
        f"create table if not exists {INSTALLATION} ("
        "installation_id varchar primary key, created_at timestamp not null)",
        f"create table if not exists {AUDIENCE_STATE} ({STATE_COLUMNS})",
        # No primary key on the outbox: message ids are unique by construction (the
        # planner inserts only ids not already present), and DuckDB's index maintenance
        # on a multi-million-row outbox costs more than it protects.
        f"create table if not exists {OUTBOX} ({OUTBOX_COLUMNS})",
        f"""create table if not exists {DEAD_LETTERS} (
            message_id varchar primary key,
            transition_id varchar not null,
            run_id varchar not null,
            audience_key varchar not null,
            user_id varchar not null,
            call_type varchar not null,
            reason varchar not null,
            attempts integer not null,
            payload {wh.json_type},
            dead_lettered_at timestamp not null
        )""",
        f"""create table if not exists {RUNS} (
            run_id varchar primary key,
            target_name varchar not null,
            started_at timestamp not null,
            finished_at timestamp,
            status varchar not null,
            exit_code integer,
            is_forced boolean not null,
            is_full_resync boolean not null,
            audiences varchar,
            count_planned bigint not null default 0,
            count_sent bigint not null default 0,
            count_failed bigint not null default 0,
            count_dead_lettered bigint not null default 0,
            count_skipped_missing_user_id bigint not null default 0,
            count_skipped_missing_identifier bigint default 0,
            count_skipped_duplicate_identity bigint default 0,
            count_deferred bigint not null default 0,
            error varchar
        )""",
        f"""create table if not exists {LOCK} (
            lock_name varchar primary key,
            owner_token varchar not null,
            run_id varchar,
            pid integer not null,
            hostname varchar not null,
            acquired_at timestamp not null,
            heartbeat_at timestamp not null
        )""",
    ]
    for statement in ddl:
        wh.execute(statement)
    add_identity_columns(wh)
    if wh.dialect == "postgres":
        wh.execute(f"create index if not exists outbox_seq on {OUTBOX} (seq)")
        wh.execute(
            f"create index if not exists outbox_message on {OUTBOX} (message_id)"
        )
        wh.execute(
            f"create index if not exists outbox_transition on {OUTBOX} (transition_id)"
        )
        wh.execute(
            f"create index if not exists outbox_pending on {OUTBOX} (status, seq) "
            "where status <> 'sent'"
        )
    existing = wh.scalar(f"select installation_id from {INSTALLATION} limit 1")
    if existing:
        return str(existing)
    installation_id = uuid.uuid4().hex[:16]
    wh.execute(
        f"insert into {INSTALLATION} (installation_id, created_at) values (%s, %s)",
        (installation_id, now_utc()),
    )
    return installation_id


def add_identity_columns(wh: Warehouse) -> None:
    """Columns added for the identity policy, on state created before it: the outbox's
    email (sent as a trait) and the runs table's skip counts per reason."""
    for table, column, kind in (
        (OUTBOX, "email", "varchar"),
        (RUNS, "count_skipped_missing_identifier", "bigint default 0"),
        (RUNS, "count_skipped_duplicate_identity", "bigint default 0"),
    ):
        wh.execute(f"alter table {table} add column if not exists {column} {kind}")


def installation_id_or(wh: Warehouse, default: str) -> str:
    if not wh.table_exists(SCHEMA, "installation"):
        return default
    return str(
        wh.scalar(f"select installation_id from {INSTALLATION} limit 1") or default
    )


def in_list(wh: Warehouse, column: str) -> str:
    """SQL for `column` is one of a list passed as a single parameter (bulk, no executemany)."""
    if wh.dialect == "postgres":
        return f"{column} = any(%s)"
    return f"{column} in (select unnest(%s))"
