"""`audiences run`: load every new landing file → `dbt build` → sync, as one scheduled tick."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import click

from scripts.alerts import repeats
from scripts.alerts.message import Alert
from scripts.alerts.webhook import Alerter
from scripts.cli_options import (
    DEFAULT_MAX_REJECT_PCT,
    fail,
    finite_hours,
    finite_minutes,
    finite_seconds,
    target_option,
)
from scripts.run import (
    findings,
    key_checks,
    loop,
    record,
    storage_vacuum,
    unreached_alerts,
    warm_dbt,
)
from scripts.run.lock import LockFileError, RunLockedError, exclusive
from scripts.run.steps import (
    Launch,
    StepResult,
    audiences_command,
    dbt_command,
    run_step,
)
from scripts.settings import (
    SettingsError,
    dbt_run_results,
    load_target,
    project_dir,
)
from scripts.warehouse import WarehouseError, connect

DEFAULT_LOCK_FILE = ".audiences-run.lock"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3
EXIT_LOCKED = 4
EXIT_PARTIAL = 5
EXIT_FAILED = 6
# One exit code for the tick: the most serious outcome of any step wins.
SEVERITY = (EXIT_ERROR, EXIT_FAILED, EXIT_PARTIAL, EXIT_LOCKED, EXIT_ATTENTION)

SYNC_EXIT = {0: EXIT_OK, 3: EXIT_ATTENTION, 4: EXIT_LOCKED, 5: EXIT_PARTIAL}

EPILOG = """\b
Examples:
  audiences run --webhooks landing/webhooks --orders landing/orders
  AUDIENCES_WEBHOOKS_DIR=landing/webhooks AUDIENCES_ORDERS_DIR=landing/orders \\
  SEGMENT_WRITE_KEY=... AUDIENCES_ALERT_WEBHOOK_URL=https://hooks.slack.com/... \\
      audiences run --target postgres
  audiences run --webhooks landing/webhooks --dry-run    # sync only plans
  audiences run --no-build --no-sync --orders landing/orders
  audiences run --orders landing/orders --orders-settle-seconds 300  # slow writer
  audiences run --webhooks landing/webhooks --vacuum-every 168  # vacuum weekly
  audiences run --webhooks landing/webhooks --every 15   # a tick every 15 minutes
  audiences run --orders landing/orders --alert-repeat-hours 24  # daily reminders

\b
Steps: load each given landing directory (files already loaded are skipped by
their sha256) -> dbt build -> audiences sync segment. A load whose file fails
stops the tick before the build; a failed build still runs the sync, whose
guardrails read dbt's run_results.json and refuse on failed sync-model or
data-health tests. Each tick writes one row to audiences_ops.runs.

\b
SIGTERM or Ctrl-C: the running step gets it (a build stops, the sync finishes
its group); no further step starts; the tick records its row and exits. A
second one outside a step ends the tick at once (its row stays `running`).
SIGHUP (the terminal closed, an ssh session dropped) stops it the same way,
with its output from then on sent to /dev/null; under nohup it runs on.

\b
With --every, the command keeps running: a tick every MINUTES until SIGTERM,
Ctrl-C or SIGHUP (then exit 0; each tick's outcome is in its audiences_ops.runs row), dbt
imported once and each build forked from this process (about 2 s less a tick;
docs/scheduling.md). With --ticks N it exits after N ticks, with the last one's
code.

\b
Exit codes (the most serious step wins; docs/scheduling.md):
  0  ok: every step succeeded
  1  error: a step crashed or could not start, or the warehouse is unreachable
  2  usage: bad option, unknown target, a landing path that is a file
  3  attention: a load rejected more than --max-reject-pct, or the sync was
     refused by a guardrail (nothing sent)
  4  locked: another tick (or another sync) is running; nothing was done
  5  partial: the sync did not deliver everything (failed or dead-lettered
     messages), or a signal stopped the tick (passed on to the running
     step); pending messages are resent by the next tick
  6  failed: a landing file failed to load, or a landing folder does not
     exist (build and sync skipped, load_failed alerted), or dbt build failed

\b
Alerts: with AUDIENCES_ALERT_WEBHOOK_URL set, one Slack-compatible message
per cause per tick (docs/alerts.md); a cause the ticks keep raising is posted
again every --alert-repeat-hours, and once as resolved when it clears. A
failed post never fails the tick.
"""


def _worst(codes: list[int]) -> int:
    for code in SEVERITY:
        if code in codes:
            return code
    return EXIT_OK


@click.command("run", epilog=EPILOG)
@target_option
@click.option(
    "--webhooks",
    "webhooks_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AUDIENCES_WEBHOOKS_DIR",
    show_envvar=True,
    help="Landing directory of Customer.io webhook files (audiences serve-webhooks).",
)
@click.option(
    "--segment-events",
    "segment_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AUDIENCES_SEGMENT_EVENTS_DIR",
    show_envvar=True,
    help="Landing directory of Segment-format event exports.",
)
@click.option(
    "--orders",
    "orders_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="AUDIENCES_ORDERS_DIR",
    show_envvar=True,
    help="Landing directory of order exports.",
)
@click.option(
    "--orders-settle-seconds",
    type=click.FloatRange(min=0),
    callback=finite_seconds,
    envvar="AUDIENCES_ORDERS_SETTLE_SECONDS",
    show_envvar=True,
    default=None,
    help="Passed to `audiences load orders --settle-seconds`: how long an orders CSV "
    "ending mid-line must stay unchanged before it loads [default: that of "
    "`audiences load orders --help`].",
)
@click.option(
    "--max-reject-pct",
    type=click.FloatRange(0, 100),
    default=DEFAULT_MAX_REJECT_PCT,
    show_default=True,
    help="Passed to each load: above this share of rejected records the tick alerts.",
)
@click.option(
    "--vacuum-every",
    "vacuum_every_hours",
    # At most ten years: much more would overflow a timedelta.
    type=click.FloatRange(min=0, max=87600),
    callback=finite_hours,
    envvar="AUDIENCES_VACUUM_EVERY_HOURS",
    show_envvar=True,
    default=storage_vacuum.DEFAULT_EVERY_HOURS,
    show_default=True,
    metavar="HOURS",
    help="DuckDB: the build vacuums the storage (merges row groups that lost rows) "
    "on the first tick this long after the last that did; the others skip it, which "
    "saves about a second a tick at a brand's size. 0: every tick "
    "(docs/scheduling.md).",
)
@click.option(
    "--alert-repeat-hours",
    # At most ten years: much more would overflow a timedelta.
    type=click.FloatRange(min=0, max=87600),
    callback=finite_hours,
    envvar="AUDIENCES_ALERT_REPEAT_HOURS",
    show_envvar=True,
    default=repeats.DEFAULT_REPEAT_HOURS,
    show_default=True,
    metavar="HOURS",
    help="A cause that every tick raises again is posted once, then again this long "
    "after its last post; when it clears, one 'Resolved' message. 0: post it every "
    "tick (docs/alerts.md).",
)
@click.option(
    "--every",
    "every_minutes",
    # At most a year: a loop that ticks less often is better started by a scheduler.
    # At least 0.01 (0.6 s, what the tests use): back-to-back ticks over a broken
    # warehouse would alert without a pause.
    type=click.FloatRange(min=0.01, max=525600),
    callback=finite_minutes,
    # No environment variable: in a file that cron's ticks also read, it would turn
    # each of them into a loop that never ends.
    default=None,
    metavar="MINUTES",
    help="Keep running: a tick every MINUTES (from the start of one to the start of "
    "the next) until SIGTERM, Ctrl-C or SIGHUP, which exit 0. dbt stays imported and each "
    "build is forked from this process while it runs a single thread, which saves "
    "dbt's start-up on every tick.",
)
@click.option(
    "--ticks",
    type=click.IntRange(min=1),
    default=None,
    help="With --every: stop after this many ticks.",
)
@click.option("--no-build", is_flag=True, help="Skip `dbt build` (it runs elsewhere).")
@click.option("--no-sync", is_flag=True, help="Skip the Segment sync.")
@click.option("--dry-run", is_flag=True, help="Sync only plans; nothing is sent.")
@click.option(
    "--lock-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AUDIENCES_RUN_LOCK",
    show_envvar=True,
    default=None,
    help="File locked for the tick, holding its pid and nothing else [default: "
    ".audiences-run.lock in the project, outside target/, which `dbt clean` "
    "empties].",
)
def run(
    target_name: str | None,
    webhooks_dir: Path | None,
    segment_dir: Path | None,
    orders_dir: Path | None,
    orders_settle_seconds: float | None,
    max_reject_pct: float,
    vacuum_every_hours: float,
    alert_repeat_hours: float,
    every_minutes: float | None,
    ticks: int | None,
    no_build: bool,
    no_sync: bool,
    dry_run: bool,
    lock_file: Path | None,
) -> None:
    """One scheduled tick: load new landing files, dbt build, sync to Segment.

    \b
    Run it from cron, GitHub Actions or an orchestrator, or keep it running with
    --every under a service manager (docs/scheduling.md). It is safe to run as
    often as you like: loads skip files already loaded, the build is idempotent
    and the sync sends only changes, exactly once.
    """
    webhooks_dir, segment_dir, orders_dir, lock_file = _work_in_the_project(
        webhooks_dir, segment_dir, orders_dir, lock_file
    )
    try:
        target = load_target(target_name)
    except SettingsError as exc:
        fail(str(exc), EXIT_USAGE)
    for label, path in (
        ("--webhooks", webhooks_dir),
        ("--segment-events", segment_dir),
        ("--orders", orders_dir),
    ):
        if path is None or path.is_dir():
            continue
        if path.exists():
            fail(f"{label} {path} is not a directory", EXIT_USAGE)
        # Missing: a path mistyped in a schedule, a folder renamed or its mount point
        # gone. That is the tick's failure, not a usage error: its load of the folder
        # fails, and the tick records itself and alerts (load_failed), as when it
        # vanishes under a loop. (A volume not mounted on an existing mount point is an
        # empty folder, which no tick can tell from a quiet day.)
        click.echo(
            f"warning: {label} {path} does not exist: its load will fail, and the tick "
            "with it (alerted as load_failed)",
            err=True,
        )
    if ticks is not None and every_minutes is None:
        fail("--ticks counts the ticks of a loop: give --every too", EXIT_USAGE)
    project = project_dir()
    # Not in target/: `dbt clean` removes it, and a tick started after that would lock
    # a new file at the same path beside one still running.
    lock_path = lock_file or project / DEFAULT_LOCK_FILE
    options = {
        "loads": [
            ("webhooks", webhooks_dir, []),
            ("segment-events", segment_dir, []),
            ("orders", orders_dir, _settle_args(orders_settle_seconds)),
        ],
        "max_reject_pct": max_reject_pct,
        "build": not no_build,
        "sync": not no_sync,
        "dry_run": dry_run,
    }
    vacuum_every = (
        timedelta(hours=vacuum_every_hours) if target.type == "duckdb" else None
    )

    # A loop's ticks also keep their open alerts here: a tick that cannot reach the
    # warehouse cannot read them from its runs table (scripts/alerts/repeats.py).
    remembered: dict[str, repeats.OpenAlert] = {}

    # A one-shot tick is a new process each time: what it could not keep in the
    # warehouse it keeps in a file beside the lock, one per target, read and written
    # under the lock. Every tick reads it (a loop started after one-shot ticks resolves
    # what they left; its own memory wins), and any tick that records itself removes it.
    unreached = unreached_alerts.path_beside(lock_path, target.name)
    one_shot = every_minutes is None

    def one_tick(
        launch: Launch | None = None, stopping: Callable[[], bool] | None = None
    ) -> loop.TickOutcome:
        with exclusive(lock_path) as lock:
            for cause, kept in unreached_alerts.read(unreached).items():
                remembered.setdefault(cause, kept)
            tick = Tick(target.name, project, lock)
            tick.vacuum_every = vacuum_every
            tick.alert_repeat = timedelta(hours=alert_repeat_hours)
            tick.remembered = remembered
            tick.dbt_launch = launch
            tick.stopping = stopping or tick.stopping
            code = tick.execute(**options)
            if tick.recorded:
                unreached_alerts.forget(unreached)
            elif one_shot:
                unreached_alerts.keep(unreached, remembered)
        return loop.TickOutcome(code, any(step.interrupted for step in tick.steps))

    def lock_unusable(exc: LockFileError, where: str) -> None:
        """A lock file the tick cannot use is the operator's to fix: said, alerted."""
        click.echo(f"error: {exc}", err=True)
        alerter = Alerter(f"{where} on target {target.name}")
        alerter.add(Alert("run_error", [str(exc)], "audiences run --help"))
        alerter.flush()

    if every_minutes is None:
        # SIGTERM, SIGINT or SIGHUP outside a step (between two, or while the tick records
        # itself) ends the tick before its next step, recorded as a stop, instead of
        # killing it half recorded, or just as it has started a step that would then
        # run on alone, holding the lock.
        stop = loop.Stop()
        try:
            with loop.stopped_by_signals(stop):
                outcome = one_tick(stopping=stop.is_set)
        except RunLockedError as exc:
            fail(str(exc), EXIT_LOCKED)
        except LockFileError as exc:
            lock_unusable(exc, "audiences run")
            sys.exit(EXIT_ERROR)
        finally:
            stop.close()
        sys.exit(outcome.exit_code)

    preloaded = ""
    if not no_build:
        try:
            preloaded = f"; dbt imported once ({warm_dbt.preload(target.type):.1f} s)"
        except ImportError as exc:  # each build then reports it, as a one-shot tick's
            preloaded = f"; dbt could not be imported ({exc}), each build started anew"
    click.echo(
        f"loop: a tick every {every_minutes:g} min until SIGTERM or Ctrl-C{preloaded}"
    )
    launch = warm_dbt.launcher(click.echo)
    stop = loop.Stop()  # set by the stop signals, for the loop and its ticks

    def loop_tick() -> loop.TickOutcome:
        try:
            return one_tick(launch, stop.is_set)
        except RunLockedError as exc:
            click.echo(f"error: {exc}", err=True)
            return loop.TickOutcome(EXIT_LOCKED, False)
        except LockFileError as exc:
            lock_unusable(exc, "audiences run --every")
            return loop.TickOutcome(EXIT_ERROR, False)
        except Exception as exc:
            # Outside the tick's own handling (the settings, a bug): alert as
            # for a tick that crashed, and let the loop report it and go on.
            alerter = Alerter(f"audiences run --every on target {target.name}")
            alerter.add(
                Alert(
                    "run_error",
                    [f"{type(exc).__name__}: {exc}"],
                    "audiences run --help",
                )
            )
            alerter.flush()
            raise

    try:
        code = loop.run_every(
            loop_tick,
            every_minutes * 60,
            ticks=ticks,
            echo=click.echo,
            stop=stop,
            error_code=EXIT_ERROR,
        )
    finally:
        stop.close()
    sys.exit(code)


def _work_in_the_project(*paths: Path | None) -> list[Path | None]:
    """Move the tick into the project folder, as `cd <project> && audiences run` does;
    returns `paths` (the command line's) made absolute first, from where it started.

    cron starts a command in the home folder. Started there with $DBT_PROJECT_DIR, the
    tick used to resolve a relative warehouse path (the default `warehouse.duckdb`
    among them) against the home folder, loading every landing file into a new, empty
    warehouse and sending every member to Segment again under new message ids, while its
    lock and dbt's files stayed in the project; and its steps (`python -m scripts`)
    imported whatever `scripts` lay in that folder (red team, 2026-12-07). In the
    project, every relative path the tick, its loads, its build and its sync read is
    the project's, as in the `cd` form. $DBT_PROJECT_DIR and $DBT_PROFILES_DIR, if
    relative, are made absolute from where the tick started, for its steps too."""
    absolute = [None if path is None else path.absolute() for path in paths]
    project = project_dir()
    for name in ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR"):
        value = os.environ.get(name)
        if value and not Path(value).is_absolute():
            os.environ[name] = str(Path(value).resolve())
    try:
        os.chdir(project)
    except OSError as exc:
        fail(f"cannot work in the project folder {project}: {exc}", EXIT_USAGE)
    return absolute


def _settle_args(seconds: float | None) -> list[str]:
    """The orders loader's own default stays its own unless the tick is given one."""
    return [] if seconds is None else ["--settle-seconds", repr(seconds)]


NO_RESULTS = (
    "the sync did not run: `dbt build` wrote no run_results.json of its own (killed or "
    "crashed?), so its checks cannot be read; the next tick builds and syncs again"
)


class Interrupted(Exception):  # noqa: N818 (a stop, not an error)
    """A signal stopped a step; the tick records itself and runs no further step."""


class Tick:
    def __init__(self, target_name: str, project: Path, lock_fd: int | None = None):
        self.target_name = target_name
        self.project = project
        # Each step inherits the tick's lock (scripts/run/lock.py).
        self.lock_fds = () if lock_fd is None else (lock_fd,)
        self.run_id = uuid.uuid4().hex
        self.alerter = Alerter(f"run {self.run_id[:12]} on target {target_name}")
        self.steps: list[StepResult] = []
        self.codes: list[int] = []
        # Key checks: when the build of the last passing ones started, and when this
        # tick's did, if they passed (scripts/run/key_checks.py).
        self.keys_verified_before: datetime | None = None
        self.keys_verified_at: datetime | None = None
        # DuckDB's storage vacuum: how often (None: not DuckDB, nothing to decide), when
        # the last tick that vacuumed built, and this tick's build start if it did
        # (scripts/run/storage_vacuum.py).
        self.vacuum_every: timedelta | None = None
        self.storage_vacuumed_before: datetime | None = None
        self.storage_vacuumed_at: datetime | None = None
        # Alerts raised by the ticks before, and how often one raised again is posted
        # (scripts/alerts/repeats.py).
        self.open_alerts: dict[str, repeats.OpenAlert] = {}
        self.alert_repeat = timedelta(hours=repeats.DEFAULT_REPEAT_HOURS)
        # The open alerts the previous tick left where the warehouse could not keep them
        # (the loop's memory; a one-shot tick's, scripts/run/unreached_alerts.py), for
        # when the warehouse cannot be read; updated in place with this tick's.
        self.remembered: dict[str, repeats.OpenAlert] | None = None
        # Whether this tick recorded itself (its runs row then holds the open alerts).
        self.recorded = False
        # How the build's process starts: None, the `dbt` command; in a loop, forked
        # from the loop's process (scripts/run/warm_dbt.py).
        self.dbt_launch: Launch | None = None
        # Whether SIGTERM, SIGINT or SIGHUP has arrived (scripts/run/loop.py,
        # stopped_by_signals); if so, no further step starts.
        self.stopping: Callable[[], bool] = lambda: False

    def step(
        self,
        name: str,
        command: list[str],
        display: str,
        *,
        stop: bool = True,
        env: dict[str, str] | None = None,
        launch: Launch | None = None,
    ) -> StepResult:
        """Run a step; with `stop`, a signal during it ends the tick at once (a load or
        a build cut short says nothing worth an alert)."""
        if self.stopping():
            raise Interrupted(f"the tick, before {name}")
        result = run_step(
            name,
            command,
            display=display,
            cwd=Path.cwd(),
            echo=click.echo,
            env=env,
            keep_fds=self.lock_fds,
            launch=launch,
            stopping=self.stopping,
        )
        self.steps.append(result)
        if stop and result.interrupted:
            raise Interrupted(name)
        return result

    def execute(
        self,
        *,
        loads: list[tuple[str, Path | None, list[str]]],
        max_reject_pct: float,
        build: bool,
        sync: bool,
        dry_run: bool,
    ) -> int:
        started = record.now_utc()
        try:
            with connect(self.target_name) as wh:
                record.start(wh, self.run_id, self.target_name, started)
                self.keys_verified_before = record.keys_verified_before(
                    wh, self.target_name, started
                )
                self.storage_vacuumed_before = record.storage_vacuumed_before(
                    wh, self.target_name, started
                )
                self.open_alerts = repeats.loads(
                    record.open_alerts_before(wh, self.target_name, started)
                )
                # What the loop's ticks that could not reach the warehouse left open
                # (run_error, say) is resolved by this one.
                for cause, earlier in (self.remembered or {}).items():
                    self.open_alerts.setdefault(cause, earlier)
        except WarehouseError as exc:
            click.echo(f"error: {exc}", err=True)
            self.alerter.add(Alert("run_error", [str(exc)], "audiences run --help"))
            self.open_alerts = dict(self.remembered or {})
            self._post_alerts(judged=set())
            return EXIT_ERROR
        finished = False
        try:
            self._steps(loads, max_reject_pct, build, sync, dry_run, started)
            finished = True
        except Interrupted as stopped:
            click.echo(
                f"stopped by a signal during {stopped}; no further step", err=True
            )
            self.codes.append(EXIT_PARTIAL)
        except Exception as exc:  # record and alert whatever went wrong, then exit 1
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            self.codes.append(EXIT_ERROR)
            self.alerter.add(
                Alert(
                    "run_error",
                    [f"{type(exc).__name__}: {exc}"],
                    "select * from audiences_ops.runs order by started_at desc limit 5",
                )
            )
        code = _worst(self.codes)
        raised = self.alerter.raised()
        open_after = self._post_alerts(
            repeats.judged_causes(
                {s.name: s.exit_code for s in self.steps if not s.interrupted},
                loads_expected=sum(1 for _, folder, _ in loads if folder is not None),
                finished=finished,
                sync_sent=sync and not dry_run,
            )
        )
        status = {EXIT_OK: "ok", EXIT_ATTENTION: "attention", EXIT_LOCKED: "locked"}
        status.update(
            {EXIT_PARTIAL: "partial", EXIT_FAILED: "failed", EXIT_ERROR: "error"}
        )
        try:
            with connect(self.target_name) as wh:
                record.finish(
                    wh,
                    self.run_id,
                    status=status[code],
                    exit_code=code,
                    steps=[s.as_dict() for s in self.steps],
                    alerts=sorted(raised),
                    keys_verified_at=self.keys_verified_at,
                    storage_vacuumed_at=self.storage_vacuumed_at,
                    open_alerts=repeats.dumps(open_after),
                )
            self.recorded = True
        except WarehouseError as exc:
            click.echo(f"error: cannot record the run: {exc}", err=True)
            code = code or EXIT_ERROR
        click.echo(
            f"run {self.run_id}: {status[code]} (exit {code}); "
            + ", ".join(f"{s.name} {s.exit_code}" for s in self.steps)
        )
        return code

    def _steps(
        self,
        loads: list[tuple[str, Path | None, list[str]]],
        max_reject_pct: float,
        build: bool,
        sync: bool,
        dry_run: bool,
        started: datetime,
    ) -> None:
        target = ["--target", self.target_name]
        for loader, directory, options in loads:
            if directory is None:
                continue
            args = ["load", loader, str(directory), "--no-progress", *options]
            args += ["--max-reject-pct", f"{max_reject_pct:g}", *target]
            result = self.step(
                f"load {loader}",
                audiences_command(*args),
                "audiences " + " ".join(args),
            )
            for alert in findings.load_findings(result, loader):
                self.alerter.add(alert)
            if result.exit_code == findings.LOADER_EXIT_TOO_MANY_REJECTS:
                self.codes.append(EXIT_ATTENTION)
            elif not result.ok:
                self.codes.append(EXIT_FAILED)
                click.echo("a load failed: skipping the build and the sync", err=True)
                return
        if build:
            # dbt looks for dbt_project.yml in its working directory; say where it is
            # (the tick works in the project folder, so profiles.yml is found there, or
            # at $DBT_PROFILES_DIR: _work_in_the_project). Unit tests check the SQL on
            # fixed inputs, so a scheduled tick over new data learns nothing from them;
            # they run in CI and in `make build`. dbt's docs recommend exactly this
            # (docs/scheduling.md), and they are 19 of the ~200 nodes of every tick.
            args = [
                "build", *target, "--project-dir", str(self.project),
                "--exclude-resource-type", "unit_test",
            ]  # fmt: skip
            env = key_checks.scoped_env(self.keys_verified_before)
            if env[key_checks.ENV]:
                click.echo(
                    f"key checks: keys written since {env[key_checks.ENV]} (the start "
                    "of the last build whose key checks passed)"
                )
            build_started = record.now_utc()
            vacuums = self._storage_vacuum(build_started, env)
            result = self.step(
                "dbt build",
                dbt_command(*args),
                "dbt " + " ".join(args),
                env=env,
                launch=self.dbt_launch,
            )
            if key_checks.checks_passed(self._run_results(), build_started):
                self.keys_verified_at = build_started
            if vacuums and findings.fresh_run_results(
                self._run_results(), build_started
            ):
                self.storage_vacuumed_at = build_started
            for alert in findings.build_findings(result, self._run_results(), started):
                self.alerter.add(alert)
            if not result.ok:
                self.codes.append(EXIT_FAILED)
            if findings.fresh_run_results(self._run_results(), build_started) is None:
                # Killed or crashed before writing its results: the guardrails would
                # read an older build's, whose checks passed, and send this one's tables.
                self.alerter.add(Alert("build_failed", [NO_RESULTS], "dbt build"))
                click.echo(NO_RESULTS, err=True)
                self.codes.append(EXIT_FAILED)
                return
        if sync:
            args = ["sync", "segment", *target, *(["--dry-run"] if dry_run else [])]
            result = self.step(
                "sync segment",
                audiences_command(*args),
                "audiences " + " ".join(args),
                stop=False,  # a stopped sync recorded what it sent: report on it below
            )
            for alert in findings.sync_refusals(result):
                self.alerter.add(alert)
            with connect(self.target_name) as wh:
                for alert in findings.sync_delivery(wh, started, result):
                    self.alerter.add(alert)
            self.codes.append(SYNC_EXIT.get(result.exit_code, EXIT_ERROR))
            if result.interrupted:
                raise Interrupted("sync segment")

    def _post_alerts(self, judged: set[str]) -> dict[str, repeats.OpenAlert]:
        """Post this tick's alerts against the open ones before it (repeats.plan) and
        return the open alerts it leaves, also kept for the loop's next tick."""
        raised = self.alerter.raised()
        now = record.now_utc()
        decided = repeats.plan(self.open_alerts, raised, judged, now, self.alert_repeat)
        for cause, earlier in decided.resolved.items():
            self.alerter.add(Alert.resolution(cause, earlier.since))
        hold = {
            cause: repeats.held_reason(self.open_alerts[cause], self.alert_repeat)
            for cause in decided.held
        }
        delivered = self.alerter.flush(hold)
        open_after = repeats.after(
            self.open_alerts, raised, judged, set(delivered) & raised, now
        )
        if self.remembered is not None:
            self.remembered.clear()
            self.remembered.update(open_after)
        return open_after

    def _storage_vacuum(self, build_started: datetime, env: dict[str, str]) -> bool:
        """Whether this tick's build lets DuckDB vacuum; puts the build's setting in
        `env` and says which (scripts/run/storage_vacuum.py)."""
        if self.vacuum_every is None:
            return False
        last = self.storage_vacuumed_before
        due = storage_vacuum.is_due(last, build_started, self.vacuum_every)
        env.update(storage_vacuum.build_env(due))
        since = (
            "none on record" if last is None else f"the last at {last:%Y-%m-%d %H:%M}"
        )
        every = self.vacuum_every.total_seconds() / 3600
        click.echo(
            f"storage vacuum: {'this tick' if due else 'skipped'} ({since}; every "
            f"{every:g} h, --vacuum-every)"
        )
        return due

    def _run_results(self) -> Path:
        return dbt_run_results(self.project)
