"""`audiences report`: a table of audience sizes, for people and for the demo's last line."""

from __future__ import annotations

import click

from scripts.cli_options import fail, target_option
from scripts.report.sizes import audience_sizes, format_table
from scripts.settings import SettingsError
from scripts.warehouse import WarehouseError, connect


@click.command("report")
@target_option
def report(target_name: str | None) -> None:
    """Print each audience's size per arm and the latest run's entries and exits.

    \b
    Example:
      dbt build && audiences report
      audiences report --target postgres
    """
    try:
        with connect(target_name) as warehouse:
            sizes = audience_sizes(warehouse)
    except (SettingsError, WarehouseError, LookupError) as exc:
        fail(str(exc))
    click.echo(format_table(sizes))
