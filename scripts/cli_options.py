"""Options every `audiences` subcommand shares, so they read and behave the same."""

from __future__ import annotations

import click

target_option = click.option(
    "--target",
    "target_name",
    metavar="NAME",
    default=None,
    envvar="AUDIENCES_TARGET",
    show_envvar=True,
    help="profiles.yml output to use (default: the profile's target, `dev` = DuckDB).",
)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error to stderr and exit with `code` (no traceback)."""
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(code)
