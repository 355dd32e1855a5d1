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

import contextlib
import json
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scripts.segment_sync import guards, lock, payloads, plan, state
from scripts.segment_sync.redact import Redactor, library_logging
from scripts.settings import SettingsError, load_target
from scripts.warehouse import Warehouse, WarehouseError

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


@dataclass(frozen=True)
class _Details:
    transition_id: str
    audience_key: str
    user_id: str
    call_type: str
    attempts: int


@dataclass
class Counts:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    refused: int = 0


@contextmanager
def _stop_on_signals(flag: dict[str, bool]) -> Iterator[None]:
    """SIGTERM/SIGINT finish the current group, flush, record and exit cleanly."""

    def handler(signum: int, _frame: Any) -> None:
        flag["stop"] = True
        click.echo(
            f"received signal {signum}: finishing the current group, then stopping",
            err=True,
        )

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        # ValueError: not the main thread (embedded use); no handler there.
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_plan(p: plan.Plan, echo: Callable[[str], None]) -> None:
    header = (
        f"{'audience':<32} {'current':>8} {'desired':>8} {'enter':>7} {'exit':>7} "
        f"{'unchanged':>9} {'deferred':>8} {'resync':>7} {'skipped':>8}"
    )
    echo(header)
    for key in sorted(p.audiences):
        a = p.audiences[key]
        echo(
            f"{key:<32} {a.current_members:>8} {a.desired_members:>8} {a.enter:>7} "
            f"{a.exit:>7} {a.unchanged:>9} {a.deferred:>8} {a.resync:>7} "
            f"{a.skipped:>8}"
        )
    if not p.audiences:
        echo("(no audiences in the sync input or state)")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8"
    )


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
        try:
            target = load_target(self.o.target_name)
        except SettingsError as exc:
            self.err(f"error: {exc}")
            return ExitCode.USAGE
        try:
            wh = Warehouse(target)
        except WarehouseError as exc:
            self.err(f"error: {exc}")
            if "lock" in str(exc).lower():
                self.err(
                    "another process holds the warehouse file; try again when it ends"
                )
                return ExitCode.LOCKED
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
            return self._dry_run(wh, schema)
        installation_id = state.ensure_state(wh)
        started = state.now_utc()
        wh.execute(
            f"insert into {state.RUNS} (run_id, target_name, started_at, status, "
            "is_forced, is_full_resync, audiences) values (%s, %s, %s, %s, %s, %s, %s)",
            (
                self.run_id,
                target_name,
                started,
                "running",
                self.o.force,
                self.o.full_resync,
                ",".join(self.o.audiences) or None,
            ),
        )
        try:
            self.lock_token = lock.acquire(
                wh, self.run_id, timedelta(minutes=self.o.stale_lock_minutes)
            )
        except lock.LockHeldError as exc:
            self.err(f"error: {exc}")
            self._finish(wh, "lock_held", ExitCode.LOCKED, str(exc))
            return ExitCode.LOCKED
        try:
            code, status, error = self._locked_run(wh, schema, installation_id)
        except BaseException as exc:
            self._finish(wh, "error", ExitCode.ERROR, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            lock.release(wh, self.lock_token)
        self._finish(wh, status, code, error)
        return code

    # ------------------------------------------------------------------ dry run
    def _dry_run(self, wh: Warehouse, schema: str) -> int:
        present = state.state_exists(wh)
        p = plan.build_plan(
            wh,
            schema=schema,
            run_id=self.run_id,
            planned_at=state.now_utc(),
            audiences=self.o.audiences,
            full_resync=self.o.full_resync,
            state_present=present,
        )
        refusals = self._guard(wh, schema, p)
        self.echo(f"dry run: plan for {len(p.audiences)} audience(s); nothing is sent")
        _print_plan(p, self.echo)
        samples = plan.sample_rows(wh, self.o.samples)
        if samples:
            self.echo("sample payloads (ids use a placeholder installation id):")
            for sample in samples:
                self.echo(json.dumps(sample, indent=2, sort_keys=True, default=str))
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
        out = self.o.plan_out or Path("target") / "segment_sync_plan.json"
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
            + guards.check_plan(p, limits, state.now_utc())
            + guards.check_dbt_results(self.o.dbt_run_results)
        )

    # ------------------------------------------------------------------ real run
    def _locked_run(
        self, wh: Warehouse, schema: str, installation_id: str
    ) -> tuple[int, str, str | None]:
        started = time.monotonic()
        if self.o.retry_dead_letters:
            self._requeue_dead_letters(wh)
        p = self.plan = plan.build_plan(
            wh,
            schema=schema,
            run_id=self.run_id,
            planned_at=state.now_utc(),
            audiences=self.o.audiences,
            full_resync=self.o.full_resync,
            state_present=True,
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
        with wh.transaction():
            planned = plan.write_outbox(
                wh,
                installation_id=installation_id,
                run_id=self.run_id,
                created_at=state.now_utc(),
                limit=self.o.limit,
            )
        pending = int(
            wh.scalar(
                f"select count(*) from {state.OUTBOX} where status = 'pending'"
                + self._outbox_filter()[0],
                self._outbox_filter()[1],
            )
            or 0
        )
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
        self._prune_outbox(wh)
        return ExitCode.OK, "ok", None

    def _prune_outbox(self, wh: Warehouse) -> None:
        """Sent rows are only an audit trail once their transition is in audience_state;
        keep OUTBOX_RETENTION_DAYS of them (Segment's own dedupe window is ~24 h)."""
        cutoff = state.now_utc() - timedelta(days=OUTBOX_RETENTION_DAYS)
        wh.execute(
            f"delete from {state.OUTBOX} where status = 'sent' and sent_at < %s",
            (cutoff,),
        )

    def _outbox_filter(self) -> tuple[str, list[str]]:
        return plan._audience_filter("audience_key", self.o.audiences)

    def _requeue_dead_letters(self, wh: Warehouse) -> None:
        where, params = self._outbox_filter()
        with wh.transaction():
            wh.execute(
                f"update {state.OUTBOX} set status = 'pending', attempts = 0 "
                f"where status = 'dead'{where}",
                params,
            )
            wh.execute(f"delete from {state.DEAD_LETTERS} where true{where}", params)

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
        """The next pending rows by seq range (an index/zone-map range scan, not a sort of
        the whole outbox); rows that might exceed 32 KB are built and checked here."""
        where, params = self._outbox_filter()
        start = wh.scalar(
            f"select min(seq) from {state.OUTBOX} "
            f"where status = 'pending' and seq > %s{where}",
            [after_seq, *params],
        )
        if start is None:
            return None
        # Only what the payloads need: every column fetched costs per row, and the
        # bookkeeping columns are read back for the few rows that fail (_details).
        rows = wh.query(
            f"select {payloads.outbox_columns_sql(wh.dialect)} from {state.OUTBOX} "
            f"where status = 'pending' and seq >= %s and seq < %s{where} order by seq",
            [start, start + self.o.group_size, *params],
        )
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
        oversized = page.oversized
        first_seq, last_seq = page.first_seq, page.last_seq
        now = state.now_utc()
        by_id = self._details(wh, {row[1] for row, _ in oversized} | set(result.failed))
        # Payloads are rebuilt only for the rows refused on their own (dead letters).
        row_level = {mid for mid, f in result.failed.items() if f.row_level}
        builder = payloads.PayloadBuilder()
        payload_by_id = {
            row[1]: payloads.build_from_row(builder, row)
            for row in (page.rows if row_level else ())
            if row[1] in row_level
        }
        transient: dict[str, list[str]] = defaultdict(list)
        refused: dict[str, list[str]] = defaultdict(list)
        for message_id, failure in result.failed.items():
            (refused if failure.row_level else transient)[failure.reason].append(
                message_id
            )
        dead: list[tuple[str, str, dict[str, Any]]] = []
        for row, message in oversized:
            size = len(json.dumps(message).encode("utf-8"))
            reason = f"event is {size} bytes; Segment's limit is 32 KB"
            refused[reason].append(row[1])
            dead.append((row[1], reason, message))
        for reason, ids in refused.items():
            for message_id in ids:
                if message_id in payload_by_id and (
                    by_id[message_id].attempts + 1 >= self.o.max_attempts
                ):
                    dead.append((message_id, reason, payload_by_id[message_id]))
        dead_ids = {d[0] for d in dead}
        with wh.transaction():
            for reason, ids in transient.items():
                wh.execute(
                    f"update {state.OUTBOX} set last_error = %s where "
                    + state.in_list(wh, "message_id"),
                    (reason, ids),
                )
            for reason, ids in refused.items():
                wh.execute(
                    f"update {state.OUTBOX} set last_error = %s, attempts = attempts + 1 "
                    "where " + state.in_list(wh, "message_id"),
                    (reason, ids),
                )
            if dead:
                wh.execute(
                    f"update {state.OUTBOX} set status = 'dead' where "
                    + state.in_list(wh, "message_id"),
                    (sorted(dead_ids),),
                )
                wh.executemany(
                    f"insert into {state.DEAD_LETTERS} (message_id, transition_id, run_id, "
                    "audience_key, user_id, call_type, reason, attempts, payload, "
                    f"dead_lettered_at) values (%s, %s, %s, %s, %s, %s, %s, %s, "
                    f"cast(%s as {wh.json_type}), %s)",
                    [
                        (
                            message_id,
                            by_id[message_id].transition_id,
                            self.run_id,
                            by_id[message_id].audience_key,
                            by_id[message_id].user_id,
                            by_id[message_id].call_type,
                            self.redact(reason),
                            by_id[message_id].attempts + 1,
                            json.dumps(payload),
                            now,
                        )
                        for message_id, reason, payload in dead
                    ],
                )
            not_sent = sorted(set(result.failed) | dead_ids)
            # Only the audiences this run fetched: with --audience, pending rows of other
            # audiences can sit in the same seq range and were never sent.
            exclude, params = self._outbox_filter()
            params = [now, first_seq, last_seq, *params]
            if not_sent:
                exclude += " and not (" + state.in_list(wh, "message_id") + ")"
                params.append(not_sent)
            wh.execute(
                f"update {state.OUTBOX} set status = 'sent', sent_at = %s "
                f"where seq between %s and %s and status = 'pending'{exclude}",
                params,
            )
            self._apply_state(wh, first_seq, last_seq, now)
        self.counts.sent += len(result.confirmed)
        self.counts.dead_lettered += len(dead_ids)
        self.counts.failed += len(set(result.failed) - dead_ids)
        self.counts.refused += sum(len(ids) for ids in refused.values())

    def _details(self, wh: Warehouse, message_ids: set[str]) -> dict[str, _Details]:
        if not message_ids:
            return {}
        rows = wh.query(
            "select message_id, transition_id, audience_key, user_id, call_type, attempts "
            f"from {state.OUTBOX} where " + state.in_list(wh, "message_id"),
            (sorted(message_ids),),
        )
        return {row[0]: _Details(*row[1:]) for row in rows}

    def _apply_state(
        self, wh: Warehouse, first_seq: int, last_seq: int, now: Any
    ) -> None:
        """Advance audience_state for transitions whose every message is now sent.

        A transition's messages have adjacent seq numbers, so all of them lie within one
        of the group's range: the scan stays near the group, not over the outbox."""
        wh.execute(
            f"""
            insert into {state.AUDIENCE_STATE} (
                audience_key, user_id, audience_name, audience_version, is_member,
                generation, entered_at, exited_at, exit_reason, last_transition_id,
                last_run_id, updated_at
            )
            with nearby as (
                select transition_id, seq, status, call_type
                from {state.OUTBOX}
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
            )
            select
                outbox.audience_key, outbox.user_id, outbox.audience_name,
                outbox.audience_version, outbox.is_member, outbox.generation,
                case when outbox.is_member then outbox.occurred_at end,
                case when not outbox.is_member then outbox.occurred_at end,
                outbox.exit_reason, outbox.transition_id, %s, cast(%s as timestamp)
            from {state.OUTBOX} as outbox
            inner join complete on outbox.transition_id = complete.transition_id
            where outbox.message_id = outbox.transition_id
                and outbox.seq between %s and %s
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
                self.run_id,
                now,
                first_seq - 1,
                last_seq + 1,
            ),
        )

    def _echo_counts(self) -> None:
        c = self.counts
        self.echo(
            f"sent {c.sent} of {c.planned} pending message(s); {c.failed} failed "
            f"(retried next run), {c.dead_lettered} dead-lettered"
        )

    def _finish(self, wh: Warehouse, status: str, code: int, error: str | None) -> None:
        c = self.counts
        wh.execute(
            f"update {state.RUNS} set finished_at = %s, status = %s, exit_code = %s, "
            "count_planned = %s, count_sent = %s, count_failed = %s, "
            "count_dead_lettered = %s, count_skipped_missing_user_id = %s, "
            "count_skipped_missing_identifier = %s, "
            "count_skipped_duplicate_identity = %s, "
            "count_deferred = %s, error = %s where run_id = %s",
            (
                state.now_utc(),
                status,
                int(code),
                c.planned,
                c.sent,
                c.failed,
                c.dead_lettered,
                *(
                    self.plan.skipped_by_reason[reason] if self.plan else 0
                    for reason in plan.SKIP_REASONS
                ),
                self.plan.deferred if self.plan else 0,
                self.redact(error)[:2000] if error else None,
                self.run_id,
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
