"""The scheduled tick's build: every model and data test, no unit tests.

Unit tests check the SQL on fixed inputs; CI and `make build` run them. A tick over new
data would spend about a tenth of its nodes on them and learn nothing (docs/scheduling.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.alerts.conftest import Tick
from tests.conftest import REPO_ROOT


def test_the_tick_builds_models_and_data_tests_but_not_unit_tests(tick: Tick) -> None:
    tick.env["DBT_TARGET_PATH"] = str(tick.target_dir)
    tick.env["DBT_LOG_PATH"] = str(tick.tmp_path / "logs")
    # Started as cron starts it: in the home folder, the project named by
    # $DBT_PROJECT_DIR, and no ~/.dbt/profiles.yml for dbt to fall back on. dbt finds
    # the project's profiles.yml because the tick works in the project folder (red
    # team, 2026-12-07: the build failed, dbt looking in the home folder and ~/.dbt).
    home = tick.tmp_path / "home"
    home.mkdir()
    tick.env["HOME"] = str(home)
    tick.env["DBT_PROJECT_DIR"] = str(REPO_ROOT)

    out = tick.run("--no-sync", cwd=home)

    assert out.code == 0, out.output + out.stderr
    results = json.loads((tick.target_dir / "run_results.json").read_text())["results"]
    kinds = {row["unique_id"].split(".")[0] for row in results}
    assert {"model", "test", "seed"} <= kinds
    assert "unit_test" not in kinds
    models = {
        row["unique_id"] for row in results if row["unique_id"].startswith("model.")
    }
    assert "model.engagement_audiences.fct_audience_memberships" in models


def test_a_build_that_wrote_no_results_of_its_own_stops_the_tick_before_the_sync(
    tick: Tick,
) -> None:
    # An older build's results, whose checks passed: the guardrails would read them.
    tick.dbt_artifacts([("model.engagement_audiences.dim_people", "success", "")])
    old = time.time() - 3600
    os.utime(tick.target_dir / "run_results.json", (old, old))
    tick.env["DBT_TARGET_PATH"] = str(tick.target_dir)
    tick.env["DBT_LOG_PATH"] = str(tick.tmp_path / "logs")
    tick.env["DBT_LOG_LEVEL"] = "not-a-level"  # dbt stops before it builds anything

    out = tick.run()

    assert out.code == 6, out.output + out.stderr
    assert "the sync did not run: `dbt build` wrote no run_results.json" in out.stderr
    assert "==> dbt build" in out.output
    assert "==> sync segment" not in out.output


def test_a_tick_started_outside_the_project_works_in_it(tick: Tick) -> None:
    """Started as cron starts it (in the home folder, the project named by
    $DBT_PROJECT_DIR), a tick reads and writes what it would started in the project:
    a warehouse path relative to the project (as the default `warehouse.duckdb` is)
    names the project's file, not one in the home folder, which would be a new, empty
    warehouse that loads everything again and re-sends every member. A landing folder
    given relative to where it started is still that folder, and a `scripts` module in
    the home folder is not what its steps import (red team, 2026-12-07)."""
    home = tick.tmp_path / "home"
    home.mkdir()
    hijacked = tick.tmp_path / "hijacked"
    (home / "scripts.py").write_text(f"open({str(hijacked)!r}, 'w').close()\n")
    landing = tick.tmp_path / "landing"
    landing.mkdir()
    event = {
        "event_id": "01JRT0000000000000000000A1", "object_type": "email",
        "metric": "sent", "timestamp": 1767225600,
        "data": {"customer_id": "cus_1", "delivery_id": "dlv_1", "campaign_id": 1},
    }  # fmt: skip
    (landing / "events.ndjson").write_text(json.dumps(event) + "\n")
    warehouse = tick.tmp_path / "warehouse.duckdb"
    tick.env["AUDIENCES_DUCKDB_PATH"] = os.path.relpath(warehouse, REPO_ROOT)
    tick.env["DBT_PROJECT_DIR"] = str(REPO_ROOT)
    tick.env["HOME"] = str(home)

    # As cron starts it: the console script (`python -m scripts` here would import the
    # home folder's module before the tick even started).
    out = subprocess.run(
        [str(Path(sys.executable).parent / "audiences"), "run", "--webhooks",
         "../landing", "--no-build", "--no-sync"],
        cwd=home, env=tick.env, capture_output=True, text=True, timeout=240,
        check=False,
    )  # fmt: skip

    assert out.returncode == 0, out.stdout + out.stderr
    assert "webhooks: read 1 = loaded 1 " in out.stdout, out.stdout
    assert warehouse.is_file()
    assert not (home / tick.env["AUDIENCES_DUCKDB_PATH"]).resolve().exists()
    assert not hijacked.exists()
