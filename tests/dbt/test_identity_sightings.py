"""int_identifier_combinations keeps each combination's latest sighting as new events
arrive: a late event (an old occurred_at, loaded now) must not move a sighting back, and
a new combination is added. A full refresh would keep the maximum; so must a run."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests import dbt_commands
from tests.dbt.small_warehouse import SECOND, environment

pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent
SIGHTING = (
    "select last_seen_at from analytics.int_identifier_combinations "
    "where cio_id is not distinct from ? and customer_id is not distinct from ? "
    "and email is not distinct from ?"
)


def test_a_late_event_keeps_the_latest_sighting_and_a_new_one_is_added(
    small_warehouse: Path, tmp_path: Path
) -> None:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    env = environment(tmp_path)
    now = datetime.now(UTC).replace(tzinfo=None)
    with duckdb.connect(env["AUDIENCES_DUCKDB_PATH"]) as db:
        ids = db.execute(
            "select cio_id, customer_id, email, last_seen_at "
            "from analytics.int_identifier_combinations "
            "where cio_id is not null and last_seen_at is not null order by all limit 1"
        ).fetchone()
        *combination, last_seen = ids
        # Webhook events as the loader lands them: the union (a view) reads these.
        row = (
            "select * replace (? as event_id, ? as occurred_at, ? as _loaded_at, "
            "? as identifiers_cio_id, ? as identifiers_id, ? as identifiers_email, "
            "null as email_address) from raw_customerio.webhook_events limit 1"
        )
        late = last_seen - timedelta(days=10)
        db.execute(
            f"insert into raw_customerio.webhook_events {row}",
            ["01LATE-KNOWN", late, now, *combination],
        )
        db.execute(
            f"insert into raw_customerio.webhook_events {row}",
            ["01LATE-NEW", late, now, "late-new-cio", None, None],
        )
    result = dbt_commands.run(
        [str(BIN / "dbt"), "run", "--select", "int_identifier_combinations",
         "--vars", '{"as_of": "' + SECOND + '"}', "--no-use-colors"],
        env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(env["AUDIENCES_DUCKDB_PATH"], read_only=True) as db:
        kept = db.execute(SIGHTING, combination).fetchall()
        added = db.execute(SIGHTING, ["late-new-cio", None, None]).fetchall()
    assert kept == [(last_seen,)]
    assert added == [(late,)]
