"""One demo warehouse per test session: generate -> load (in two halves) -> dbt build.

Loading the webhook files in two halves with a dbt build between them exercises the
incremental path of fct_message_events and the ledger for real; the tests then compare the
incremental result with a full refresh and the audiences with an independent Python
computation (tests/dbt/independent_audiences.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
END_DATE = "2026-03-01"
AS_OF = "2026-03-01T12:00:00Z"
# The first build sees the first half of the files, as of an earlier moment.
FIRST_AS_OF = "2026-02-24T06:00:00Z"


@dataclass(frozen=True)
class DemoWarehouse:
    path: Path
    data_dir: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args), cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"{' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
        return result

    def dbt(self, *args: str, as_of: str = AS_OF) -> subprocess.CompletedProcess[str]:
        as_of_vars = '{"as_of": "' + as_of + '"}'
        return self.run(
            str(BIN / "dbt"), *args, "--no-use-colors", "--vars", as_of_vars
        )


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouse:
    root = tmp_path_factory.mktemp("demo-warehouse")
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    warehouse = DemoWarehouse(root / "warehouse.duckdb", root / "data", env)
    audiences = str(BIN / "audiences")
    warehouse.run(
        audiences, "demo-data", "--out", str(warehouse.data_dir), "--people", "2500",
        "--days", "50", "--seed", "11", "--end-date", END_DATE,
    )  # fmt: skip
    webhook_files = sorted((warehouse.data_dir / "webhooks").iterdir())
    half = len(webhook_files) // 2
    # Loaders exit 3 when rejects pass 1 %; the demo's dirt stays well below that.
    warehouse.run(audiences, "load", "webhooks", *map(str, webhook_files[:half]))
    warehouse.run(audiences, "load", "orders", str(warehouse.data_dir / "orders"))
    warehouse.dbt("build", as_of=FIRST_AS_OF)
    warehouse.run(audiences, "load", "webhooks", *map(str, webhook_files[half:]))
    warehouse.run(
        audiences, "load", "segment-events", str(warehouse.data_dir / "segment")
    )
    warehouse.dbt("build")
    return warehouse
