"""What each step's outcome means for the operator: the alerts a tick raises.

Every finding names what happened, the audiences it touches when it touches some, and the
command to look further. The texts come from our own commands' output and tables, which
never hold a secret; the alerter still redacts secret-looking environment values.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from scripts.alerts.message import Alert
from scripts.dbt_artifacts import (
    FAILED_STATUSES,
    UnreadableArtifactError,
    data_health_checks,
    node_name,
    read_manifest,
    read_run_results,
    rebuild_command,
)
from scripts.run.steps import StepResult
from scripts.warehouse import Warehouse

LOADER_EXIT_TOO_MANY_REJECTS = 3
SYNC_EXIT_REFUSED = 3
SYNC_EXIT_LOCKED = 4
# "  - [max_change] email_clickers would change by 80% …": the sync's refusal lines.
REFUSAL_LINE = re.compile(r"^\s+- \[(?P<rule>\w+)\] (?P<message>.+)$")
# Refusals about one audience start with its key.
AUDIENCE_RULES = ("drop_to_zero", "max_change", "holdout")
AUDIENCE_KEY = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)(?::| would)")


def _error_lines(step: StepResult, limit: int = 3) -> list[str]:
    errors = [line for line in step.output if line.startswith("error:")]
    return (errors or _last_lines(step, limit) or [f"exit status {step.exit_code}"])[
        -limit:
    ]


def _last_lines(step: StepResult, limit: int = 3) -> list[str]:
    """The step's last lines that say something about it. Python's multiprocessing
    resource tracker outlives a killed dbt and warns, in two lines each, of the
    semaphores dbt's thread pool left behind ("resource_tracker: There appear to be 6
    leaked semaphore objects…"): noise that filled a killed build's alert."""
    said = [line for line in step.output if "resource_tracker:" not in line]
    return said[-limit:]


def load_findings(step: StepResult, loader: str) -> list[Alert]:
    if step.ok:
        return []
    if step.exit_code == LOADER_EXIT_TOO_MANY_REJECTS:
        summary = [line for line in step.output if line.startswith(f"{loader}: read")]
        return [
            Alert(
                "load_rejects",
                summary[-1:] + _error_lines(step, 1),
                "select reason, count(*) from raw_loader.rejects "
                f"where loader = '{loader}' group by 1",
            )
        ]
    return [
        Alert(
            "load_failed",
            [f"`audiences load {loader}` exited {step.exit_code}", *_error_lines(step)],
            f"audiences load {loader} <the same paths>  # rerun after fixing the cause",
        )
    ]


def fresh_run_results(path: Path, since: datetime) -> list[dict] | None:
    """dbt's results if this tick's build wrote them (an older file says nothing).

    `since` is naive UTC: local wall-clock time repeats an hour each autumn, when an
    older file could look newer than the tick."""
    try:
        run = read_run_results(path)
    except UnreadableArtifactError:
        return None
    if run is None or run.written_at < since.replace(tzinfo=None):
        return None
    return run.results


def build_findings(
    step: StepResult, run_results: Path, started: datetime
) -> list[Alert]:
    """`started`: when the tick started, naive UTC."""
    results = fresh_run_results(run_results, started)
    if results is None:
        if step.ok:
            return []
        return [
            Alert(
                "build_failed",
                [f"`dbt build` exited {step.exit_code}", *_last_lines(step)],
                "dbt build",
            )
        ]
    manifest = read_manifest(run_results.parent / "manifest.json")
    health = data_health_checks(manifest)
    failed = [r for r in results if r.get("status") in FAILED_STATUSES]
    alerts = []
    health_failed = [r for r in failed if r.get("unique_id") in health]
    if health_failed:
        alerts.append(
            Alert(
                "data_health",
                [
                    f"check '{health[r['unique_id']]}' ({node_name(r['unique_id'])}): "
                    f"{_short(r.get('message'))}"
                    for r in health_failed
                ],
                "dbt test --select tag:data_health --store-failures",
            )
        )
    other = [r for r in failed if r.get("unique_id") not in health]
    if other or (not step.ok and not health_failed):
        named = [(node_name(str(r.get("unique_id", "?"))), r) for r in other]
        details = [f"{name}: {_short(r.get('message'))}" for name, r in named[:10]]
        alerts.append(
            Alert(
                "build_failed",
                details or [f"`dbt build` exited {step.exit_code}", *_last_lines(step)],
                (
                    rebuild_command(str(other[0].get("unique_id", "?")), manifest)
                    if other
                    else "dbt build"
                ),
            )
        )
    return alerts


def _short(message: object, limit: int = 200) -> str:
    text = " ".join(str(message or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sync_refusals(step: StepResult) -> list[Alert]:
    """Guardrail refusals, from the sync's own report (real runs and dry runs alike)."""
    details, audiences = [], []
    for line in step.output:
        match = REFUSAL_LINE.match(line)
        if not match:
            continue
        rule, message = match["rule"], match["message"]
        details.append(f"[{rule}] {message}")
        key = AUDIENCE_KEY.match(message) if rule in AUDIENCE_RULES else None
        if key and key["key"] not in audiences:
            audiences.append(key["key"])
    if not details:
        return []
    return [
        Alert(
            "guardrail_refusal",
            details,
            "audiences sync segment --dry-run  # then fix the data, or --force",
            audiences,
        )
    ]


def sync_delivery(wh: Warehouse, since: datetime, step: StepResult) -> list[Alert]:
    """Dead letters and undelivered messages of the sync run this tick started."""
    if step.exit_code in (0, SYNC_EXIT_REFUSED, SYNC_EXIT_LOCKED):
        return []
    row = None
    if wh.table_exists("segment_sync", "runs"):
        rows = wh.query(
            "select run_id, status, count_planned, count_sent, count_failed, "
            "count_dead_lettered, error from segment_sync.runs where started_at >= %s "
            "order by started_at desc limit 1",
            (since,),
        )
        row = rows[0] if rows else None
    if row is None:
        return [
            Alert(
                "sync_undelivered",
                [
                    f"`audiences sync segment` exited {step.exit_code}",
                    *_error_lines(step),
                ],
                "audiences sync segment --dry-run",
            )
        ]
    run_id, status, planned, sent, failed, dead, error = row
    alerts = []
    if dead:
        by_audience = wh.query(
            "select audience_key, count(*), min(reason) from segment_sync.dead_letters "
            "where run_id = %s group by 1 order by 1",
            (run_id,),
        )
        alerts.append(
            Alert(
                "dead_letters",
                [
                    f"{key}: {count} message(s), e.g. {reason}"
                    for key, count, reason in by_audience
                ],
                "select * from segment_sync.dead_letters where run_id = "
                f"'{run_id}'  # fix, then `audiences sync segment --retry-dead-letters`",
                [str(key) for key, _, _ in by_audience],
            )
        )
    if failed or status not in ("ok", "partial") or (not dead and status == "partial"):
        pending = (
            wh.query(
                "select audience_key, count(*) from segment_sync.outbox "
                "where status = 'pending' group by 1 order by 1"
            )
            if wh.table_exists("segment_sync", "outbox")
            else []
        )
        waiting = sum(count for _, count in pending)
        if status == "interrupted" and not failed and not waiting:
            # A signal after the last group: everything went out. The tick's own exit
            # status (5) and run row say it was stopped (the run's error says so too);
            # nothing is undelivered.
            return alerts
        audiences = [str(key) for key, _ in pending]
        alerts.append(
            Alert(
                "sync_undelivered",
                [
                    f"sync run {run_id} ended '{status}': sent {sent} of {planned}, "
                    f"{failed} failed, {waiting} pending (resent by the next run)",
                    *([_short(error)] if error else []),
                ],
                "audiences sync segment  # resends pending messages with the same ids",
                audiences,
            )
        )
    return alerts
