"""Guardrails: refuse a real run whose plan looks wrong, before anything is sent.

Each rule yields a `Refusal`; `--force` overrides all but the holdout and empty-build
checks.

The size of a change is measured against what earlier accepted plans decided
(`segment_sync.decided`: confirmed members plus transitions still pending in the outbox or
left for later by `--limit`), not against what Segment confirmed so far: a run that only
finishes an interrupted or limited run must pass without `--force`.

- change: an audience with at least `min_audience_size` decided members would change
  (enter + exit) by more than `max_change_pct` percent of that size; exactly the limit
  passes. Small audiences swing by nature, so they are exempt.
- drop to zero: an audience with decided members would have none. A retired audience
  does this on purpose, so it needs `--force` once.
- stale: the freshest timestamp in the inputs (max of signal_at and entered_at over the
  selected memberships, and exited_at over the exits) is older than
  `max_staleness_hours` (exactly the limit passes). That is the practical signal that
  dbt ran on fresh data: any live audience sees new signals every day, while a pipeline
  whose loads stopped freezes every timestamp. (Per-audience checks would flag "lapsed"
  audiences, whose signals are old by design.)
- dbt checks: `dbt build` wrote `run_results.json` and a model or test touching a
  `sync_segment__` model failed or errored there (volume, uniqueness, freshness tests).
- data health: a dbt test tagged `data_health` (event volume, source freshness, identity
  coverage, machine-open share, audience size) failed or errored in that same
  `run_results.json`. The refusal names the check (the test's `meta.check`, read from the
  `manifest.json` beside it), so the operator knows which signal to look at. A
  manifest.json there that cannot be read, beside a failed test, refuses too: that test
  may be one.
- future as_of: dbt's last run used an `as_of` more than the ledger's skew
  (`as_of_future_skew_minutes`, dbt_project.yml) after it ran (a
  what-if). The sync inputs then hold that future moment's membership, and sending them
  would push it to Segment; the ledger ignores such builds, the sync must too. Run a plain
  `dbt build` first.
- as_of went back: the sync inputs were built for an earlier as_of than the inputs of
  the last decision the sync made (a replay of a past moment, `dbt build --vars
  '{as_of: ...}'`, left in place). Sending it would undo in Segment what happened since:
  exits for today's members, then a drop-to-zero refusal to put them back. A replay
  after which nothing was synced yet, or from the same moment again, is not refused:
  tests and backfills sync from fixed past moments on purpose.
- empty build (never overridable): dbt's last run (the same `run_results.json`) was
  schema-only, `dbt run --empty` or `dbt build --empty`: every `ref` read no rows, so the
  sync inputs hold no members, and sending them would exit every member from Segment.
  No plan built on such tables is worth forcing; run a plain `dbt build` first. (When a
  `dbt seed` or `dbt test` has replaced those results since, the tables are still empty
  and the drop-to-zero rule refuses for every audience with members.)
- holdout (never overridable): a desired member is in the holdout arm of
  `fct_audience_memberships` for the same audience version, matched by person (which
  also finds a member sent under an anonymousId) or by user id. The input model already
  excludes holdouts; this re-checks it, because a leak would spoil the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.dbt_artifacts import (
    DATA_HEALTH_TAG,
    UnreadableArtifactError,
    data_health_checks,
    node_name,
    read_manifest,
    read_run_results,
)
from scripts.segment_sync.plan import EXITS, MEMBERSHIPS, Plan, input_columns
from scripts.warehouse import Warehouse

HOLDOUT_SOURCE = "fct_audience_memberships"


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str
    audience_key: str | None = None
    overridable: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "audience_key": self.audience_key,
            "message": self.message,
            "overridable": self.overridable,
        }


@dataclass(frozen=True)
class Limits:
    max_change_pct: float
    min_audience_size: int
    max_staleness_hours: float
    dbt_run_results: Path | None


def check_plan(plan: Plan, limits: Limits, now: datetime) -> list[Refusal]:
    refusals: list[Refusal] = []
    for key, audience in sorted(plan.audiences.items()):
        current = audience.decided_members
        if current > 0 and audience.desired_members == 0:
            refusals.append(
                Refusal(
                    "drop_to_zero",
                    f"{key} would drop from {current} members to zero",
                    key,
                )
            )
            continue
        changed = audience.decided_enter + audience.decided_exit
        if current >= limits.min_audience_size and changed:
            share = 100.0 * changed / current
            if share > limits.max_change_pct:
                refusals.append(
                    Refusal(
                        "max_change",
                        f"{key} would change by {share:.0f}% ({audience.decided_enter} "
                        f"enter, {audience.decided_exit} exit, {current} members decided "
                        f"so far); the limit is {limits.max_change_pct:g}%",
                        key,
                    )
                )
    # Resending what an earlier (fresh) build decided needs no fresh inputs.
    has_changes = any(
        a.decided_enter or a.decided_exit for a in plan.audiences.values()
    )
    if has_changes and plan.newest_input_at is not None:
        age = now - plan.newest_input_at
        if age > timedelta(hours=limits.max_staleness_hours):
            hours = age.total_seconds() / 3600
            refusals.append(
                Refusal(
                    "stale",
                    f"the newest signal/entry/exit in the sync inputs is {hours:.1f} h old "
                    f"(limit {limits.max_staleness_hours:g} h); did the loads and "
                    "`dbt build` run?",
                )
            )
    return refusals


def check_dbt_results(path: Path | None) -> list[Refusal]:
    """Failures of sync models or their tests in dbt's last run_results.json, if any."""
    try:
        run = read_run_results(path)
    except UnreadableArtifactError as exc:
        return [Refusal("dbt_checks", str(exc))]
    if run is None:
        return []
    failed = sorted(
        str(r.get("unique_id"))
        for r in run.failed()
        if "sync_segment__" in str(r.get("unique_id", ""))
    )
    if not failed:
        return []
    shown = ", ".join(failed[:5]) + (" …" if len(failed) > 5 else "")
    return [
        Refusal(
            "dbt_checks",
            f"{len(failed)} dbt check(s) on the sync models failed in {path}: {shown}",
        )
    ]


def check_data_health(path: Path | None) -> list[Refusal]:
    """One refusal per data-health check that failed in dbt's last run_results.json.

    The manifest.json beside the results says which tests are data-health checks; a
    failing one means the data the audiences were built from looks wrong (a quiet drop of
    clicks empties an audience), so sending its changes would spread the damage."""
    if path is None or not path.is_file():
        return []
    manifest_path = path.parent / "manifest.json"
    manifest = read_manifest(manifest_path)
    checks = data_health_checks(manifest)
    manifest_unreadable = manifest_path.is_file() and not manifest.get("nodes")
    if not checks and not manifest_unreadable:
        return []  # none declared, or no manifest beside the results at all
    try:
        run = read_run_results(path)
    except UnreadableArtifactError as exc:
        return [Refusal("data_health", str(exc))]
    if manifest_unreadable:
        # A manifest that cannot be read (dbt stopped while writing it) says nothing
        # of which tests are data-health checks: a failed test may be one.
        failed_tests = [
            r for r in (run.failed() if run else []) if _is_test(r.get("unique_id"))
        ]
        if not failed_tests:
            return []
        return [
            Refusal(
                "data_health",
                f"cannot read dbt's manifest {manifest_path}, so cannot tell whether "
                f"any of the {len(failed_tests)} failed test(s) in {path} is a "
                "data-health check; run `dbt build` again",
            )
        ]
    failed: dict[str, list[str]] = {}
    for result in run.failed() if run else []:
        unique_id = str(result.get("unique_id", ""))
        if unique_id in checks:
            failed.setdefault(checks[unique_id], []).append(node_name(unique_id))
    return [
        Refusal(
            "data_health",
            f"data-health check '{check}' failed ({', '.join(sorted(tests)[:3])}); "
            f"see `dbt test --select tag:{DATA_HEALTH_TAG}`",
        )
        for check, tests in sorted(failed.items())
    ]


def _is_test(unique_id: object) -> bool:
    return str(unique_id).startswith("test.")


def _as_of_skew(variables: dict) -> timedelta:
    """How far as_of may run ahead of the build and still count as "now": the ledger's
    own var `as_of_future_skew_minutes`, from that run's --vars or dbt_project.yml, so
    the ledger and the sync draw the line in one place."""
    minutes = variables.get("as_of_future_skew_minutes")
    if minutes is None:
        from scripts.settings import dbt_project_var

        minutes = dbt_project_var("as_of_future_skew_minutes", 5)
    return timedelta(minutes=float(minutes))


# The sync models' columns: the as_of a table was built for, and whether that build was
# a what-if (dbt decided, with the run's own as_of_future_skew_minutes).
AS_OF_STAMP = "built_as_of"
WHAT_IF_STAMP = "is_built_for_future_as_of"


def check_dbt_as_of(path: Path | None) -> list[Refusal]:
    """A refusal when dbt's last run (run_results.json) was a what-if build whose as_of
    lies in the future."""
    try:
        run = read_run_results(path)
    except UnreadableArtifactError as exc:
        return [Refusal("as_of", str(exc))]
    if run is None:
        return []
    variables = run.args.get("vars") or {}
    as_of = variables.get("as_of") if isinstance(variables, dict) else None
    if not as_of:
        return []
    try:
        at = _utc(datetime.fromisoformat(str(as_of).replace("Z", "+00:00")))
        if run.generated_at is None:
            raise ValueError("no generated_at")
        ran = _utc(datetime.fromisoformat(str(run.generated_at).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return [
            Refusal("as_of", f"cannot read as_of {as_of!r} from dbt results {path}")
        ]
    if at - ran <= _as_of_skew(variables):
        return []
    return [
        Refusal(
            "as_of",
            f"the last dbt run used as_of {as_of}, in the future of when it ran ("
            f"{ran:%Y-%m-%d %H:%M} UTC): its sync inputs are that moment's membership, "
            "not today's; run a plain `dbt build` before syncing",
        )
    ]


def check_dbt_empty(path: Path | None) -> list[Refusal]:
    """A refusal, never overridable, when dbt's last run (run_results.json) was
    schema-only (`--empty`): its tables, the sync inputs among them, hold no rows."""
    try:
        run = read_run_results(path)
    except UnreadableArtifactError:
        return []  # check_dbt_results refuses an unreadable file already
    if run is None or run.args.get("empty") is not True:
        return []
    command = run.args.get("which") or "run"
    return [
        Refusal(
            "empty_build",
            f"the last dbt run was `dbt {command} --empty` (schema only: every model "
            "read no rows), so the sync inputs hold no members and sending them would "
            "exit every member; run a plain `dbt build` before syncing",
            overridable=False,
        )
    ]


def check_inputs_as_of(wh: Warehouse, schema: str) -> list[Refusal]:
    """A refusal when dbt built the sync inputs for an as_of in the future of that run: a
    what-if build's membership. Read from the tables themselves, so that a later
    `dbt seed` or `dbt test`, which replaces run_results.json, cannot clear it. Tables
    without the columns (an older build) or without rows say nothing; check_dbt_as_of
    still reads dbt's results."""
    what_if = []
    for table in (MEMBERSHIPS, EXITS):
        if {AS_OF_STAMP, WHAT_IF_STAMP} <= input_columns(wh, schema, table):
            what_if += wh.query(
                f"select max({AS_OF_STAMP}) from {schema}.{table} where {WHAT_IF_STAMP}"
            )
    stamps = [_utc(row[0]) for row in what_if if row[0] is not None]
    if not stamps:
        return []
    return [
        Refusal(
            "as_of",
            f"the sync inputs were built for as_of {max(stamps):%Y-%m-%d %H:%M} UTC, "
            "in the future of that build: a what-if build's membership, not today's; "
            "run a plain `dbt build` before syncing",
        )
    ]


def inputs_built_as_of(wh: Warehouse, schema: str) -> datetime | None:
    """The as_of dbt built the sync inputs for (None: tables of an older build)."""
    stamps = []
    for table in (MEMBERSHIPS, EXITS):
        if AS_OF_STAMP in input_columns(wh, schema, table):
            stamps += wh.query(f"select max({AS_OF_STAMP}) from {schema}.{table}")
    found = [_utc(row[0]) for row in stamps if row[0] is not None]
    return max(found) if found else None


def check_as_of_went_back(
    built_as_of: datetime | None, last_decided: tuple[datetime, str] | None
) -> list[Refusal]:
    """A refusal when the inputs are of an earlier moment than the last decision's."""
    if built_as_of is None or last_decided is None:
        return []
    last_as_of, last_run = _utc(last_decided[0]), last_decided[1]
    if built_as_of >= last_as_of:
        return []
    return [
        Refusal(
            "as_of_went_back",
            f"the sync inputs were built for as_of {built_as_of:%Y-%m-%d %H:%M} UTC, "
            f"before the as_of {last_as_of:%Y-%m-%d %H:%M} UTC the sync last decided "
            f"from (run {last_run}): a replay of an earlier moment, and sending it "
            "would undo in Segment what happened since; run a plain `dbt build` "
            "first (or --force to send that moment's membership on purpose)",
        )
    ]


def _utc(moment: datetime) -> datetime:
    """Naive UTC, as the rest of the sync compares times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def check_holdout(wh: Warehouse, schema: str) -> list[Refusal]:
    """Desired members that the audience mart puts in the holdout arm (needs sync_desired)."""
    if not wh.table_exists(schema, HOLDOUT_SOURCE):
        return []
    columns = {
        str(r[0]).lower()
        for r in wh.query(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, HOLDOUT_SOURCE),
        )
    }
    if (
        not {"audience_key", "audience_version", "person_id", "user_id", "arm"}
        <= columns
    ):
        return []
    # Matched by person and by user id: a member sent under an email-derived anonymousId
    # (identity policy user_id_or_email) has a sync key that is no user id, so only the
    # person finds them; a user id the holdout shares with a treatment person would put
    # the held-out person's Segment profile in the audience too. sync_desired holds one
    # row per (audience_key, user_id), so the union counts each desired member once.
    matches = " union ".join(
        f"""
        select sync_desired.audience_key, sync_desired.user_id
        from sync_desired
        inner join {schema}.{HOLDOUT_SOURCE} as memberships
            on sync_desired.audience_key = memberships.audience_key
            and sync_desired.audience_version = memberships.audience_version
            and sync_desired.{column} = memberships.{column}
        where memberships.arm = 'holdout'
        """
        for column in ("person_id", "user_id")
    )
    rows = wh.query(
        f"""
        select audience_key, count(*)
        from ({matches}) as leaked
        group by 1
        order by 1
        """
    )
    return [
        Refusal(
            "holdout",
            f"{key}: {count} holdout member(s) are in the sync input; fix the "
            "sync_segment__audience_memberships model (holdouts must never be sent)",
            key,
            overridable=False,
        )
        for key, count in rows
    ]


def blocking(refusals: list[Refusal], force: bool) -> list[Refusal]:
    return [r for r in refusals if not (force and r.overridable)]


def describe(refusals: list[Refusal]) -> str:
    return "\n".join(f"  - [{r.rule}] {r.message}" for r in refusals)


__all__ = [
    "Limits",
    "Refusal",
    "blocking",
    "check_data_health",
    "check_dbt_as_of",
    "check_dbt_results",
    "check_holdout",
    "check_inputs_as_of",
    "check_plan",
    "describe",
]
