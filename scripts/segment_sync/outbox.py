"""The sync's own tables, schema `segment_sync`: the only module that reads or writes them.

Every other module goes through the named operations below (stage, decide, enqueue, next
page, mark sent, dead-letter, requeue, prune, apply state, runs, lock rows), so the
tables' shape and their crash-safety rules live in one place.

Tables:
- `audience_state`: what Segment has been told, one row per (audience_key, user_id) ever
  sent: `is_member` is the trait value Segment holds, `generation` counts entries so a
  re-entry gets new message ids. It advances only for transitions whose every message
  the client confirmed.
- `decided`: the membership the last accepted plan decided on, per audience (v2). It
  runs ahead of `audience_state` while messages wait in the outbox (a `--limit` run, a
  SIGTERM, failed sends), and guardrails judge a new build against it, so a run that
  only finishes what an earlier run decided is never refused as a large change.
- `outbox`: the plan, one row per message, written before anything is sent. `status` is
  `pending` → `sent`, or `dead` after `max_attempts` row-level refusals. `seq` orders
  sending; a rerun resends `pending` rows with their stored ids. `email` (v3) is the
  member's email and `phone` (v4) their phone (SMS audiences only), sent as traits.
- `dead_letters`: messages given up on, with the reason and the payload.
- `runs`: one row per real run (dry runs change nothing, so they log nothing), with the
  members not sent counted per reason (`count_skipped_*`; two of them since v3). A row a
  killed run left `running` is marked `abandoned` by the next run that takes the lock.
- `lock`: at most one row; lock.py decides when a row is stale.
- `installation`: one random id mixed into every messageId, because Segment dedupes
  globally across all workspaces (docs/segment-http-api.md) and audience keys and user ids are
  not unique across the world.
- `schema_version`: one row per migration applied. These tables live for years in
  users' warehouses: `ensure()` upgrades older ones in place (MIGRATIONS), so a change
  to them never needs a manual `ALTER`. Tables without this one are version 1.

To change a table (say, a new count on `runs`): append a migration function to
MIGRATIONS that alters the existing table (`alter table ... add column ...` runs on both
engines), bump SCHEMA_VERSION, extend the operation that writes it (e.g. `RunOutcome` and
`finish_run`), and add a case to tests/segment_sync/test_resume.py's upgrade test.

Column types are plain so the same DDL runs on DuckDB and PostgreSQL. The planner reads
the state through session temp views (`stage`), so a dry run writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scripts.segment_sync import payloads
from scripts.warehouse import Warehouse

if TYPE_CHECKING:
    from scripts.segment_sync.outcomes import GroupOutcome

SCHEMA = "segment_sync"
AUDIENCE_STATE = f"{SCHEMA}.audience_state"
DECIDED = f"{SCHEMA}.decided"
OUTBOX = f"{SCHEMA}.outbox"
DEAD_LETTERS = f"{SCHEMA}.dead_letters"
RUNS = f"{SCHEMA}.runs"
LOCK = f"{SCHEMA}.lock"
INSTALLATION = f"{SCHEMA}.installation"
SCHEMA_VERSION_TABLE = f"{SCHEMA}.schema_version"
SCHEMA_VERSION = 5
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x5E6_5711C
LOCK_NAME = "segment_sync"

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

# The v1 columns: MIGRATIONS add later ones (v3: email, v4: phone), so every path ends
# the same.
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
    sent_at timestamp
"""

# No primary key: rows are inserted only after an anti-join, and DuckDB's index upkeep
# on millions of rows costs more than it protects (PostgreSQL gets a plain index).
DECIDED_COLUMNS = """
    audience_key varchar not null,
    user_id varchar not null
"""


def now_utc() -> datetime:
    """UTC wall time without zone, the warehouse convention (warehouse-contracts.md)."""
    return datetime.now(UTC).replace(tzinfo=None)


def audience_predicate(column: str, audiences: Sequence[str]) -> tuple[str, list[str]]:
    """A WHERE predicate (and its parameters) limiting `column` to `audiences`; all
    audiences when the list is empty. Always a complete predicate, so callers combine it
    with `where ... and {predicate}` and never rewrite SQL text."""
    if not audiences:
        return "true", []
    marks = ", ".join(["%s"] * len(audiences))
    return f"{column} in ({marks})", list(audiences)


def _in_list(wh: Warehouse, column: str) -> str:
    """SQL for `column` is one of a list passed as a single parameter (bulk, no executemany)."""
    if wh.dialect == "postgres":
        return f"{column} = any(%s)"
    return f"{column} in (select unnest(%s))"


# ---------------------------------------------------------------------- schema
def _v1_tables(wh: Warehouse) -> list[str]:
    return [
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


def _create_v1(wh: Warehouse) -> None:
    for statement in _v1_tables(wh):
        wh.execute(statement)
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


def _decided_from_history_sql() -> str:
    """What earlier plans decided, rebuilt from the v1 tables: the trait value Segment
    holds, overridden by the latest unsent (pending or dead) transition of the pair."""
    return f"""
        with unsent as (
            select
                audience_key, user_id, is_member,
                row_number() over (
                    partition by audience_key, user_id order by seq desc
                ) as unsent_rank
            from {OUTBOX}
            where status <> 'sent' and transition <> 'resync'
        )
        select audience_key, user_id
        from {AUDIENCE_STATE} as settled
        where settled.is_member
            and not exists (
                select 1 from unsent
                where unsent.audience_key = settled.audience_key
                    and unsent.user_id = settled.user_id
            )
        union all
        select audience_key, user_id
        from unsent
        where unsent_rank = 1 and is_member
    """


def _migrate_to_v2(wh: Warehouse) -> None:
    wh.execute(f"create table if not exists {DECIDED} ({DECIDED_COLUMNS})")
    if wh.dialect == "postgres":
        wh.execute(
            f"create index if not exists decided_pair on {DECIDED} (audience_key, user_id)"
        )
    wh.execute(f"delete from {DECIDED}")
    wh.execute(
        f"insert into {DECIDED} (audience_key, user_id) {_decided_from_history_sql()}"
    )


def _migrate_to_v3(wh: Warehouse) -> None:
    """The identity policy: the outbox keeps the member's email (sent as a trait), and
    runs count members not sent per reason. Existing rows get no email (they were
    planned without one) and zero counts."""
    wh.execute(f"alter table {OUTBOX} add column email varchar")
    for column in (
        "count_skipped_missing_identifier",
        "count_skipped_duplicate_identity",
    ):
        # No NOT NULL: DuckDB cannot add a column with a constraint; the default fills
        # existing rows on both engines.
        wh.execute(f"alter table {RUNS} add column {column} bigint default 0")


def _migrate_to_v4(wh: Warehouse) -> None:
    """SMS audiences: the outbox keeps the member's phone (sent as a trait, like the
    email). Existing rows get none (they were planned without one)."""
    wh.execute(f"alter table {OUTBOX} add column phone varchar")


def _migrate_to_v5(wh: Warehouse) -> None:
    """Each run records the as_of its accepted plan was built for (guards: a replay of
    an earlier moment is refused). Earlier runs have none."""
    wh.execute(f"alter table {RUNS} add column built_as_of timestamp")


# Version n is reached by running MIGRATIONS[n] on a warehouse at version n - 1. Append a
# function (and bump SCHEMA_VERSION) for every change to the tables; never edit one.
MIGRATIONS: dict[int, Callable[[Warehouse], None]] = {
    2: _migrate_to_v2,
    3: _migrate_to_v3,
    4: _migrate_to_v4,
    5: _migrate_to_v5,
}


def exists(wh: Warehouse) -> bool:
    return wh.table_exists(SCHEMA, "outbox") and wh.table_exists(
        SCHEMA, "audience_state"
    )


def schema_version(wh: Warehouse) -> int:
    """0: no tables yet; 1: tables from before versioning; else the recorded version."""
    if not exists(wh):
        return 0
    if not wh.table_exists(SCHEMA, "schema_version"):
        return 1
    return int(wh.scalar(f"select max(version) from {SCHEMA_VERSION_TABLE}") or 1)


# The tables a versioned schema holds (schema_version itself aside).
_VERSIONED_TABLES = (
    "installation", "audience_state", "outbox", "dead_letters", "runs", "lock", "decided",
)  # fmt: skip


def _refuse_a_damaged_schema(wh: Warehouse) -> None:
    """A versioned schema with a table gone (dropped by hand) read as "no tables yet",
    and the migrations then failed on the tables still there with DuckDB's words
    ("Column with name ... already exists!")."""
    present = {
        str(row[0])
        for row in wh.query(
            "select table_name from information_schema.tables where table_schema = %s",
            (SCHEMA,),
        )
    }  # one query: this runs before every real sync
    if "schema_version" not in present:
        return
    missing = [name for name in _VERSIONED_TABLES if name not in present]
    if missing:
        raise RuntimeError(
            f"{SCHEMA} is missing {', '.join(missing)}, which its schema_version says "
            "it has: restore the schema from a backup; or, to start over, drop schema "
            f"{SCHEMA} (every member is then sent again, under new message ids)"
        )


def ensure(wh: Warehouse) -> str:
    """Create the sync's tables, or upgrade older ones in place; return the installation
    id. Each migration commits together with its version row, so a crash mid-way leaves
    the previous version intact and the next run repeats the step."""
    wh.ensure_schema(SCHEMA)
    _refuse_a_damaged_schema(wh)
    found = schema_version(wh)
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"{SCHEMA} tables are at schema version {found}, newer than this code "
            f"({SCHEMA_VERSION}); upgrade the project before syncing"
        )
    if found < SCHEMA_VERSION:
        with wh.transaction():
            if wh.dialect == "postgres":
                # Two syncs starting together on PostgreSQL: the second waits here for
                # the first's migration, then finds nothing left to do. (DuckDB lets
                # one process in at a time.)
                wh.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                found = schema_version(wh)
                if found >= SCHEMA_VERSION:
                    return _installation_id(wh)
            _create_v1(wh)
            wh.execute(
                f"create table if not exists {SCHEMA_VERSION_TABLE} ("
                "version integer primary key, migrated_at timestamp not null)"
            )
            for version in range(max(found, 1) + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](wh)
            wh.execute(
                f"insert into {SCHEMA_VERSION_TABLE} (version, migrated_at) "
                "values (%s, %s)",
                (SCHEMA_VERSION, now_utc()),
            )
            # Under the same lock: two first runs must not draw two installation ids.
            return _installation_id(wh)
    return _installation_id(wh)


def _installation_id(wh: Warehouse) -> str:
    existing = wh.scalar(
        f"select installation_id from {INSTALLATION} "
        "order by created_at, installation_id limit 1"
    )
    if existing:
        return str(existing)
    installation_id = uuid.uuid4().hex[:16]
    wh.execute(
        f"insert into {INSTALLATION} (installation_id, created_at) values (%s, %s)",
        (installation_id, now_utc()),
    )
    return installation_id


# ---------------------------------------------------------------------- planning
def stage(wh: Warehouse) -> None:
    """Session temp views the planner reads: `sync_state` (what Segment holds),
    `sync_unsent` (pairs with a pending or dead message) and `sync_decided` (what earlier
    plans decided). Before the first real run they are empty; on tables an older version
    left (a dry run does not migrate) `sync_decided` is rebuilt from their history."""
    version = schema_version(wh)
    for name in ("sync_state", "sync_unsent", "sync_decided"):
        wh.execute(f"drop view if exists {name}")
    if version == 0:
        wh.execute("drop table if exists sync_empty_state")
        wh.execute("drop table if exists sync_empty_outbox")
        wh.execute(f"create temp table sync_empty_state ({STATE_COLUMNS})")
        wh.execute(f"create temp table sync_empty_outbox ({OUTBOX_COLUMNS})")
        state_table, outbox_table = "sync_empty_state", "sync_empty_outbox"
        decided = "select audience_key, user_id from sync_empty_state where false"
    else:
        state_table, outbox_table = AUDIENCE_STATE, OUTBOX
        decided = (
            f"select audience_key, user_id from {DECIDED}"
            if version >= 2
            else _decided_from_history_sql()
        )
    wh.execute(
        f"""create temp view sync_state as
        select
            audience_key, user_id, audience_name, audience_version, is_member,
            generation, exit_reason
        from {state_table}"""
    )
    wh.execute(
        f"""create temp view sync_unsent as
        select distinct audience_key, user_id from {outbox_table} where status <> 'sent'"""
    )
    wh.execute(f"create temp view sync_decided as {decided}")


def decide(wh: Warehouse) -> None:
    """Record the accepted plan's membership: apply `sync_decision_delta` (rows of
    audience_key, user_id, change = 'enter' | 'exit', from plan.py) to `decided`."""
    wh.execute(
        f"""delete from {DECIDED}
        where exists (
            select 1 from sync_decision_delta as delta
            where delta.change = 'exit'
                and delta.audience_key = {DECIDED}.audience_key
                and delta.user_id = {DECIDED}.user_id
        )"""
    )
    wh.execute(
        f"insert into {DECIDED} (audience_key, user_id) "
        "select audience_key, user_id from sync_decision_delta where change = 'enter'"
    )


def _literal(value: str) -> str:
    """Quote an id we generated ourselves (hex) as a SQL literal."""
    if not value or not all(c.isalnum() or c in "_-" for c in value):
        raise ValueError(f"unexpected characters in {value!r}")
    return f"'{value}'"


def enqueue(
    wh: Warehouse,
    *,
    installation_id: str,
    run_id: str,
    created_at: datetime,
    limit: int | None,
) -> int:
    """Copy the chosen transitions of `sync_plan` into the outbox as messages; return
    how many messages were added.

    Each transition gets the calls its audience chose (`segment_calls`); a resync is one
    call: the identify, or the track for track-only audiences."""
    base_seq = int(wh.scalar(f"select coalesce(max(seq), 0) from {OUTBOX}") or 0)
    installation = _literal(installation_id)
    nonce = (
        f"case when ranked.transition = 'resync' then {_literal(run_id)} else '' end"
    )
    # Sorting 1M+ rows costs seconds; only a --limit needs a stable choice of transitions.
    order = (
        "order by sync_plan.audience_key, sync_plan.transition, sync_plan.user_id"
        if limit is not None
        else ""
    )
    limit_clause = "" if limit is None else f"where ranked.plan_rank <= {int(limit)}"
    identify_id = payloads.message_id_sql(installation, "ranked", "'identify'", nonce)
    track_id = payloads.message_id_sql(installation, "ranked", "'track'", nonce)
    before = int(wh.scalar(f"select count(*) from {OUTBOX}") or 0)
    # A transition's messages get adjacent seq numbers (2r - 1, 2r), so the recorder can
    # find every message of a transition next to the group it just sent. Its
    # transition_id is the message id of its first call (the identify, unless the
    # audience sends tracks only): apply_state reads the transition from that row.
    wh.execute(
        f"""
        insert into {OUTBOX} (
            message_id, seq, transition_id, run_id, audience_key, audience_name,
            audience_version, person_id, user_id, transition, generation, is_member,
            exit_reason, occurred_at, call_type, status, attempts, last_error,
            created_at, sent_at, email, phone
        )
        with ranked as (
            select
                sync_plan.*,
                row_number() over ({order}) as plan_rank
            from sync_plan
            where not sync_plan.is_blocked
        ),
        ided as (
            select
                ranked.*,
                {identify_id} as identify_id,
                {track_id} as track_id
            from ranked {limit_clause}
        ),
        chosen as (
            select
                ided.*,
                case
                    when ided.segment_calls = 'track' then ided.track_id
                    else ided.identify_id
                end as transition_message_id
            from ided
        ),
        calls as (
            select 1 as call_order, 'identify' as call_type
            union all
            select 2 as call_order, 'track' as call_type
        ),
        messages as (
            select chosen.*, calls.call_order, calls.call_type
            from chosen
            cross join calls
            where
                (
                    chosen.segment_calls = 'both'
                    or chosen.segment_calls = calls.call_type
                )
                and (
                    chosen.transition <> 'resync'
                    or calls.call_type = case
                        when chosen.segment_calls = 'track' then 'track'
                        else 'identify'
                    end
                )
        )
        select
            case
                when messages.call_type = 'identify' then messages.identify_id
                else messages.track_id
            end,
            {base_seq} + 2 * messages.plan_rank - 2 + messages.call_order,
            messages.transition_message_id,
            {_literal(run_id)},
            messages.audience_key, messages.audience_name, messages.audience_version,
            messages.person_id, messages.user_id, messages.transition,
            messages.generation, messages.is_member, messages.exit_reason,
            messages.occurred_at, messages.call_type, 'pending', 0,
            cast(null as varchar), cast(%s as timestamp), cast(null as timestamp),
            messages.email, messages.phone
        from messages
        """,
        (created_at,),
    )
    return int(wh.scalar(f"select count(*) from {OUTBOX}") or 0) - before


# ---------------------------------------------------------------------- sending
@dataclass(frozen=True)
class MessageDetails:
    transition_id: str
    audience_key: str
    user_id: str
    call_type: str
    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str
    payload: dict[str, Any]


def count_pending(wh: Warehouse, audiences: Sequence[str]) -> int:
    where, params = audience_predicate("audience_key", audiences)
    return int(
        wh.scalar(
            f"select count(*) from {OUTBOX} where status = 'pending' and {where}",
            params,
        )
        or 0
    )


def next_page(
    wh: Warehouse, *, after_seq: int, group_size: int, audiences: Sequence[str]
) -> list[tuple]:
    """The next pending rows by seq range (an index/zone-map range scan, not a sort of
    the whole outbox), as `payloads.outbox_columns_sql` lists them; seq is first."""
    where, params = audience_predicate("audience_key", audiences)
    start = wh.scalar(
        f"select min(seq) from {OUTBOX} where status = 'pending' and seq > %s and {where}",
        [after_seq, *params],
    )
    if start is None:
        return []
    # Only what the payloads need: every column fetched costs per row, and the
    # bookkeeping columns are read back for the few rows that fail (`details`).
    return wh.query(
        f"select {payloads.outbox_columns_sql(wh.dialect)} from {OUTBOX} "
        f"where status = 'pending' and seq >= %s and seq < %s and {where} order by seq",
        [start, start + group_size, *params],
    )


def details(wh: Warehouse, message_ids: set[str]) -> dict[str, MessageDetails]:
    if not message_ids:
        return {}
    rows = wh.query(
        "select message_id, transition_id, audience_key, user_id, call_type, attempts "
        f"from {OUTBOX} where " + _in_list(wh, "message_id"),
        (sorted(message_ids),),
    )
    return {row[0]: MessageDetails(*row[1:]) for row in rows}


def note_failed(wh: Warehouse, reason: str, message_ids: list[str]) -> None:
    """A transient failure: the rows stay pending; the reason is kept for the operator."""
    wh.execute(
        f"update {OUTBOX} set last_error = %s where " + _in_list(wh, "message_id"),
        (reason, message_ids),
    )


def note_refused(wh: Warehouse, reason: str, message_ids: list[str]) -> None:
    """Segment refused these rows on their own: one attempt more towards dead-lettering."""
    wh.execute(
        f"update {OUTBOX} set last_error = %s, attempts = attempts + 1 where "
        + _in_list(wh, "message_id"),
        (reason, message_ids),
    )


def dead_letter(
    wh: Warehouse,
    letters: list[DeadLetter],
    *,
    known: dict[str, MessageDetails],
    run_id: str,
    at: datetime,
) -> None:
    """Give up on messages: status `dead`, and a dead_letters row with the payload."""
    if not letters:
        return
    wh.execute(
        f"update {OUTBOX} set status = 'dead' where " + _in_list(wh, "message_id"),
        (sorted({letter.message_id for letter in letters}),),
    )
    wh.executemany(
        f"insert into {DEAD_LETTERS} (message_id, transition_id, run_id, "
        "audience_key, user_id, call_type, reason, attempts, payload, "
        f"dead_lettered_at) values (%s, %s, %s, %s, %s, %s, %s, %s, "
        f"cast(%s as {wh.json_type}), %s)",
        [
            (
                letter.message_id,
                known[letter.message_id].transition_id,
                run_id,
                known[letter.message_id].audience_key,
                known[letter.message_id].user_id,
                known[letter.message_id].call_type,
                letter.reason,
                known[letter.message_id].attempts + 1,
                json.dumps(letter.payload),
                at,
            )
            for letter in letters
        ],
    )


def mark_sent(
    wh: Warehouse,
    *,
    first_seq: int,
    last_seq: int,
    audiences: Sequence[str],
    not_sent: list[str],
    at: datetime,
) -> None:
    """Every pending row of the group's seq range is confirmed, except `not_sent`.

    Only the audiences this run fetched: with --audience, pending rows of other
    audiences can sit in the same seq range and were never sent."""
    where, params = audience_predicate("audience_key", audiences)
    sql = (
        f"update {OUTBOX} set status = 'sent', sent_at = %s "
        f"where seq between %s and %s and status = 'pending' and {where}"
    )
    values: list[Any] = [at, first_seq, last_seq, *params]
    if not_sent:
        sql += " and not (" + _in_list(wh, "message_id") + ")"
        values.append(not_sent)
    wh.execute(sql, values)


def apply_state(
    wh: Warehouse, *, first_seq: int, last_seq: int, run_id: str, at: datetime
) -> None:
    """Advance audience_state for transitions whose every message is now sent.

    A transition's messages have adjacent seq numbers, so all of them lie within one
    of the group's range: the scan stays near the group, not over the outbox.
    When one range completes two transitions of a pair (an entry held back, then sent
    with the exit planned since), the later one (by seq) is the state, keeping the
    entry's time, as applying them one at a time would; an upsert may touch a row once."""
    wh.execute(
        f"""
        insert into {AUDIENCE_STATE} (
            audience_key, user_id, audience_name, audience_version, is_member,
            generation, entered_at, exited_at, exit_reason, last_transition_id,
            last_run_id, updated_at
        )
        with nearby as (
            select transition_id, seq, status, call_type
            from {OUTBOX}
            where seq between %s and %s and transition <> 'resync'
        ),
        touched as (
            select distinct transition_id
            from nearby
            where seq between %s and %s
        ),
        complete as (
            select nearby.transition_id
            from nearby
            inner join touched on nearby.transition_id = touched.transition_id
            group by 1
            having min(case when nearby.status = 'sent' then 1 else 0 end) = 1
        ),
        completed as (
            select
                outbox.*,
                row_number() over (
                    partition by outbox.audience_key, outbox.user_id
                    order by outbox.seq desc
                ) as newest_first,
                max(case when outbox.is_member then outbox.occurred_at end) over (
                    partition by outbox.audience_key, outbox.user_id
                ) as entered_in_range
            from {OUTBOX} as outbox
            inner join complete on outbox.transition_id = complete.transition_id
            where outbox.message_id = outbox.transition_id
                and outbox.seq between %s and %s
        )
        select
            audience_key, user_id, audience_name, audience_version, is_member,
            generation,
            case when is_member then occurred_at else entered_in_range end,
            case when not is_member then occurred_at end,
            exit_reason, transition_id, %s, cast(%s as timestamp)
        from completed
        where newest_first = 1
        on conflict (audience_key, user_id) do update set
            audience_name = excluded.audience_name,
            audience_version = excluded.audience_version,
            is_member = excluded.is_member,
            generation = excluded.generation,
            entered_at = coalesce(excluded.entered_at, audience_state.entered_at),
            exited_at = excluded.exited_at,
            exit_reason = excluded.exit_reason,
            last_transition_id = excluded.last_transition_id,
            last_run_id = excluded.last_run_id,
            updated_at = excluded.updated_at
        """,
        (
            first_seq - 1,
            last_seq + 1,
            first_seq,
            last_seq,
            first_seq - 1,
            last_seq + 1,
            run_id,
            at,
        ),
    )


def record_group(
    wh: Warehouse,
    *,
    first_seq: int,
    last_seq: int,
    audiences: Sequence[str],
    outcome: GroupOutcome,
    known: dict[str, MessageDetails],
    run_id: str,
) -> None:
    """One transaction per sent group: failures noted, dead letters written, the rest
    marked sent, and audience_state advanced for every transition now wholly sent. A
    crash before the commit leaves the whole group pending (resent, same ids)."""
    now = now_utc()
    with wh.transaction():
        for reason, ids in outcome.failed.items():
            note_failed(wh, reason, ids)
        for reason, ids in outcome.refused.items():
            note_refused(wh, reason, ids)
        dead_letter(wh, outcome.dead, known=known, run_id=run_id, at=now)
        mark_sent(
            wh,
            first_seq=first_seq,
            last_seq=last_seq,
            audiences=audiences,
            not_sent=outcome.not_sent,
            at=now,
        )
        apply_state(wh, first_seq=first_seq, last_seq=last_seq, run_id=run_id, at=now)


def requeue_dead_letters(wh: Warehouse, audiences: Sequence[str]) -> None:
    """Dead-lettered messages go back to `pending` with a fresh attempt count."""
    where, params = audience_predicate("audience_key", audiences)
    with wh.transaction():
        wh.execute(
            f"update {OUTBOX} set status = 'pending', attempts = 0 "
            f"where status = 'dead' and {where}",
            params,
        )
        wh.execute(f"delete from {DEAD_LETTERS} where {where}", params)


def prune(wh: Warehouse, sent_before: datetime) -> None:
    """Sent rows are only an audit trail once their transition is in audience_state."""
    wh.execute(
        f"delete from {OUTBOX} where status = 'sent' and sent_at < %s", (sent_before,)
    )


# ---------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunOutcome:
    status: str
    exit_code: int
    planned: int
    sent: int
    failed: int
    dead_lettered: int
    # Members not sent, one count per reason (plan.SKIP_REASONS; v3 added the last two).
    skipped_missing_user_id: int
    skipped_missing_identifier: int
    skipped_duplicate_identity: int
    deferred: int
    error: str | None


def start_run(
    wh: Warehouse,
    *,
    run_id: str,
    target_name: str,
    is_forced: bool,
    is_full_resync: bool,
    audiences: Sequence[str],
) -> None:
    wh.execute(
        f"insert into {RUNS} (run_id, target_name, started_at, status, "
        "is_forced, is_full_resync, audiences) values (%s, %s, %s, %s, %s, %s, %s)",
        (
            run_id,
            target_name,
            now_utc(),
            "running",
            is_forced,
            is_full_resync,
            ",".join(audiences) or None,
        ),
    )


def record_decided_as_of(wh: Warehouse, run_id: str, built_as_of: datetime) -> None:
    """In the transaction of the decision: the as_of of the inputs it was made from."""
    wh.execute(
        f"update {RUNS} set built_as_of = %s where run_id = %s", (built_as_of, run_id)
    )


def last_decided_as_of(wh: Warehouse) -> tuple[datetime, str] | None:
    """The as_of of the last decision (what Segment holds, or is being sent), and its
    run; None before any (or on tables older than schema version 5, read by a dry run
    before it migrates them). The last by time, not the latest moment: after a replay
    sent on purpose (--force), Segment holds that moment."""
    if schema_version(wh) < 5:
        return None
    rows = wh.query(
        f"select built_as_of, run_id from {RUNS} where built_as_of is not null "
        "order by started_at desc limit 1"
    )
    return (rows[0][0], rows[0][1]) if rows else None


def finish_run(wh: Warehouse, run_id: str, outcome: RunOutcome) -> None:
    wh.execute(
        f"update {RUNS} set finished_at = %s, status = %s, exit_code = %s, "
        "count_planned = %s, count_sent = %s, count_failed = %s, "
        "count_dead_lettered = %s, count_skipped_missing_user_id = %s, "
        "count_skipped_missing_identifier = %s, "
        "count_skipped_duplicate_identity = %s, "
        "count_deferred = %s, error = %s where run_id = %s",
        (
            now_utc(),
            outcome.status,
            outcome.exit_code,
            outcome.planned,
            outcome.sent,
            outcome.failed,
            outcome.dead_lettered,
            outcome.skipped_missing_user_id,
            outcome.skipped_missing_identifier,
            outcome.skipped_duplicate_identity,
            outcome.deferred,
            outcome.error,
            run_id,
        ),
    )


def abandon_running(wh: Warehouse, *, by_run_id: str, started_before: datetime) -> int:
    """Mark `abandoned` the runs left `running` by a process that died without recording
    its outcome (kill -9, power loss). Called by the run that holds the lock, so no other
    run that started before it can still be alive. Returns how many were marked."""
    where = "status = 'running' and run_id <> %s and started_at <= %s"
    count = int(
        wh.scalar(
            f"select count(*) from {RUNS} where {where}", (by_run_id, started_before)
        )
        or 0
    )
    if count:
        wh.execute(
            f"update {RUNS} set status = 'abandoned', error = %s where {where}",
            (
                f"the process ended without recording an outcome; found by run {by_run_id}",
                by_run_id,
                started_before,
            ),
        )
    return count


# ---------------------------------------------------------------------- lock row
def insert_lock(
    wh: Warehouse,
    *,
    token: str,
    run_id: str,
    pid: int,
    hostname: str,
    at: datetime,
) -> None:
    """Insert the single lock row; raises when a row is already there (primary key)."""
    wh.execute(
        f"insert into {LOCK} (lock_name, owner_token, run_id, pid, hostname, "
        "acquired_at, heartbeat_at) values (%s, %s, %s, %s, %s, %s, %s)",
        (LOCK_NAME, token, run_id, pid, hostname, at, at),
    )


def lock_row(wh: Warehouse) -> tuple | None:
    """(owner_token, run_id, pid, hostname, acquired_at, heartbeat_at) or None."""
    rows = wh.query(
        "select owner_token, run_id, pid, hostname, acquired_at, heartbeat_at "
        f"from {LOCK} where lock_name = %s",
        (LOCK_NAME,),
    )
    return rows[0] if rows else None


def touch_lock(wh: Warehouse, token: str, at: datetime) -> None:
    wh.execute(
        f"update {LOCK} set heartbeat_at = %s where lock_name = %s and owner_token = %s",
        (at, LOCK_NAME, token),
    )


def delete_lock(wh: Warehouse, token: str) -> None:
    """Delete the lock row only if `token` owns it (a racing recoverer's row survives)."""
    wh.execute(
        f"delete from {LOCK} where lock_name = %s and owner_token = %s",
        (LOCK_NAME, token),
    )
