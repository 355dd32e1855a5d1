"""A tick lets DuckDB vacuum its storage once every --vacuum-every, not on every tick
(scripts/run/storage_vacuum.py).

Two real ticks (`audiences run`, each a `dbt build`) on a copy of the small warehouse,
with a copy of the project that holds one scratch model more: a table of DuckDB's
`max_vacuum_tasks` as each build saw it. The first tick finds no vacuum on record, so its
build keeps DuckDB's default and records when it started; the second, minutes later,
builds with 0, records nothing and keeps the first build's parse (the setting is
applied by a hook, not the profile). The two are the ticks of one loop (`--every 0.01
--ticks 2`), whose builds are forked from it (scripts/run/warm_dbt.py); the key-check
ticks (tests/dbt/test_key_checks.py) are one-shot. A mark from a clock that was ahead is
forgotten (checked on the runs table alone).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from scripts.run import record, storage_vacuum
from scripts.run.command import run
from scripts.warehouse import connect
from tests.dbt.small_warehouse import environment, run_tick
from tests.versions.project_copy import copy_project

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(900)]

DAY = timedelta(hours=24)
SCRATCH = "scratch_vacuum_setting"


@pytest.fixture
def env(small_warehouse: Path, tmp_path: Path) -> dict[str, str]:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    project = tmp_path / "project"
    project.mkdir()
    copy_project(project)
    (project / "models" / "marts" / f"{SCRATCH}.sql").write_text(
        "{{ config(materialized='incremental') }}\n"
        "select current_setting('max_vacuum_tasks') as max_vacuum_tasks,\n"
        "    current_timestamp as seen_at\n"
    )
    env = {
        **environment(tmp_path),
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(project),
        "AUDIENCES_RUN_LOCK": str(tmp_path / "run.lock"),
    }
    # An operator's own value reaches a tick that vacuums, and is overridden in one that
    # does not; unset here so that DuckDB's default shows.
    env.pop(storage_vacuum.ENV, None)
    return env


def _dbt_seed(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "seed", "--select",
         "audience_fingerprints", "--no-use-colors"],
        cwd=env["DBT_PROJECT_DIR"], env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


def _db(env: dict[str, str], read_only: bool = True) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(env["AUDIENCES_DUCKDB_PATH"], read_only=read_only)


def _runs(env: dict[str, str]) -> list[tuple]:
    with _db(env) as db:
        return db.execute(
            f"select started_at, finished_at, storage_vacuumed_at from {record.RUNS} "
            "order by started_at"
        ).fetchall()


def _settings_seen_by_the_builds(env: dict[str, str]) -> list[int]:
    with _db(env) as db:
        return [
            setting
            for (setting,) in db.execute(
                f"select max_vacuum_tasks from analytics.{SCRATCH} order by seen_at"
            ).fetchall()
        ]


def test_a_tick_vacuums_once_a_day_not_every_tick(env: dict[str, str]) -> None:
    loop = run_tick(env, "--every", "0.01", "--ticks", "2")
    assert loop.returncode == 0, loop.stdout[-3000:] + loop.stderr[-3000:]
    first, second = loop.stdout.split("==> dbt build:")[1:]
    assert "dbt imported once" in loop.stdout
    # Each build forked from the loop, which holds no thread (DuckDB's included) then.
    assert loop.stdout.count("dbt build: forked from the loop's process") == 2
    assert "not forked" not in loop.stdout
    assert "leaked semaphore" not in loop.stdout + loop.stderr
    assert "storage vacuum: this tick (none on record; every 24 h" in loop.stdout
    # DuckDB's own default, then 0.
    assert _settings_seen_by_the_builds(env) == [100, 0]
    [(started, finished, vacuumed), (_, _, none)] = _runs(env)
    assert vacuumed is not None
    assert none is None
    assert started < vacuumed < finished
    assert (
        f"storage vacuum: skipped (the last at {vacuumed:%Y-%m-%d %H:%M}; every 24 h"
        in first  # printed before the second build's header
    )
    assert "Completed successfully" in second
    assert loop.stdout.rstrip().endswith("loop: 2 ticks done (--ticks)")
    # The setting changed between the two builds, and dbt kept the first one's parse:
    # in profiles.yml it would have made dbt parse the whole project again.
    last_build = (
        (Path(env["DBT_LOG_PATH"]) / "dbt.log")
        .read_text()
        .split("Running with dbt=")[-1]
    )
    assert "Unable to do partial parsing" not in last_build
    assert "Partial parsing enabled, no changes found" in last_build

    # An operator's value that is not a whole number stops the build at its first hook.
    bad = _dbt_seed({**env, storage_vacuum.ENV: "none"})
    assert bad.returncode != 0
    assert "AUDIENCES_DUCKDB_MAX_VACUUM_TASKS must be a whole number" in bad.stdout


@pytest.mark.parametrize(
    ("column", "latest"),
    [
        ("storage_vacuumed_at", record.storage_vacuumed_before),
        ("keys_verified_at", record.keys_verified_before),
    ],
)
def test_a_mark_from_a_clock_that_was_ahead_is_forgotten(
    duckdb_path: Path, column: str, latest
) -> None:
    """Kept, no tick would vacuum until the clock had passed it, and the key checks
    would skip rows written since with earlier stamps."""
    now = datetime(2026, 12, 6, 12, 0, 0)
    with connect() as wh:
        record.ensure_table(wh)
        for run_id, mark in (("a", now - DAY / 2), ("b", now + 2 * DAY), ("c", None)):
            wh.execute(
                f"insert into {record.RUNS} (run_id, target_name, started_at, status, "
                f"{column}) values (%s, 'dev', %s, 'ok', %s)",
                (run_id, now - DAY, mark),
            )
        assert latest(wh, "dev", now) == now - DAY / 2
        assert wh.query(
            f"select run_id from {record.RUNS} where {column} is not null"
        ) == [("a",)]
        assert latest(wh, "other", now) is None
        # A mark at the very moment of `now` is not ahead of it: kept.
        wh.execute(
            f"insert into {record.RUNS} (run_id, target_name, started_at, status, "
            f"{column}) values ('d', 'edge', %s, 'ok', %s)",
            (now - DAY, now),
        )
        assert latest(wh, "edge", now) == now


def test_is_due_after_every_has_passed_and_without_a_record() -> None:
    now = datetime(2026, 12, 6, 12, 0, 0)
    assert storage_vacuum.is_due(None, now, DAY)
    assert storage_vacuum.is_due(now - DAY, now, DAY)
    assert not storage_vacuum.is_due(now - DAY + timedelta(seconds=1), now, DAY)
    # --vacuum-every 0: every tick, as DuckDB does on its own.
    assert storage_vacuum.is_due(now, now, timedelta(0))


def test_build_env_sets_zero_only_when_not_due() -> None:
    assert storage_vacuum.build_env(True) == {}
    assert storage_vacuum.build_env(False) == {storage_vacuum.ENV: "0"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "nan is not a number of hours"),
        ("-1", "-1.0 is not in the range"),
        ("1e300", "is not in the range 0<=x<=87600"),
    ],
)
def test_a_bad_vacuum_every_is_a_usage_error(value: str, message: str) -> None:
    result = CliRunner().invoke(run, ["--vacuum-every", value])
    assert result.exit_code == 2
    assert message in result.output
