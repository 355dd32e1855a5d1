"""The `audiences` command line: one subcommand per job, each a thin shell over a module.

Subcommand modules are imported only when their command runs (or help lists it), so
`audiences load webhooks` does not pay for the sync's, receiver's or report's imports.
"""

from __future__ import annotations

import importlib

import click

EPILOG = """\b
The usual loop, on the embedded DuckDB file:
  audiences demo-data --out demo-data --people 2000 --days 60
  audiences load webhooks demo-data/webhooks
  audiences load segment-events demo-data/segment
  audiences load orders demo-data/orders
  dbt build
  audiences sync segment --dry-run

Every command that reads or writes the warehouse (load, run, sync, report) takes
--target NAME and finds it through the same profiles.yml that dbt uses; the others
follow AUDIENCES_TARGET. `audiences COMMAND --help` shows examples for each.
"""


class LazyGroup(click.Group):
    """A group whose subcommands are named up front but imported on first use.

    `lazy` maps a command name to "module:attribute"; the attribute's own name must
    match, which `get_command` checks so a typo cannot silently rename a command.
    """

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def invoke(self, ctx: click.Context) -> object:
        """A warehouse refusal anywhere in a command is one line and exit 2, not a traceback."""
        from scripts.warehouse import WarehouseError

        try:
            return super().invoke(ctx)
        except WarehouseError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            raise SystemExit(2) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"{target} is not the command {cmd_name!r}")
        return command


@click.group(
    cls=LazyGroup,
    lazy={
        "demo-data": "scripts.demo_data.command:demo_data",
        "load": "scripts.loaders.command:load",
        "report": "scripts.report.command:report",
        "run": "scripts.run.command:run",
        "serve-webhooks": "scripts.receiver.command:serve_webhooks",
        "sync": "scripts.segment_sync.command:sync",
        "versions": "scripts.versions.command:versions",
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(package_name="engagement-audiences")
def main() -> None:
    """Engagement Audiences: Customer.io engagement + orders -> audiences -> Segment."""
