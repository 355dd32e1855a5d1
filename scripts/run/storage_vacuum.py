"""Which ticks let DuckDB vacuum its storage: one a day by default, not every tick.

DuckDB writes a transaction's changes to the write-ahead log and, at a checkpoint (when the
log passes 16 MB, and when the last connection closes), into the database file. At each
checkpoint it also vacuums the tables written since the last one: row groups that lost
rows to a delete are merged with their neighbours and rewritten, so that the space of the
deleted rows is reused ("max_vacuum_tasks", DuckDB's configuration reference,
https://duckdb.org/docs/stable/configuration/overview).

Every tick deletes rows: the dedupe replaces the held copies of the events it rewrites
(a better copy, a re-resolved person), most of them in the newest row groups, and the
per-person tables delete the rows they write again. So every tick's checkpoint merged the
event table's newest row groups (about 150,000 rows of 28 columns) and rewrote them:
0.5-0.6 s at a year of a 200k-customer brand whatever the day brought, and about 1.2 s of
the whole tick (benchmarks/results.md, "Vacuum once a day"). A tick that does not vacuum
leaves the deleted rows' slots in place: a few thousand rows of 12.6 million, and about
2 % of each per-person table, per daily tick. Nothing reads them (a scan skips deleted
rows), but they hold disk space and, over weeks, make the per-person tables' scans longer.

So `audiences run` lets DuckDB vacuum on the first tick after `--vacuum-every` (24 hours by
default) has passed since the last tick that did, and sets AUDIENCES_DUCKDB_MAX_VACUUM_TASKS
to 0 for the `dbt build` of the others: the first on-run-start hook sets DuckDB's
`max_vacuum_tasks` from it (macros/setup/storage_vacuum_setting.sql; not profiles.yml, whose
config_options dbt hashes into its partial-parse state, so a value that changes between
ticks would have each such tick parse the whole project again). A vacuum that is
due merges what the ticks before it left, in the tables it writes; a table nothing writes
gains no deleted rows either. PostgreSQL has autovacuum and ignores the variable.

The moment of the last vacuum is the start of that tick's build, kept in its row of
audiences_ops.runs (storage_vacuumed_at, scripts/run/record.py), recorded once the build
has run to its end (its run_results.json written: the checkpoints are behind it). A
moment later than the clock is forgotten, so a clock that was ahead means a vacuum now
rather than none until it is passed. `dbt build` by hand keeps DuckDB's default unless
the variable is set; the loaders and the sync never read it (they append, or write a few
rows).
"""

from __future__ import annotations

from datetime import datetime, timedelta

ENV = "AUDIENCES_DUCKDB_MAX_VACUUM_TASKS"
DEFAULT_EVERY_HOURS = 24.0


def is_due(last_vacuumed_at: datetime | None, now: datetime, every: timedelta) -> bool:
    """Whether this tick's build vacuums: no vacuum on record, or the last one at least
    `every` ago (`every` of zero: each tick, DuckDB's own behaviour)."""
    return last_vacuumed_at is None or now - last_vacuumed_at >= every


def build_env(due: bool) -> dict[str, str]:
    """The variable for the build's environment: nothing when due (DuckDB's default, or
    the operator's own value), 0 otherwise."""
    return {} if due else {ENV: "0"}
