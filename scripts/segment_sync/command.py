"""`audiences sync segment`: the CLI shell over service.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from scripts.cli_options import (
    finite_hours,
    finite_minutes,
    finite_per_second,
    finite_percent,
    finite_seconds,
    target_option,
)
from scripts.segment_sync import service
from scripts.settings import dbt_run_results as dbt_run_results_path


@click.group(
    epilog="""\b
Example:
  audiences sync segment --dry-run
  SEGMENT_WRITE_KEY=... audiences sync segment
"""
)
def sync() -> None:
    """Send warehouse audiences to downstream tools (today: Segment)."""


@sync.command(
    "segment",
    epilog="""\b
Examples:
  audiences sync segment --dry-run
  audiences sync segment --dry-run --audience email_clickers --plan-out plan.json
  SEGMENT_WRITE_KEY=... audiences sync segment
  SEGMENT_WRITE_KEY=... SEGMENT_HOST=https://events.eu1.segmentapis.com \\
      audiences sync segment --target postgres --max-rps 50
  SEGMENT_WRITE_KEY=... audiences sync segment --audience email_clickers --force
  SEGMENT_WRITE_KEY=... audiences sync segment --workers 2 --max-rps 500
  SEGMENT_WRITE_KEY=... SEGMENT_SPACE_ID=spa_123 audiences sync segment

\b
Exit codes (docs/scheduling.md):
  0  ok: every planned message was confirmed (or nothing to do, or dry run)
  1  error: warehouse unreachable, sync models missing, segment_sync tables
     from a newer release, unexpected failure
  2  usage: bad option, unknown target or --audience, SEGMENT_WRITE_KEY unset
     or not a write key (too short, a space, a non-ASCII character) for a real run
  3  refused by a guardrail (too large a change, drop to zero, stale inputs,
     failed dbt checks, holdout leak, an --empty build); nothing was sent.
     Changes are judged against what the last accepted run decided, not what
     was confirmed
  4  another sync holds the lock (or the DuckDB file is in use)
  5  partial: some messages failed or were dead-lettered, or a signal stopped
     the run; pending messages are resent, same ids, by the next plain run
     (no --force needed; so is the rest of a --limit run)
""",
)
@target_option
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    metavar="KEY",
    help="Only this audience (repeatable). Default: every audience in input or state. "
    "A key in neither is a usage error (exit 2).",
)
@click.option(
    "--dry-run", is_flag=True, help="Plan and print; send and change nothing."
)
@click.option(
    "--plan-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan as JSON here (dry run default: segment_sync_plan.json in dbt's "
    "target folder, target/ of the project unless $DBT_TARGET_PATH says otherwise).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even if a guardrail refuses (never past a holdout leak or an "
    "--empty build).",
)
@click.option(
    "--full-resync",
    is_flag=True,
    help="Also re-send every unchanged trait value, with fresh message ids.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Plan at most N new transitions this run (the rest wait for the next).",
)
@click.option(
    "--max-rps",
    type=click.FloatRange(min=0.1, max=1000),
    callback=finite_per_second,
    default=100.0,
    show_default=True,
    help="Ceiling on HTTP requests per second (Segment recommends < 1000).",
)
@click.option(
    "--max-change-pct",
    type=click.FloatRange(min=0),
    callback=finite_percent,
    default=50.0,
    show_default=True,
    help="Refuse when an audience changes by more than this share of the members "
    "the last accepted run decided (exactly the limit passes).",
)
@click.option(
    "--min-audience-size",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Audiences smaller than this skip the change-share check.",
)
@click.option(
    "--max-staleness-hours",
    type=click.FloatRange(min=0),
    callback=finite_hours,
    default=36.0,
    show_default=True,
    help="Refuse when the newest input timestamp is older than this.",
)
@click.option(
    "--dbt-run-results",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AUDIENCES_DBT_RUN_RESULTS",
    default=None,
    help="dbt run_results.json checked for failed sync-model tests "
    "[default: where dbt wrote it: $DBT_TARGET_PATH, else target/ of the project].",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs a message refused by Segment is retried before it is dead-lettered.",
)
@click.option(
    "--retry-dead-letters",
    is_flag=True,
    help="Put dead-lettered messages back in the outbox (after fixing their cause).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 2500),
    default=2500,
    show_default=True,
    help="Events per request (Segment drops batches over 2500).",
)
@click.option(
    "--group-size",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Messages confirmed and recorded together (the most a crash can resend).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Library retries per batch for 5xx and network errors.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    callback=finite_seconds,
    default=15.0,
    show_default=True,
    help="Seconds per HTTP request.",
)
@click.option(
    "--max-rate-limit-seconds",
    type=click.FloatRange(min=0),
    callback=finite_seconds,
    default=1800.0,
    show_default=True,
    help="How long one 429/Retry-After episode may last before its batch fails.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 8),
    default=None,
    help="Sending processes, each with its own Segment client, a hash-of-user_id "
    "share of the messages and a 1/N share of --max-rps. "
    "[default: 2 when 50,000+ messages are pending on 2+ cores, else 1]",
)
@click.option("--gzip/--no-gzip", default=False, show_default=True, help="Gzip bodies.")
@click.option(
    "--stale-lock-minutes",
    type=click.FloatRange(min=0),
    callback=finite_minutes,
    default=30.0,
    show_default=True,
    help="A lock whose heartbeat is older than this is taken over.",
)
def segment(
    target_name: str | None,
    audiences: tuple[str, ...],
    dry_run: bool,
    plan_out: Path | None,
    force: bool,
    full_resync: bool,
    limit: int | None,
    max_rps: float,
    max_change_pct: float,
    min_audience_size: int,
    max_staleness_hours: float,
    dbt_run_results: Path | None,
    max_attempts: int,
    retry_dead_letters: bool,
    batch_size: int,
    group_size: int,
    max_retries: int,
    timeout: float,
    max_rate_limit_seconds: float,
    workers: int | None,
    gzip: bool,
    stale_lock_minutes: float,
) -> None:
    """Send audience entries and exits to Segment as identify + track calls.

    \b
    Diffs sync_segment__audience_memberships against what Segment was already
    told (segment_sync.audience_state) and sends only the changes: a new member
    gets the trait <audience_key>=true and "Audience Entered"; a leaver gets
    false and "Audience Exited" with its exit_reason. Every message is written to
    segment_sync.outbox with a deterministic messageId before sending, so a crash
    followed by a rerun resends the same ids and loses nothing.

    \b
    Payloads follow Engage's audience events: context.personas carries
    computation_class, computation_key, computation_id (aud_ + md5 of the
    audience key, kept across versions) and, when SEGMENT_SPACE_ID is set,
    space_id and namespace (SEGMENT_NAMESPACE, default the space id). The
    email (and, for SMS audiences, the phone when known) goes on identify
    traits and track context.traits. Each audience sends
    the calls its segment_calls meta chose (identify, track or both).

    \b
    Members without a user id are sent under an email-derived anonymousId or
    skipped, by the dbt var segment_identity_policy; the plan counts every
    member not sent by reason (column "skipped", "not sent:" lines).

    \b
    SEGMENT_WRITE_KEY (required unless --dry-run) and SEGMENT_HOST (default
    https://api.segment.io; the EU endpoint or a local receiver) come from the
    environment. The key is never printed or stored; a real run refuses a value
    that cannot be one (under 12 characters: Segment's have 32).
    """
    options = service.SyncOptions(
        target_name=target_name,
        audiences=list(audiences),
        full_resync=full_resync,
        limit=limit,
        dry_run=dry_run,
        force=force,
        max_rps=max_rps,
        max_change_pct=max_change_pct,
        min_audience_size=min_audience_size,
        max_staleness_hours=max_staleness_hours,
        plan_out=plan_out,
        batch_size=batch_size,
        group_size=group_size,
        max_retries=max_retries,
        timeout=timeout,
        max_attempts=max_attempts,
        gzip=gzip,
        stale_lock_minutes=stale_lock_minutes,
        retry_dead_letters=retry_dead_letters,
        dbt_run_results=dbt_run_results or dbt_run_results_path(),
        max_rate_limit_seconds=max_rate_limit_seconds,
        workers=workers,
    )
    code = service.run(
        options,
        write_key=os.environ.get("SEGMENT_WRITE_KEY") or None,
        host=os.environ.get("SEGMENT_HOST") or None,
    )
    sys.exit(int(code))
