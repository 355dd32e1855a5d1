"""Session warehouses. The demo one: generate -> load (in two halves) -> dbt build.

Loading the webhook files in two halves with a dbt build between them exercises the
incremental path of fct_message_events and the ledger for real; the tests then compare the
incremental result with a full refresh and the audiences with an independent Python
computation (tests/dbt/independent_audiences.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests import dbt_commands
from tests.conftest import fresh_database
from tests.dbt import small_warehouse as small
from tests.postgres_server import create_database

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
        result = dbt_commands.run(
            args, self.env, capture_output=True, text=True, check=False
        )
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


def _write_supplement(data_dir: Path) -> None:
    """Hand-made people for the short-window audiences the random demo rarely fills
    (replenishment 48-120 h, fatigued, cart recovery at its edges), as a real webhook file
    and an orders file that go through the same loaders as everything else."""
    as_of = datetime.fromisoformat(AS_OF.replace("Z", "+00:00"))
    events, orders = (
        [],
        [
            "order_id,customer_id,email,status,total_cents,currency,ordered_at,updated_at"
        ],
    )
    sequence = 0

    def event(person: int, metric: str, hours_ago: float, campaign: int, href: str | None,
              channel: str = "email", cio_id: str | None = "", into: list | None = None,
              ) -> None:  # fmt: skip
        nonlocal sequence
        sequence += 1
        identifiers = {"id": f"cus_supp_{person}", "email": f"Supp.{person}@Example.org",
                       "cio_id": cio_id if cio_id != "" else f"supp{person:08x}"}  # fmt: skip
        if cio_id is None:
            del identifiers["cio_id"]
        data = {
            "campaign_id": campaign, "action_id": campaign * 10 + 1,
            "delivery_id": f"SUPP{person:05d}{sequence:06d}", "journey_id": f"J{sequence:025d}",
            "identifiers": identifiers,
            "recipient": f"supp.{person}@example.org", "subject": "Supplement",
        }  # fmt: skip
        if href:
            data.update({"href": href, "link_id": 1, "machine": False})
        stamp = int((as_of - timedelta(hours=hours_ago)).timestamp())
        (events if into is None else into).append(
            {"event_id": f"SUPP{sequence:022d}", "object_type": channel,
             "metric": metric, "timestamp": stamp, "data": data})  # fmt: skip

    serum = "https://shop.example/products/hydrating-serum?utm_source=customerio"
    cart = "https://shop.example/cart?token=abc"
    for person, hours in enumerate((30, 47.9, 48.5, 60, 90, 119.5, 121, 150)):
        event(person, "clicked", hours, 104, serum, "email" if person % 2 else "push")
    # Two replenishment clickers bought after the click, one before it.
    for person, _clicked, ordered in ((2, 48.5, 40.0), (3, 60, 59.0), (4, 90, 95.0)):
        when = (as_of - timedelta(hours=ordered)).strftime("%Y-%m-%dT%H:%M:%SZ")
        orders.append(f"ord_supp_{person},cus_supp_{person},supp.{person}@example.org,"
                      f"completed,3800,USD,{when},{when}")  # fmt: skip
    for person in range(20, 26):
        for send in range(6 + person % 2):
            event(person, "sent", 6 + send * 20, 3001, None)
    for person, hours in ((30, 71.9), (31, 72.1), (32, 10)):
        event(person, "clicked", hours, 102, cart)
    # Identity that changes between the two builds: person 40's customer_id is first seen
    # with one cio_id (a file of the first half), later with another (the last file). An
    # event that carries only the customer_id must move to the newer cio_id's person on
    # the incremental build, exactly as a full refresh resolves it.
    first_half: list[dict] = []
    event(40, "delivered", 24 * 12, 3001, None, cio_id="moved00a", into=first_half)
    event(40, "opened", 24 * 11, 3001, None, cio_id=None, into=first_half)
    event(40, "clicked", 24 * 2, 3001, "https://shop.example/", cio_id="moved00b")
    folder = data_dir / "webhooks"
    (folder / "0000-01-01_supplement.ndjson").write_text(
        "".join(json.dumps(e) + "\n" for e in first_half)
    )
    (folder / "9999-12-31_supplement.ndjson").write_text(
        "".join(json.dumps(e) + "\n" for e in events)
    )
    (data_dir / "orders" / "9999-12_supplement.csv").write_text(
        "\n".join(orders) + "\n"
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
    _write_supplement(warehouse.data_dir)
    webhook_files = sorted((warehouse.data_dir / "webhooks").iterdir())
    half = len(webhook_files) // 2
    # Loaders exit 3 when rejects pass 1 %; the demo's dirt stays well below that.
    warehouse.run(audiences, "load", "webhooks", *map(str, webhook_files[:half]))
    warehouse.run(audiences, "load", "orders", str(warehouse.data_dir / "orders"))
    # The data-health checks would rightly flag this two-phase build (half the files as
    # of a later moment look like an outage, then audiences jump); tests/dbt/
    # test_data_health.py judges a copy of it rebuilt in one go.
    warehouse.dbt("build", "--exclude", "tag:data_health", as_of=FIRST_AS_OF)
    warehouse.run(audiences, "load", "webhooks", *map(str, webhook_files[half:]))
    warehouse.run(
        audiences, "load", "segment-events", str(warehouse.data_dir / "segment")
    )
    warehouse.dbt("build", "--exclude", "tag:data_health")
    return warehouse


@pytest.fixture(scope="session")
def small_demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo files for tests/dbt/small_warehouse.py: 300 people, 30 days."""
    data = tmp_path_factory.mktemp("small-demo-data")
    small.generate_demo_data(data)
    return data


@pytest.fixture(scope="session")
def small_warehouse(
    tmp_path_factory: pytest.TempPathFactory, small_demo_data: Path
) -> Path:
    """A small DuckDB warehouse built at two as_of moments; copy it before changing it."""
    root = tmp_path_factory.mktemp("small-warehouse")
    small.build_twice(small.Warehouse(small.environment(root), "dev"), small_demo_data)
    return root / "warehouse.duckdb"


@pytest.fixture(scope="session")
def small_postgres_warehouse(
    tmp_path_factory: pytest.TempPathFactory,
    small_demo_data: Path,
    postgres_server: dict[str, str],
) -> str:
    """The small warehouse on PostgreSQL: the same files built at the same two as_of
    moments. Returns the database's name; tests work on copies (small_postgres_copy)."""
    root = tmp_path_factory.mktemp("small-postgres-warehouse")
    name = f"audiences_small_{os.getpid()}"
    env = {**small.environment(root), **create_database(postgres_server, name)}
    small.build_twice(small.Warehouse(env, "postgres"), small_demo_data)
    return name


@pytest.fixture
def small_postgres_copy(
    small_postgres_warehouse: str,
    postgres_server: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """A copy of small_postgres_warehouse of this test's own; PG* variables set."""
    return fresh_database(postgres_server, monkeypatch, small_postgres_warehouse)
