"""`audiences report`: a table of audience sizes, for people and for the demo's last line."""

from __future__ import annotations

import click

from scripts.cli_options import fail, target_option
from scripts.report.identities import audience_identities, format_identities
from scripts.report.machine_opens import format_machine_opens, machine_opens
from scripts.report.sizes import audience_sizes, format_table
from scripts.settings import SettingsError
from scripts.warehouse import WarehouseError, connect


@click.command("report")
@target_option
def report(target_name: str | None) -> None:
    """Print each audience's size per arm and the latest run's entries and exits,
    how each synced audience's treatment arm reaches Segment (sent under a user id or an
    email-derived anonymousId, or not sent, by reason), and how many opens each
    Customer.io open flag removed as machine opens (dbt var machine_open_flags).

    \b
    Example:
      dbt build && audiences report
      audiences report --target postgres
    """
    try:
        with connect(target_name) as warehouse:
            sizes = audience_sizes(warehouse)
            identities = audience_identities(warehouse)
            opens = machine_opens(warehouse)
    except (SettingsError, WarehouseError, LookupError) as exc:
        fail(str(exc))
    click.echo(format_table(sizes))
    if identities:
        click.echo("\n" + format_identities(identities))
    if opens:
        click.echo("\n" + format_machine_opens(opens))
