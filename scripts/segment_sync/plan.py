"""The diff, in SQL in the warehouse: desired membership vs what Segment was told.

Inputs (docs/warehouse-contracts.md), nothing else:
- `<schema>.sync_segment__audience_memberships`: desired state, one row per audience and
  Segment identity (user_id, else anonymous_id) Segment should see as a member.
- `<schema>.sync_segment__audience_exits`: the latest exit reason of people who left.
- `<schema>.sync_segment__audience_skips`: members not sent, with the reason.
- the sync's own state, through the temp views `outbox.stage` makes (`sync_state`,
  `sync_unsent`, `sync_decided`); this module never touches `segment_sync` tables.
The identity, anonymous_id, email, phone and segment_calls columns and the skips model are read
when present, so inputs built before them still plan (as user_id-only, both calls).

The sync key (`user_id` in the plan, outbox and state) is the userId, or the anonymousId
of an email-only member; payloads.py tells them apart by ANONYMOUS_ID_PREFIX.

The plan lands in session temp tables (`sync_desired`, `sync_exit_reasons`,
`sync_audience_calls`, `sync_blocked`, `sync_plan`, `sync_decision_delta`), so a dry
run writes nothing persistent. A real run then has `outbox.enqueue` copy the chosen
transitions into the outbox, one message per call the audience chose (`segment_calls`:
identify + track by default; a resync is one call), with ids computed in SQL (payloads.py
scheme).

Two baselines:
- transitions (what to send) are diffed against `sync_state`, what Segment holds;
- the change guardrails judge (`decided_*`) is diffed against `sync_decided`, what
  earlier accepted plans decided, pending messages and `--limit` leftovers included. A
  run that finishes an earlier run's work is therefore not a "large change".

Rules:
- enter: desired, and the state row is absent or not a member; generation = previous + 1.
- exit: a member in state but no longer desired; reason from the exits model, else
  `window_expired` (contract); generation unchanged, so the exit pairs with its entry.
- a pair that still has an unsent (`pending`) or dead-lettered message is *deferred*:
  at most one transition per pair is in flight, so Segment never sees them out of order.
- `--full-resync` adds a `resync` identify carrying the current trait value for every
  unchanged pair (members and former members), with fresh ids (nonce = run id).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scripts.segment_sync import outbox, payloads
from scripts.warehouse import Warehouse

MEMBERSHIPS = "sync_segment__audience_memberships"
EXITS = "sync_segment__audience_exits"
MEMBERSHIP_COLUMNS = (
    "audience_key",
    "audience_name",
    "audience_version",
    "person_id",
    "user_id",
    "signal_at",
    "entered_at",
)
EXIT_COLUMNS = ("audience_key", "user_id", "exit_reason", "exited_at")
SKIPS = "sync_segment__audience_skips"
# dbt's registry of audience versions (docs/warehouse-contracts.md): which are synced.
REGISTRY = "dim_audiences"
DEFAULT_EXIT_REASON = "window_expired"
DEFAULT_CALLS = "both"
# Why a treatment member is not sent: the first two come from the skips model (the
# identity policy), the last is a second member with the same identity (sent once).
SKIP_REASONS = ("missing_user_id", "missing_identifier", "duplicate_identity")


class PlanError(Exception):
    """The inputs are missing or malformed; the message says what to run first."""


@dataclass
class AudiencePlan:
    audience_key: str
    audience_name: str | None = None
    current_members: int = 0
    desired_members: int = 0
    enter: int = 0
    exit: int = 0
    unchanged: int = 0
    deferred: int = 0
    resync: int = 0
    skipped_missing_user_id: int = 0
    # Against what earlier accepted plans decided (segment_sync.decided), which runs
    # ahead of `current_members` while messages wait in the outbox; guards judge these.
    decided_members: int = 0
    decided_enter: int = 0
    decided_exit: int = 0
    skipped_missing_identifier: int = 0
    skipped_duplicate_identity: int = 0

    @property
    def skipped(self) -> int:
        return sum(getattr(self, f"skipped_{reason}") for reason in SKIP_REASONS)


@dataclass
class Plan:
    run_id: str
    planned_at: datetime
    audiences: dict[str, AudiencePlan] = field(default_factory=dict)
    newest_input_at: datetime | None = None
    duplicate_rows: int = 0

    @property
    def transitions(self) -> int:
        return sum(
            a.enter + a.exit + a.resync - a.deferred for a in self.audiences.values()
        )

    @property
    def skipped_missing_user_id(self) -> int:
        return self.skipped_by_reason["missing_user_id"]

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return {
            reason: sum(
                getattr(a, f"skipped_{reason}") for a in self.audiences.values()
            )
            for reason in SKIP_REASONS
        }

    @property
    def deferred(self) -> int:
        return sum(a.deferred for a in self.audiences.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "planned_at": self.planned_at.isoformat(),
            "newest_input_at": self.newest_input_at.isoformat()
            if self.newest_input_at
            else None,
            "duplicate_input_rows": self.duplicate_rows,
            "skipped_by_reason": self.skipped_by_reason,
            "audiences": [
                {**asdict(a), "skipped": a.skipped} for a in self.audiences.values()
            ],
        }


def check_inputs(wh: Warehouse, schema: str) -> None:
    """Fail clearly when dbt has not built the sync models (or built other columns)."""
    for table, expected in ((MEMBERSHIPS, MEMBERSHIP_COLUMNS), (EXITS, EXIT_COLUMNS)):
        rows = wh.query(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, table),
        )
        if not rows:
            raise PlanError(
                f"{schema}.{table} does not exist; run `dbt build` (it builds the "
                "sync models) before `audiences sync segment`"
            )
        missing = sorted(set(expected) - {str(r[0]).lower() for r in rows})
        if missing:
            raise PlanError(
                f"{schema}.{table} lacks the contracted column(s) {', '.join(missing)} "
                "(docs/warehouse-contracts.md)"
            )


def known_audiences(wh: Warehouse, schema: str) -> list[str]:
    """Every audience key the sync can act on, sorted: one in its inputs (members, exits,
    skips), a synced audience of dbt's registry (dim_audiences: one with no member yet
    is still an audience), or one in the sync's own state (what Segment holds, what
    earlier runs decided, unsent or dead-lettered messages). An audience removed from the
    inputs is still known while the state holds it: its members must exit."""
    outbox.stage(wh)
    selects = [
        f"select audience_key from {name}"
        for name in (f"{schema}.{MEMBERSHIPS}", f"{schema}.{EXITS}")
    ]
    if wh.table_exists(schema, SKIPS):
        selects.append(f"select audience_key from {schema}.{SKIPS}")
    if wh.table_exists(schema, REGISTRY):
        selects.append(f"select audience_key from {schema}.{REGISTRY} where is_synced")
    selects += [
        f"select audience_key from {name}"
        for name in ("sync_state", "sync_decided", "sync_unsent")
    ]
    rows = wh.query(
        f"select audience_key from ({' union '.join(selects)}) as known "
        "where audience_key is not null order by 1"
    )
    return [str(key) for (key,) in rows]


def unsynced_audiences(wh: Warehouse, schema: str) -> set[str]:
    """Audiences of dbt's registry that are not synced (is_synced: false in their yml)."""
    if not wh.table_exists(schema, REGISTRY):
        return set()
    rows = wh.query(
        f"select distinct audience_key from {schema}.{REGISTRY} where not is_synced"
    )
    return {str(key) for (key,) in rows}


def input_columns(wh: Warehouse, schema: str, table: str) -> set[str]:
    rows = wh.query(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s",
        (schema, table),
    )
    return {str(r[0]).lower() for r in rows}


def _identity_sql(columns: set[str]) -> str:
    """The sync key: the user id, else the anonymousId the identity policy gave."""
    if "anonymous_id" in columns:
        return "coalesce(nullif(user_id, ''), nullif(anonymous_id, ''))"
    return "nullif(user_id, '')"


def _optional(columns: set[str], column: str, default: str) -> str:
    return column if column in columns else f"{default} as {column}"


def build_plan(
    wh: Warehouse,
    *,
    schema: str,
    run_id: str,
    planned_at: datetime,
    audiences: list[str],
    full_resync: bool,
) -> Plan:
    outbox.stage(wh)
    for name in (
        "sync_desired",
        "sync_exit_reasons",
        "sync_blocked",
        "sync_plan",
        "sync_decision_delta",
    ):
        wh.execute(f"drop table if exists {name}")

    selected, member_params = outbox.audience_predicate("audience_key", audiences)
    member_columns = input_columns(wh, schema, MEMBERSHIPS)
    member_key = _identity_sql(member_columns)
    wh.execute(
        f"""
        create temp table sync_desired as
        with keyed as (
            select
                audience_key, audience_name, audience_version, person_id,
                {member_key} as user_id,
                {_optional(member_columns, "email", "cast(null as varchar)")},
                {_optional(member_columns, "phone", "cast(null as varchar)")},
                {_optional(member_columns, "segment_calls", "cast(null as varchar)")},
                signal_at, entered_at
            from {schema}.{MEMBERSHIPS}
            where {selected}
        ),
        ranked as (
            select
                keyed.*,
                row_number() over (
                    partition by audience_key, user_id
                    order by audience_version desc, entered_at desc
                ) as row_rank
            from keyed
            where user_id is not null
        )
        select
            audience_key, audience_name, audience_version, person_id, user_id, email,
            phone, coalesce(segment_calls, '{DEFAULT_CALLS}') as segment_calls,
            signal_at, entered_at
        from ranked
        where row_rank = 1
        """,
        member_params,
    )
    exit_columns = input_columns(wh, schema, EXITS)
    wh.execute(
        f"""
        create temp table sync_exit_reasons as
        with keyed as (
            select
                audience_key, {_identity_sql(exit_columns)} as user_id,
                {_optional(exit_columns, "email", "cast(null as varchar)")},
                {_optional(exit_columns, "phone", "cast(null as varchar)")},
                exit_reason, exited_at
            from {schema}.{EXITS}
            where {selected}
        ),
        ranked as (
            select
                keyed.*,
                row_number() over (
                    partition by audience_key, user_id order by exited_at desc
                ) as row_rank
            from keyed
            where user_id is not null
        )
        select audience_key, user_id, email, phone, exit_reason, exited_at
        from ranked
        where row_rank = 1
        """,
        member_params,
    )
    # An audience's calls for its exits too; one whose members all left uses the default.
    wh.execute("drop table if exists sync_audience_calls")
    wh.execute(
        "create temp table sync_audience_calls as "
        "select audience_key, max(segment_calls) as segment_calls "
        "from sync_desired group by audience_key"
    )
    wh.execute(
        f"""
        create temp table sync_blocked as
        select distinct audience_key, user_id
        from sync_unsent
        where {selected}
        """,
        member_params,
    )
    resync = (
        """
        union all
        select
            state.audience_key, state.audience_name, state.audience_version,
            cast(null as varchar) as person_id, state.user_id,
            'resync' as transition, state.generation, state.is_member,
            state.exit_reason, cast(%s as timestamp) as occurred_at,
            coalesce(sync_desired.email, sync_exit_reasons.email) as email,
            coalesce(sync_desired.phone, sync_exit_reasons.phone) as phone,
            sync_audience_calls.segment_calls
        from state
        left join sync_desired
            on state.audience_key = sync_desired.audience_key
            and state.user_id = sync_desired.user_id
        left join sync_exit_reasons
            on state.audience_key = sync_exit_reasons.audience_key
            and state.user_id = sync_exit_reasons.user_id
        left join sync_audience_calls
            on state.audience_key = sync_audience_calls.audience_key
        where (state.is_member and sync_desired.user_id is not null)
            or (not state.is_member and sync_desired.user_id is null)
        """
        if full_resync
        else ""
    )
    params: list[Any] = [*member_params, planned_at, planned_at]
    if full_resync:
        params.append(planned_at)
    wh.execute(
        f"""
        create temp table sync_plan as
        with state as (
            select
                audience_key, user_id, audience_name, audience_version, is_member,
                generation, exit_reason
            from sync_state
            where {selected}
        ),
        changes as (
            select
                sync_desired.audience_key, sync_desired.audience_name,
                sync_desired.audience_version, sync_desired.person_id,
                sync_desired.user_id, 'enter' as transition,
                coalesce(state.generation, 0) + 1 as generation, true as is_member,
                cast(null as varchar) as exit_reason,
                coalesce(sync_desired.entered_at, cast(%s as timestamp)) as occurred_at,
                sync_desired.email, sync_desired.phone, sync_desired.segment_calls
            from sync_desired
            left join state
                on sync_desired.audience_key = state.audience_key
                and sync_desired.user_id = state.user_id
            where state.is_member is null or not state.is_member
            union all
            select
                state.audience_key, state.audience_name, state.audience_version,
                cast(null as varchar) as person_id, state.user_id,
                'exit' as transition, state.generation, false as is_member,
                coalesce(sync_exit_reasons.exit_reason, '{DEFAULT_EXIT_REASON}'),
                coalesce(sync_exit_reasons.exited_at, cast(%s as timestamp)),
                sync_exit_reasons.email, sync_exit_reasons.phone,
                sync_audience_calls.segment_calls
            from state
            left join sync_desired
                on state.audience_key = sync_desired.audience_key
                and state.user_id = sync_desired.user_id
            left join sync_exit_reasons
                on state.audience_key = sync_exit_reasons.audience_key
                and state.user_id = sync_exit_reasons.user_id
            left join sync_audience_calls
                on state.audience_key = sync_audience_calls.audience_key
            where state.is_member and sync_desired.user_id is null
            {resync}
        )
        select
            changes.audience_key, changes.audience_name, changes.audience_version,
            changes.person_id, changes.user_id, changes.transition, changes.generation,
            changes.is_member, changes.exit_reason, changes.occurred_at, changes.email,
            changes.phone,
            coalesce(changes.segment_calls, '{DEFAULT_CALLS}') as segment_calls,
            sync_blocked.user_id is not null as is_blocked
        from changes
        left join sync_blocked
            on changes.audience_key = sync_blocked.audience_key
            and changes.user_id = sync_blocked.user_id
        """,
        params,
    )
    plan = Plan(run_id=run_id, planned_at=planned_at)
    _judge_against_decided(wh, selected, member_params)
    _summarise(wh, plan, schema, selected, member_params)
    return plan


def _judge_against_decided(wh: Warehouse, selected: str, params: list[str]) -> None:
    """`sync_decision_delta`: how the new build's membership differs from what earlier
    accepted plans decided (audience_key, user_id, change = 'enter' | 'exit'). Guards
    judge its size; an accepted run records it (outbox.decide)."""
    wh.execute(
        f"""
        create temp table sync_decision_delta as
        select
            coalesce(desired.audience_key, decided.audience_key) as audience_key,
            coalesce(desired.user_id, decided.user_id) as user_id,
            case when decided.user_id is null then 'enter' else 'exit' end as change
        from (select audience_key, user_id from sync_desired) as desired
        -- One full join, not two anti-joins: half the time on a million members.
        full outer join (
            select audience_key, user_id from sync_decided where {selected}
        ) as decided
            on desired.audience_key = decided.audience_key
            and desired.user_id = decided.user_id
        where desired.user_id is null or decided.user_id is null
        """,
        params,
    )


def _audience(plan: Plan, key: str) -> AudiencePlan:
    if key not in plan.audiences:
        plan.audiences[key] = AudiencePlan(audience_key=key)
    return plan.audiences[key]


def _summarise(
    wh: Warehouse, plan: Plan, schema: str, selected: str, member_params: list[str]
) -> None:
    for key, members in wh.query(
        f"select audience_key, count(*) from sync_state "
        f"where is_member and {selected} group by 1",
        member_params,
    ):
        _audience(plan, key).current_members = int(members)
    for key, members in wh.query(
        f"select audience_key, count(*) from sync_decided where {selected} group by 1",
        member_params,
    ):
        _audience(plan, key).decided_members = int(members)
    for key, change, count in wh.query(
        "select audience_key, change, count(*) from sync_decision_delta group by 1, 2"
    ):
        entry = _audience(plan, key)
        if change == "enter":
            entry.decided_enter = int(count)
        else:
            entry.decided_exit = int(count)
    newest: list[datetime] = []
    for key, name, count, signal_max, entered_max in wh.query(
        "select audience_key, max(audience_name), count(*), max(signal_at), "
        "max(entered_at) from sync_desired group by 1"
    ):
        entry = _audience(plan, key)
        entry.audience_name, entry.desired_members = name, int(count)
        newest.extend(v for v in (signal_max, entered_max) if v is not None)
    for key, transition, blocked, count in wh.query(
        "select audience_key, transition, is_blocked, count(*) from sync_plan "
        "group by 1, 2, 3"
    ):
        entry = _audience(plan, key)
        setattr(entry, transition, getattr(entry, transition) + int(count))
        if blocked:
            entry.deferred += int(count)
    _count_skipped(wh, plan, schema, selected, member_params)
    for key, name in wh.query(
        f"select audience_key, max(audience_name) from sync_state where {selected} "
        "group by 1",
        member_params,
    ):
        if key in plan.audiences and not plan.audiences[key].audience_name:
            plan.audiences[key].audience_name = name
    for entry in plan.audiences.values():
        entry.unchanged = entry.desired_members - entry.enter
    exited = wh.scalar("select max(exited_at) from sync_exit_reasons")
    if exited is not None:
        newest.append(exited)
    plan.newest_input_at = max(newest) if newest else None
    plan.duplicate_rows = sum(
        a.skipped_duplicate_identity for a in plan.audiences.values()
    )


def _count_skipped(
    wh: Warehouse,
    plan: Plan,
    schema: str,
    selected: str,
    member_params: list[str],
) -> None:
    """Every treatment member that is not desired, by reason (SKIP_REASONS), so that
    treatment members = desired + skipped for every audience."""
    key = _identity_sql(input_columns(wh, schema, MEMBERSHIPS))
    for audience_key, keyed, unkeyed in wh.query(
        f"select audience_key, count({key}), count(*) - count({key}) "
        f"from {schema}.{MEMBERSHIPS} where {selected} group by 1",
        member_params,
    ):
        entry = _audience(plan, audience_key)
        # A row the sync cannot address (no identity at all) is a missing user id.
        entry.skipped_missing_user_id += int(unkeyed)
        entry.skipped_duplicate_identity = int(keyed) - entry.desired_members
    if not wh.table_exists(schema, SKIPS):
        return
    for audience_key, reason, count in wh.query(
        f"select audience_key, skip_reason, count(*) from {schema}.{SKIPS} "
        f"where {selected} group by 1, 2",
        member_params,
    ):
        if reason not in SKIP_REASONS:
            raise PlanError(
                f"{schema}.{SKIPS} has the unknown skip_reason {reason!r} "
                f"(expected one of {', '.join(SKIP_REASONS)})"
            )
        entry = _audience(plan, audience_key)
        field_name = f"skipped_{reason}"
        setattr(entry, field_name, getattr(entry, field_name) + int(count))


def sample_rows(wh: Warehouse, per_kind: int = 1) -> list[dict[str, Any]]:
    """A few planned transitions per kind, rendered as the payloads they would send."""
    builder = payloads.PayloadBuilder()
    samples: list[dict[str, Any]] = []
    rows = wh.query(
        """
        with ranked as (
            select
                sync_plan.*,
                row_number() over (
                    partition by sync_plan.transition
                    order by sync_plan.audience_key, sync_plan.user_id
                ) as sample_rank
            from sync_plan
            where not sync_plan.is_blocked
        )
        select
            audience_key, audience_name, audience_version, user_id, transition,
            generation, is_member, exit_reason, occurred_at, email, phone, segment_calls
        from ranked
        where sample_rank <= %s
        order by transition, audience_key, user_id
        """,
        (per_kind,),
    )
    for row in rows:
        key, name, version, user_id, transition, generation, member, reason, at = row[
            :9
        ]
        email, phone, segment_calls = row[9], row[10], row[11]
        calls = [c for c in payloads.CALLS if segment_calls in (c, DEFAULT_CALLS)]
        if transition == "resync":
            calls = calls[:1]
        for call in calls:
            samples.append(
                builder.build(
                    message_id=payloads.message_id(
                        "<installation>", key, transition, generation, "", call, user_id
                    ),
                    call_type=call,
                    audience_key=key,
                    audience_name=name,
                    audience_version=version,
                    user_id=user_id,
                    transition=transition,
                    is_member=bool(member),
                    exit_reason=reason,
                    occurred_at=at,
                    email=email,
                    phone=phone,
                )
            )
    return samples
