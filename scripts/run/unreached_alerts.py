"""The open alerts of one-shot ticks that could not reach the warehouse, kept in a file.

A tick's open alerts live in its `audiences_ops.runs` row, and the next tick starts from
them (scripts/alerts/repeats.py). A tick that cannot open the warehouse (a DuckDB file
another process holds, a PostgreSQL server that is down) cannot read or write that row.
The loop of `audiences run --every` keeps them in memory; a one-shot `audiences run`
from cron is a new process each time, and so posted run_error on every tick, 96 times a
day at one tick every 15 minutes. It now keeps them in a file beside the run lock, written
under the lock, one per target: the next one-shot tick that cannot reach the warehouse
holds a repeat as the loop does, and the first that reaches it posts the resolution; any
tick that records itself in the runs table (a loop's too) removes the file.

The file holds cause names and times only (`repeats.dumps`), never an alert's text. A
damaged file reads as no open alert: the alert is then posted, which errs on telling.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from scripts.alerts import repeats
from scripts.file_replace import replace_file


def path_beside(lock_path: Path, target: str) -> Path:
    """One file per target: ticks of every target share the project's lock, and one
    target's outage must neither hold nor resolve another's alert."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
    return lock_path.with_name(f"{lock_path.name}.{safe}.open-alerts.json")


def read(path: Path) -> dict[str, repeats.OpenAlert]:
    try:
        return repeats.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def keep(path: Path, open_alerts: dict[str, repeats.OpenAlert]) -> None:
    """Write what a one-shot tick that did not record itself in the warehouse leaves
    open (a tick that cannot write it says so; its alerts were posted already)."""
    text = repeats.dumps(open_alerts)
    if text is None:
        forget(path)
        return
    try:
        replace_file(path, text.encode())
    except OSError as exc:
        click.echo(f"warning: cannot keep the open alerts in {path}: {exc}", err=True)


def forget(path: Path) -> None:
    """A tick that reached the warehouse: its runs row holds the open alerts now."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        click.echo(f"warning: cannot remove {path}: {exc}", err=True)
