"""A tick checks only the keys written since the last tick whose key checks passed
(scripts/run/key_checks.py, macros/tests/unique_new_keys.sql), and loses nothing by it.

Two real ticks (`audiences run`, each a `dbt build`) on a copy of the small warehouse:
the first checks every key and records when its build started; before the second, a
duplicate is written after that mark (it must fail the check) and another before it
(which the first tick would have caught had it been there; the scoped check skips it).
The failed check must not move the mark, and a `dbt test` outside a tick checks every
key again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from scripts.run import key_checks, record
from scripts.warehouse import connect
from tests.conftest import REPO_ROOT
from tests.dbt.small_warehouse import environment, run_tick

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
KEY_TESTS = "test_name:unique_new_keys"
RAW_WEBHOOK_KEY = "unique_new_keys_stg_customerio__webhook_events_event_id"
DEDUPLICATED_KEY = "unique_new_keys_int_message_events_deduplicated_message_event_id"


@pytest.fixture
def env(small_warehouse: Path, tmp_path: Path) -> dict[str, str]:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    return {
        **environment(tmp_path),
        "AUDIENCES_RUN_LOCK": str(tmp_path / "run.lock"),
        "AUDIENCES_DBT_RUN_RESULTS": str(tmp_path / "target" / "run_results.json"),
        # An operator's stray value must not reach a tick's first build.
        key_checks.ENV: "2000-01-01 00:00:00",
    }


def _dbt_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dbt"), "test", "--select", KEY_TESTS, "--no-use-colors"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def _runs(env: dict[str, str]) -> list[tuple]:
    with duckdb.connect(env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        return db.execute(
            "select started_at, finished_at, keys_verified_at from audiences_ops.runs "
            "order by started_at"
        ).fetchall()


def _failed_tests(output: str) -> set[str]:
    return {
        name
        for name in (RAW_WEBHOOK_KEY, DEDUPLICATED_KEY)
        if any("FAIL" in line and name in line for line in output.splitlines())
    }


def test_a_tick_checks_the_keys_written_since_the_last_passing_check(
    env: dict[str, str],
) -> None:
    first = run_tick(env)
    assert "key checks: keys written since" not in first.stdout, first.stdout
    [(first_started, first_finished, first_verified)] = _runs(env)
    # The mark: when its build started, between the tick's start and its end.
    assert first_verified is not None, first.stdout[-3000:]
    assert first_started < first_verified < first_finished

    with duckdb.connect(env["AUDIENCES_DUCKDB_PATH"]) as db:
        # Written before the mark: a copy of a raw webhook row, with its old loaded_at.
        db.execute(
            "insert into raw_customerio.webhook_events "
            "select * from raw_customerio.webhook_events limit 1"
        )
        # Written after the mark: a second row for one deduplicated event, 0.3 s into
        # the whole second the held copy occurred at (a key includes its second, and
        # the scoped check reads the rows from the new rows' earliest second on: from
        # their instant instead, it would miss the held copy).
        db.execute(
            "insert into analytics.int_message_events_deduplicated "
            "select * replace (?::timestamp as deduplicated_at, "
            "occurred_at + interval 300 milliseconds as occurred_at) "
            "from analytics.int_message_events_deduplicated "
            "where occurred_at = date_trunc('second', occurred_at) limit 1",
            [datetime.now(UTC).replace(tzinfo=None)],
        )

    second = run_tick(env)
    assert second.returncode != 0
    mark = first_verified.isoformat(sep=" ")
    assert f"key checks: keys written since {mark}" in second.stdout, second.stdout
    assert _failed_tests(second.stdout) == {DEDUPLICATED_KEY}, second.stdout[-4000:]
    # The failed check leaves the mark where it was: the next tick checks these again.
    assert [verified for _, _, verified in _runs(env)] == [first_verified, None]

    # Outside a tick, without the variable, every key is checked.
    unscoped = {**env}
    unscoped.pop(key_checks.ENV)
    everything = _dbt_test(unscoped)
    assert _failed_tests(everything.stdout) == {RAW_WEBHOOK_KEY, DEDUPLICATED_KEY}, (
        everything.stdout[-4000:]
    )


def test_a_mark_that_is_not_a_timestamp_is_a_clear_error(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    env = {**environment(tmp_path), key_checks.ENV: "2026-12-03'; drop table x; --"}
    result = _dbt_test(env)
    assert result.returncode != 0
    assert "AUDIENCES_KEYS_VERIFIED_BEFORE must be a UTC timestamp" in result.stdout


def test_scoped_env_sets_the_mark_or_unsets_an_operators_value() -> None:
    mark = datetime(2026, 12, 3, 5, 0, 0)
    assert key_checks.scoped_env(mark) == {key_checks.ENV: "2026-12-03 05:00:00"}
    assert key_checks.scoped_env(None) == {key_checks.ENV: ""}


def test_a_mark_later_than_the_clock_is_forgotten_with_every_mark_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that was ahead stamped a mark in the future; rows written once it is
    corrected carry earlier stamps. Used again once the clock passes it, the mark would
    hide them, so the first tick that sees it forgets it for good."""
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    with connect() as wh:
        for run_id, hour in (("a", 4), ("b", 7)):  # b: the clock was 1 h ahead
            record.start(wh, run_id, "dev", datetime(2026, 12, 3, hour, 0))
            record.finish(wh, run_id, status="ok", exit_code=0, steps=[], alerts=[],
                          keys_verified_at=datetime(2026, 12, 3, hour, 0, 5))  # fmt: skip
        earlier = datetime(2026, 12, 3, 4, 0, 5)
        assert (
            record.keys_verified_before(wh, "dev", datetime(2026, 12, 3, 6)) == earlier
        )
        # Once the clock has passed 07:00:05 again, the forgotten mark stays forgotten.
        assert (
            record.keys_verified_before(wh, "dev", datetime(2026, 12, 3, 8)) == earlier
        )
        assert (
            record.keys_verified_before(wh, "other", datetime(2026, 12, 3, 8)) is None
        )


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _artifacts(target: Path, statuses: dict[str, str], checks: list[str]) -> Path:
    nodes = {
        check: {"resource_type": "test", "test_metadata": {"name": "unique_new_keys"}}
        for check in checks
    }
    nodes["test.p.not_null_x"] = {
        "resource_type": "test",
        "test_metadata": {"name": "not_null"},
    }
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    results = [{"unique_id": k, "status": v} for k, v in statuses.items()]
    path = target / "run_results.json"
    path.write_text(json.dumps({"results": results}))
    return path


@pytest.mark.parametrize(
    ("statuses", "passed"),
    [
        ({"test.p.a": "pass", "test.p.b": "pass", "test.p.not_null_x": "fail"}, True),
        ({"test.p.a": "pass", "test.p.b": "fail"}, False),
        ({"test.p.a": "pass", "test.p.b": "skipped"}, False),
        ({"test.p.a": "pass"}, False),  # b did not run (a selection, a crash)
    ],
)
def test_checks_pass_only_when_every_key_check_ran_and_passed(
    tmp_path: Path, statuses: dict[str, str], passed: bool
) -> None:
    path = _artifacts(tmp_path, statuses, ["test.p.a", "test.p.b"])
    assert key_checks.checks_passed(path, _utc_now() - timedelta(minutes=1)) is passed


def test_results_older_than_the_tick_or_without_a_manifest_say_nothing(
    tmp_path: Path,
) -> None:
    path = _artifacts(tmp_path, {"test.p.a": "pass"}, ["test.p.a"])
    assert key_checks.checks_passed(path, _utc_now() + timedelta(minutes=1)) is False
    (tmp_path / "manifest.json").unlink()
    assert key_checks.checks_passed(path, _utc_now() - timedelta(minutes=1)) is False
