"""The `audiences` command line: one subcommand per job, each a thin shell over a module."""

from __future__ import annotations

import click

EPILOG = """\b
The usual loop, on the embedded DuckDB file:
  audiences demo-data --out demo-data --people 2000 --days 60
  audiences load webhooks demo-data/webhooks
  audiences load orders demo-data/orders
  dbt build
  audiences sync segment --dry-run

Every subcommand takes --target NAME and finds the warehouse through the same
profiles.yml that dbt uses. `audiences COMMAND --help` shows examples for each.
"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(package_name="engagement-audiences")
def main() -> None:
    """Engagement Audiences: Customer.io engagement + orders -> audiences -> Segment."""


def _register() -> None:
    from scripts.demo_data.command import demo_data
    from scripts.loaders.command import load
    from scripts.receiver.command import serve_webhooks
    from scripts.report.command import report
    from scripts.segment_sync.command import sync
    from scripts.versions.command import versions

    main.add_command(demo_data)
    main.add_command(load)
    main.add_command(serve_webhooks)
    main.add_command(report)
    main.add_command(sync)
    main.add_command(versions)


_register()
