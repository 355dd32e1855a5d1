"""Options every `audiences` subcommand shares, so they read and behave the same."""

from __future__ import annotations

import math

import click

# The share of rejected records (percent) above which a load exits 3 and a tick alerts;
# the one default for every load command and `audiences run`.
DEFAULT_MAX_REJECT_PCT = 1.0

target_option = click.option(
    "--target",
    "target_name",
    metavar="NAME",
    default=None,
    # No click envvar: AUDIENCES_TARGET is read through profiles.yml's `target:`, the
    # same place dbt reads it, so scripts/settings.py can refuse a profile that ignores it.
    help="profiles.yml output to use (default: $AUDIENCES_TARGET, else `dev` = DuckDB; "
    "plain `dbt build` follows the same variable).",
)


def finite_seconds(ctx, param, value: float | None) -> float | None:
    """A click callback: FloatRange(min=0) lets `nan` and `inf` through, and a wait of
    `nan` seconds would compare false with everything (no wait at all)."""
    return _finite(value, "seconds")


def finite_hours(ctx, param, value: float | None) -> float | None:
    """finite_seconds, for an option counted in hours."""
    return _finite(value, "hours")


def finite_minutes(ctx, param, value: float | None) -> float | None:
    """finite_seconds, for an option counted in minutes."""
    return _finite(value, "minutes")


def finite_per_second(ctx, param, value: float | None) -> float | None:
    """finite_seconds, for a rate: a limiter at `nan` per second never waited."""
    return _finite(value, "requests per second")


def finite_percent(ctx, param, value: float | None) -> float | None:
    """finite_seconds, for a share in percent."""
    return _finite(value, "percent")


def _finite(value: float | None, unit: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of {unit}")
    return value


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error to stderr and exit with `code` (no traceback)."""
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(code)
