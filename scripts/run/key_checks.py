"""Which keys a tick's uniqueness checks must look at: those written since the last pass.

The big tables (the raw events behind staging, the deduplicated events) are tested
with `unique_new_keys` (macros/tests/unique_new_keys.sql). Given the moment the last build
whose key checks all passed started, the test checks only the keys of rows written after
it, each against the whole table: at 200k customers, about 0.2 s per table instead of
1.5-5.5 s, on the build's critical path.

Why nothing is missed: two rows share a key only if one of them was written after the last
check that passed. Every write is stamped by the process that makes it: the loaders'
loaded_at (read after they hold the warehouse), the models' run stamp (dbt's start). The
tick's loads come before its build, which checks each table after writing it, so rows
stamped before the build's start were all there when its checks passed; the build's own
rows, and everything after, carry later stamps and are checked by the next tick again.
A full refresh restamps every row.

What it assumes, as the incremental models' watermarks do: no other load or dbt run writes
these tables while a tick runs (DuckDB admits one writer at a time, so only a dbt process
started before the tick's build and still parsing when it ends could; on PostgreSQL,
schedule loads and builds in sequence), and the clocks that stamp rows agree. A mark later
than the clock is forgotten (record.keys_verified_before), so a clock that went back means
a full check rather than a hole; one stepped back further than the time between two ticks
is the exception: after such a correction, run `dbt build` by hand once.

The tick passes the mark in AUDIENCES_KEYS_VERIFIED_BEFORE and records, in its row of
audiences_ops.runs (keys_verified_at), when its own build started if its checks all passed.
A failed, skipped or interrupted check leaves the mark where it was, so the next tick checks
the same keys again. The first tick, and any `dbt build` outside a tick, checks every key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scripts.dbt_artifacts import read_manifest, tests_named
from scripts.run.findings import fresh_run_results

ENV = "AUDIENCES_KEYS_VERIFIED_BEFORE"
TEST_NAME = "unique_new_keys"


def scoped_env(verified_before: datetime | None) -> dict[str, str]:
    """The variable for the build's environment ("" unsets it: an operator's own value
    must not scope a tick's checks)."""
    if verified_before is None:
        return {ENV: ""}
    return {ENV: verified_before.isoformat(sep=" ")}


def checks_passed(run_results: Path, since: datetime) -> bool:
    """True only if this tick's `dbt build` ran every key check and each passed.

    `since`: when the build started, naive UTC. The manifest beside run_results.json
    (written by the same invocation) names the checks; run_results.json carries no test
    names."""
    results = fresh_run_results(run_results, since)
    if results is None:
        return False
    checks = tests_named(read_manifest(run_results.parent / "manifest.json"), TEST_NAME)
    status = {r.get("unique_id"): r.get("status") for r in results}
    return bool(checks) and all(status.get(check) == "pass" for check in checks)
