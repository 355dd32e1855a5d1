"""One run of `audiences sync segment`: lock → plan → guardrails → outbox → send → log.

Crash safety comes from the order of writes, not from the process staying alive:
1. the plan is committed to `segment_sync.outbox` (ids included) before any send;
2. after each send group, one transaction marks the confirmed messages `sent`, records
   failures (and dead letters) and applies completed transitions to `audience_state`;
3. a later run first resends every `pending` outbox row with its stored id.
A kill -9 anywhere therefore loses nothing; at worst a group is sent twice with the same
ids, which Segment (and our receiver) dedupe.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scripts import stop_signals
from scripts.file_replace import replace_file
from scripts.secret_keys import describe_odd_character, odd_character_at
from scripts.segment_sync import guards, lock, outbox, outcomes, payloads, plan
from scripts.segment_sync.redact import MIN_WRITE_KEY_LENGTH, Redactor, library_logging
from scripts.settings import SettingsError, dbt_target_dir, load_target
from scripts.warehouse import (
    NoWarehouseError,
    Warehouse,
    WarehouseError,
    WarehouseInUseError,
    require_built,
)

if TYPE_CHECKING:
    from scripts.segment_sync.client import GroupResult

DEFAULT_HOST = "https://api.segment.io"
OUTBOX_RETENTION_DAYS = 30


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    REFUSED = 3
    LOCKED = 4
    PARTIAL = 5


@dataclass
class SyncOptions:
    target_name: str | None = None
    audiences: list[str] = field(default_factory=list)
    full_resync: bool = False
    limit: int | None = None
    dry_run: bool = False
    force: bool = False
    max_rps: float = 100.0
    max_change_pct: float = 50.0
    min_audience_size: int = 100
    max_staleness_hours: float = 36.0
    plan_out: Path | None = None
    batch_size: int = 2500
    group_size: int = 20_000
    max_retries: int = 10
    timeout: float = 15.0
    max_attempts: int = 3
    gzip: bool = False
    stale_lock_minutes: float = 30.0
    retry_dead_letters: bool = False
    dbt_run_results: Path | None = None
    max_rate_limit_seconds: float = 1800.0
    samples: int = 1
    workers: int | None = None  # sending processes; None: by plan size (workers.py)


@dataclass
class _Page:
    rows: list[tuple]  # the rows to send (oversized ones are held back)
    first_seq: int
    last_seq: int
    prepared: Any = None  # what the sender made of rows, for submit()
    oversized: list[tuple[tuple, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Counts:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    refused: int = 0


@contextmanager
def _stop_on_signals(flag: dict[str, bool]) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP (scripts/stop_signals.py) finish the current group,
    flush, record and exit cleanly."""

    def handler(signum: int, _frame: Any) -> None:
        flag["stop"] = True
        click.echo(
            f"received signal {signum}: finishing the current group, then stopping",
            err=True,
        )

    previous = stop_signals.install(handler)
    try:
        yield
    finally:
        stop_signals.restore(previous)


# The payload fields that hold a person's contact details, masked where a dry run prints.
CONTACT_FIELDS = ("email", "phone")


def _contacts_masked(value: Any, field: str | None = None) -> Any:
    """A payload as printed: each email (`traits.email`, `context.traits.email`) cut to
    its first character and domain, each phone to its last two digits. A dry run's output
    lands in logs (a scheduled `audiences run --dry-run` prints a sample every tick),
    which are no place for customers' contact details; the plan file, which the operator
    asked for, keeps them whole. By field name, not by the value's shape: a value with
    an @ elsewhere (a URL) is not an email."""
    if isinstance(value, dict):
        return {key: _contacts_masked(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_contacts_masked(item, field) for item in value]
    if field not in CONTACT_FIELDS or not isinstance(value, str) or not value.strip():
        return value
    if field == "email":
        local, at, domain = value.strip().rpartition("@")
        return f"{local[:1]}***@{domain}" if at and local else "***"
    return "***" + value.strip()[-2:]


def _print_plan(p: plan.Plan, echo: Callable[[str], None]) -> None:
    # As wide as the longest key: a fixed 32 shifted every row of a longer one.
    width = max(map(len, [*p.audiences, "audience"]))
    header = (
        f"{'audience':<{width}} {'current':>8} {'desired':>8} {'enter':>7} {'exit':>7} "
        f"{'unchanged':>9} {'deferred':>8} {'resync':>7} {'skipped':>8}"
    )
    echo(header)
    for key in sorted(p.audiences):
        a = p.audiences[key]
        echo(
            f"{key:<{width}} {a.current_members:>8} {a.desired_members:>8} {a.enter:>7} "
            f"{a.exit:>7} {a.unchanged:>9} {a.deferred:>8} {a.resync:>7} "
            f"{a.skipped:>8}"
        )
    if not p.audiences:
        echo("(no audiences in the sync input or state)")
    for key in sorted(p.audiences):
        a = p.audiences[key]
        if a.decided_members != a.current_members:
            echo(
                f"note: {key}: earlier runs decided {a.decided_members} member(s), "
                f"{a.current_members} confirmed so far; the rest are resent or planned "
                f"now, and guardrails judge this build's {a.decided_enter} enter and "
                f"{a.decided_exit} exit against the decided {a.decided_members}"
            )
    _print_skipped(p, echo)


def _print_skipped(p: plan.Plan, echo: Callable[[str], None]) -> None:
    """Members not sent, per audience and reason: treatment = desired + skipped."""
    for key in sorted(p.audiences):
        a = p.audiences[key]
        reasons = [
            f"{getattr(a, f'skipped_{reason}')} {reason}"
            for reason in plan.SKIP_REASONS
            if getattr(a, f"skipped_{reason}")
        ]
        if reasons:
            echo(f"not sent: {key}: {', '.join(reasons)}")


def _write_plan_file(path: Path, document: dict[str, Any]) -> None:
    replace_file(path, (json.dumps(document, indent=2, default=str) + "\n").encode())


class SyncRun:
    """State of one invocation; `execute()` returns the exit code."""

    def __init__(
        self,
        options: SyncOptions,
        *,
        write_key: str | None,
        host: str | None,
        echo: Callable[[str], None],
        err: Callable[[str], None],
    ):
        self.o = options
        self.write_key = write_key
        self.host = host or DEFAULT_HOST
        self.redact = Redactor(write_key)
        self.echo = lambda text: echo(self.redact(text))
        self.err = lambda text: err(self.redact(text))
        self.run_id = uuid.uuid4().hex
        self.counts = Counts()
        self.signals = {"stop": False}
        self.lock_token = ""
        self.plan: plan.Plan | None = None

    # ------------------------------------------------------------------ entry
    def execute(self) -> int:
        if not self.o.dry_run and not self.write_key:
            self.err(
                "error: SEGMENT_WRITE_KEY is not set; a real sync needs it "
                "(use --dry-run to plan without sending)"
            )
            return ExitCode.USAGE
        odd = odd_character_at(self.write_key or "")
        if not self.o.dry_run and odd is not None:
            # A blank key made every space of the output "the secret" to redact, and
            # any other odd one got 401 or an encoding error, retried as a network
            # fault (exit 5); Segment's write keys are letters and digits.
            key = self.write_key or ""
            self.err(f"error: {describe_odd_character('SEGMENT_WRITE_KEY', key, odd)}")
            return ExitCode.USAGE
        length = len(self.write_key or "")
        if not self.o.dry_run and length < MIN_WRITE_KEY_LENGTH:
            # Said by its length, never echoed (nor redacted: redact.py).
            self.err(
                "error: SEGMENT_WRITE_KEY is too short to be a Segment write key "
                f"({length} character(s); Segment's have 32, and "
                f"fewer than {MIN_WRITE_KEY_LENGTH} are refused): export the write key "
                "of the Segment source (its Settings, API Keys), not a placeholder"
            )
            return ExitCode.USAGE
        try:
            target = load_target(self.o.target_name)
        except SettingsError as exc:
            self.err(f"error: {exc}")
            return ExitCode.USAGE
        try:
            require_built(target)  # the sync creates no warehouse of its own
        except NoWarehouseError as exc:
            self.err(f"error: {exc}")
            return ExitCode.ERROR  # as for a warehouse dbt has not built yet
        try:
            wh = Warehouse(target)
        except WarehouseInUseError as exc:
            self.err(f"error: {exc}")
            self.err("another process holds the warehouse file; try again when it ends")
            return ExitCode.LOCKED
        except WarehouseError as exc:
            self.err(f"error: {exc}")
            return ExitCode.ERROR
        try:
            with library_logging(self.redact), _stop_on_signals(self.signals):
                return self._run(wh, target.schema, target.name)
        except Exception as exc:
            self.err(f"error: {type(exc).__name__}: {exc}")
            return ExitCode.ERROR
        finally:
            wh.close()

    def _run(self, wh: Warehouse, schema: str, target_name: str) -> int:
        try:
            plan.check_inputs(wh, schema)
        except plan.PlanError as exc:
            self.err(f"error: {exc}")
            return ExitCode.ERROR
        if self.o.dry_run:
            if self._unknown_audiences(wh, schema):
                return ExitCode.USAGE
            return self._dry_run(wh, schema)
        installation_id = outbox.ensure(wh)
        if self._unknown_audiences(wh, schema):
            return ExitCode.USAGE  # before the run is logged: nothing was attempted
        outbox.start_run(
            wh,
            run_id=self.run_id,
            target_name=target_name,
            is_forced=self.o.force,
            is_full_resync=self.o.full_resync,
            audiences=self.o.audiences,
        )
        try:
            self.lock_token = lock.acquire(
                wh, self.run_id, timedelta(minutes=self.o.stale_lock_minutes)
            )
        except lock.LockHeldError as exc:
            self.err(f"error: {exc}")
            self._finish(wh, "lock_held", ExitCode.LOCKED, str(exc))
            return ExitCode.LOCKED
        # Holding the lock, no run that started before now can still be alive: a row it
        # left `running` belongs to a killed process.
        abandoned = outbox.abandon_running(
            wh, by_run_id=self.run_id, started_before=outbox.now_utc()
        )
        if abandoned:
            self.echo(
                f"marked {abandoned} earlier run(s) that never finished abandoned"
            )
        try:
            code, status, error = self._locked_run(wh, schema, installation_id)
        except BaseException as exc:
            self._finish(wh, "error", ExitCode.ERROR, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            lock.release(wh, self.lock_token)
        self._finish(wh, status, code, error)
        return code

    def _unknown_audiences(self, wh: Warehouse, schema: str) -> bool:
        """Say so (and return True) when an --audience names no audience of the inputs
        or of the sync's state: planned, it was an empty plan and exit 0, so a typo on a
        scheduled `--force` run silently did nothing."""
        if not self.o.audiences:
            return False
        known = plan.known_audiences(wh, schema)
        unknown = sorted(set(self.o.audiences) - set(known))
        if not unknown:
            return False
        unsynced = sorted(set(unknown) & plan.unsynced_audiences(wh, schema))
        if unsynced:
            self.err(
                f"error: --audience {', '.join(unsynced)}: not synced (is_synced: false "
                "in its yml under models/audiences/); the sync sends synced audiences "
                f"only: {', '.join(known) or 'none'}"
            )
        if missing := [key for key in unknown if key not in unsynced]:
            self.err(
                f"error: --audience {', '.join(missing)}: no such audience in the "
                f"sync's input ({schema}.{plan.MEMBERSHIPS} and its exits and skips), "
                f"dbt's {plan.REGISTRY} or the sync's state; known: "
                f"{', '.join(known) or 'none'}"
            )
        return True

    # ------------------------------------------------------------------ dry run
    def _dry_run(self, wh: Warehouse, schema: str) -> int:
        p = plan.build_plan(
            wh,
            schema=schema,
            run_id=self.run_id,
            planned_at=outbox.now_utc(),
            audiences=self.o.audiences,
            full_resync=self.o.full_resync,
        )
        refusals = self._guard(wh, schema, p)
        self.echo(f"dry run: plan for {len(p.audiences)} audience(s); nothing is sent")
        _print_plan(p, self.echo)
        samples = plan.sample_rows(wh, self.o.samples)
        if samples:
            self.echo(
                "sample payloads (ids use a placeholder installation id; emails and "
                "phones masked here, whole in the plan file):"
            )
            for sample in samples:
                shown = _contacts_masked(sample)
                self.echo(json.dumps(shown, indent=2, sort_keys=True, default=str))
        blocking = guards.blocking(refusals, self.o.force)
        if blocking:
            self.echo("a real run would refuse to send:\n" + guards.describe(blocking))
        document = p.as_dict()
        document.update(
            dry_run=True,
            transitions=p.transitions,
            limit=self.o.limit,
            refusals=[r.as_dict() for r in refusals],
            samples=samples,
        )
        # Beside dbt's own files (its target folder, in the project), wherever the
        # command was started: not a `target/` of the working directory.
        out = self.o.plan_out or dbt_target_dir() / "segment_sync_plan.json"
        _write_plan_file(out, document)
        self.echo(f"plan written to {out}")
        return ExitCode.OK

    def _guard(self, wh: Warehouse, schema: str, p: plan.Plan) -> list[guards.Refusal]:
        limits = guards.Limits(
            max_change_pct=self.o.max_change_pct,
            min_audience_size=self.o.min_audience_size,
            max_staleness_hours=self.o.max_staleness_hours,
            dbt_run_results=self.o.dbt_run_results,
        )
        return (
            guards.check_holdout(wh, schema)
            + guards.check_plan(p, limits, outbox.now_utc())
            + guards.check_dbt_results(self.o.dbt_run_results)
            + guards.check_data_health(self.o.dbt_run_results)
            + guards.check_dbt_empty(self.o.dbt_run_results)
            # One as_of refusal: the tables' own stamp, else dbt's last results.
            + (
                guards.check_inputs_as_of(wh, schema)
                or guards.check_dbt_as_of(self.o.dbt_run_results)
            )
            + guards.check_as_of_went_back(
                guards.inputs_built_as_of(wh, schema), outbox.last_decided_as_of(wh)
            )
        )

    # ------------------------------------------------------------------ real run
    def _locked_run(
        self, wh: Warehouse, schema: str, installation_id: str
    ) -> tuple[int, str, str | None]:
        started = time.monotonic()
        if self.o.retry_dead_letters:
            outbox.requeue_dead_letters(wh, self.o.audiences)
        p = self.plan = plan.build_plan(
            wh,
            schema=schema,
            run_id=self.run_id,
            planned_at=outbox.now_utc(),
            audiences=self.o.audiences,
            full_resync=self.o.full_resync,
        )
        _print_plan(p, self.echo)
        refusals = self._guard(wh, schema, p)
        blocking = guards.blocking(refusals, self.o.force)
        if blocking:
            message = "refusing to send:\n" + guards.describe(blocking)
            self.err(message)
            if any(r.overridable for r in blocking):
                self.err("check the data, then rerun with --force to send anyway")
            return ExitCode.REFUSED, "refused", message
        if refusals:
            self.echo("--force: sending despite:\n" + guards.describe(refusals))
        # One transaction: the decision the guards accepted and the messages that carry
        # it out land together, or neither does.
        built_as_of = guards.inputs_built_as_of(wh, schema)
        with wh.transaction():
            outbox.decide(wh)
            if built_as_of is not None:
                outbox.record_decided_as_of(wh, self.run_id, built_as_of)
            planned = outbox.enqueue(
                wh,
                installation_id=installation_id,
                run_id=self.run_id,
                created_at=outbox.now_utc(),
                limit=self.o.limit,
            )
        pending = outbox.count_pending(wh, self.o.audiences)
        self.counts.planned = pending
        if self.o.plan_out:
            document = p.as_dict()
            document.update(
                dry_run=False, messages_new=planned, messages_pending=pending
            )
            _write_plan_file(self.o.plan_out, document)
        self.echo(
            f"outbox: {planned} new message(s), {pending - planned} pending from "
            f"earlier runs; {p.deferred} deferred transition(s)"
        )
        planned_in = time.monotonic() - started
        fatal = self._send_pending(wh) if pending else None
        self._echo_counts()
        self.echo(
            f"timings: plan + outbox {planned_in:.1f} s, send + record "
            f"{time.monotonic() - started - planned_in:.1f} s"
        )
        if fatal:
            return ExitCode.PARTIAL, "partial", f"stopped: {fatal}"
        if self.signals["stop"]:
            return ExitCode.PARTIAL, "interrupted", "stopped by a signal"
        if self.counts.failed or self.counts.dead_lettered:
            return ExitCode.PARTIAL, "partial", None
        # Sent rows are only an audit trail once their transition is in audience_state;
        # keep OUTBOX_RETENTION_DAYS of them (Segment's own dedupe window is ~24 h).
        outbox.prune(wh, outbox.now_utc() - timedelta(days=OUTBOX_RETENTION_DAYS))
        return ExitCode.OK, "ok", None

    def _send_pending(self, wh: Warehouse) -> str | None:
        """Send pending outbox rows group by group; returns a fatal error, if any.

        Pipelined: while the sender uploads group N, this thread fetches and prepares
        group N+1, and records group N while N+1 is uploading. Groups never overlap on
        the wire (submit waits for the previous group to complete), so each failure
        report belongs to exactly one group. With several sending processes
        (workers.py) only this process touches the warehouse."""
        # Imported here: the library (requests, jwt, cryptography) costs ~0.5 s of start-up
        # that a run with nothing to send should not pay.
        from scripts.segment_sync import workers

        assert self.write_key is not None
        config = workers.SenderConfig(
            write_key=self.write_key,
            host=self.host,
            upload_size=self.o.batch_size,
            group_size=self.o.group_size,
            max_rps=self.o.max_rps,
            max_retries=self.o.max_retries,
            timeout=self.o.timeout,
            gzip=self.o.gzip,
            max_rate_limit_seconds=self.o.max_rate_limit_seconds,
        )
        count = workers.choose_workers(self.o.workers, self.counts.planned)
        if count > 1:
            self.echo(
                f"sending with {count} processes, at most {self.o.max_rps / count:g} "
                "requests/s each"
            )
        sender = workers.open_sender(config, self.redact, count)
        builder = payloads.PayloadBuilder()
        fatal = None
        try:
            page = self._fetch_page(wh, builder, 0)
            if page is None:
                return None
            sender.submit(sender.prepare(page.rows))
            while True:
                following = None
                if not self.signals["stop"]:
                    following = self._fetch_page(wh, builder, page.last_seq)
                    if following is not None:
                        following.prepared = sender.prepare(following.rows)
                result = sender.complete()
                if result.fatal:
                    fatal = result.fatal
                    self.err(f"error: sending stopped: {fatal}")
                    following = None
                if following is not None and self.signals["stop"]:
                    following = None
                if following is not None:
                    sender.submit(following.prepared)
                self._record(wh, page, result)
                lock.heartbeat(wh, self.lock_token)
                if following is None:
                    break
                page = following
        finally:
            sender.close()
        return fatal

    def _fetch_page(
        self, wh: Warehouse, builder: payloads.PayloadBuilder, after_seq: int
    ) -> _Page | None:
        """The next pending rows; rows that might exceed 32 KB are built and checked."""
        rows = outbox.next_page(
            wh,
            after_seq=after_seq,
            group_size=self.o.group_size,
            audiences=self.o.audiences,
        )
        if not rows:
            return None
        page = _Page(rows=rows, first_seq=rows[0][0], last_seq=rows[-1][0])
        check = payloads.may_be_oversized
        if any(map(check, rows)):
            page.rows = []
            for row in rows:
                if check(row):
                    message = payloads.build_from_row(builder, row)
                    if payloads.oversized(message):
                        page.oversized.append((row, message))
                        continue
                page.rows.append(row)
        return page

    def _record(self, wh: Warehouse, page: _Page, result: GroupResult) -> None:
        """One transaction per group: outcomes, dead letters, state."""
        known = outbox.details(
            wh, {row[1] for row, _ in page.oversized} | set(result.failed)
        )
        outcome = outcomes.classify(
            page.rows,
            page.oversized,
            result,
            known,
            max_attempts=self.o.max_attempts,
            redact=self.redact,
        )
        outbox.record_group(
            wh,
            first_seq=page.first_seq,
            last_seq=page.last_seq,
            audiences=self.o.audiences,
            outcome=outcome,
            known=known,
            run_id=self.run_id,
        )
        dead_ids = outcome.dead_ids
        self.counts.sent += len(result.confirmed)
        self.counts.dead_lettered += len(dead_ids)
        self.counts.failed += len(set(result.failed) - dead_ids)
        self.counts.refused += sum(len(ids) for ids in outcome.refused.values())

    def _echo_counts(self) -> None:
        c = self.counts
        self.echo(
            f"sent {c.sent} of {c.planned} pending message(s); {c.failed} failed "
            f"(retried next run), {c.dead_lettered} dead-lettered"
        )

    def _finish(self, wh: Warehouse, status: str, code: int, error: str | None) -> None:
        c = self.counts
        skipped = (
            self.plan.skipped_by_reason
            if self.plan
            else dict.fromkeys(plan.SKIP_REASONS, 0)
        )
        outbox.finish_run(
            wh,
            self.run_id,
            outbox.RunOutcome(
                status=status,
                exit_code=int(code),
                planned=c.planned,
                sent=c.sent,
                failed=c.failed,
                dead_lettered=c.dead_lettered,
                skipped_missing_user_id=skipped["missing_user_id"],
                skipped_missing_identifier=skipped["missing_identifier"],
                skipped_duplicate_identity=skipped["duplicate_identity"],
                deferred=self.plan.deferred if self.plan else 0,
                error=self.redact(error)[:2000] if error else None,
            ),
        )


def run(
    options: SyncOptions,
    *,
    write_key: str | None,
    host: str | None,
    echo: Callable[[str], None] = click.echo,
    err: Callable[[str], None] | None = None,
) -> int:
    error_echo = err or (lambda text: click.echo(text, err=True))
    return SyncRun(
        options, write_key=write_key, host=host, echo=echo, err=error_echo
    ).execute()
