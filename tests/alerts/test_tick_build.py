"""The scheduled tick's build: every model and data test, no unit tests.

Unit tests check the SQL on fixed inputs; CI and `make build` run them. A tick over new
data would spend about a tenth of its nodes on them and learn nothing (docs/scheduling.md).
"""

from __future__ import annotations

import json

from tests.alerts.conftest import Tick


def test_the_tick_builds_models_and_data_tests_but_not_unit_tests(tick: Tick) -> None:
    tick.env["DBT_TARGET_PATH"] = str(tick.target_dir)
    tick.env["DBT_LOG_PATH"] = str(tick.tmp_path / "logs")

    out = tick.run("--no-sync")

    assert out.code == 0, out.output + out.stderr
    results = json.loads((tick.target_dir / "run_results.json").read_text())["results"]
    kinds = {row["unique_id"].split(".")[0] for row in results}
    assert {"model", "test", "seed"} <= kinds
    assert "unit_test" not in kinds
    models = {
        row["unique_id"] for row in results if row["unique_id"].startswith("model.")
    }
    assert "model.engagement_audiences.fct_audience_memberships" in models
