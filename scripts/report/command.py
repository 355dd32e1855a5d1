"""`audiences report`: a table of audience sizes, for people and for the demo's last line;
with `--out`, the HTML report (scripts/report/html.py)."""

from __future__ import annotations

from pathlib import Path

import click

from scripts.cli_options import fail, target_option
from scripts.file_replace import replace_file
from scripts.report.identities import audience_identities, format_identities
from scripts.report.machine_opens import format_machine_opens, machine_opens
from scripts.report.sizes import audience_sizes, format_table
from scripts.settings import SettingsError, dbt_run_results
from scripts.warehouse import WarehouseError, connect


@click.command("report")
@target_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the HTML report here instead of printing the size table.",
)
def report(target_name: str | None, out: Path | None) -> None:
    """Print each audience's size per arm and the latest build's entries and exits
    (0 when that build changed nothing for the audience),
    how each synced audience's treatment arm reaches Segment (sent under a user id or an
    email-derived anonymousId, or not sent, by reason), and how many opens each
    Customer.io open flag removed as machine opens (dbt var machine_open_flags).

    \b
    With --out, write one self-contained HTML page instead (no script, no network
    at view time): a "needs attention" list, audience sizes over time, entries and
    exits by reason, lift with its 95 % intervals, event volumes with anomalies,
    machine-open share, and the sync's history and failures.

    \b
    Examples:
      dbt build && audiences report
      audiences report --target postgres
      audiences report --out build/report.html
    """
    if out is not None:
        write_html(target_name, out)
        return
    try:
        with connect(target_name, built=True) as warehouse:
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


def write_html(target_name: str | None, out: Path) -> None:
    from scripts.report import data, html

    if out.exists() and not out.is_file():
        fail(f"cannot write the report to {out}: it is not a regular file")
    run_results = dbt_run_results()
    try:
        with connect(target_name, built=True) as warehouse:
            page = html.render(data.read(warehouse, run_results))
    except (SettingsError, WarehouseError) as exc:
        fail(str(exc))
    try:
        replace_file(out, page.encode("utf-8"))
    except OSError as exc:
        fail(f"cannot write the report to {out}: {exc.strerror or exc}", 1)
    click.echo(f"report written to {out.resolve()}")
