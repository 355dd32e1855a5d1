"""The membership ledger keeps its history (issue 8 §2): `--full-refresh` leaves it as it
was, a build with a future as_of or with `--empty` writes nothing and says so, a later real
build carries on as if it never happened, and `rebuild_ledger: true` is the one deliberate
way to start over.

Each test works on its own copy of a small warehouse that was built twice (two as_of
moments, so the ledger holds entries and exits on two dates).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from scripts.segment_sync.guards import check_dbt_empty
from tests.dbt.small_warehouse import FIRST, SECOND, Warehouse, environment

# A dbt run takes a minute on a busy 2-core machine; the session fixture does two.
pytestmark = [pytest.mark.dbt, pytest.mark.slow, pytest.mark.timeout(1800)]

THIRD = "2026-03-21T12:00:00Z"
BUILT_AS_OF = (
    "select distinct built_as_of, is_built_for_future_as_of "
    "from analytics.sync_segment__audience_memberships union "
    "select distinct built_as_of, is_built_for_future_as_of "
    "from analytics.sync_segment__audience_exits"
)
FUTURE = "2030-01-01T00:00:00Z"
LOOKS = "select evaluated_at from analytics.int_audience_ledger_moments order by 1"
EXITED_CURRENT_MEMBERS = (
    "select count(*) from analytics.sync_segment__audience_exits as exits "
    "inner join analytics.fct_audience_memberships as members "
    "on exits.audience_key = members.audience_key and exits.user_id = members.user_id"
)


@pytest.fixture
def warehouse(small_warehouse: Path, tmp_path: Path) -> Warehouse:
    shutil.copy(small_warehouse, tmp_path / "warehouse.duckdb")
    return Warehouse(environment(tmp_path), "dev")


def _looks(warehouse: Warehouse) -> list[str]:
    """The moments the ledger looked at the audiences, as YYYY-MM-DD."""
    return [str(moment)[:10] for (moment,) in warehouse.rows(LOOKS)]


def _assert_history_on_two_dates(ledger: list[tuple]) -> None:
    dates = {row[-1] for row in ledger}
    assert len(dates) == 2, dates
    assert any(row[5] == "exited" for row in ledger)


def _assert_full_refresh_keeps_ledger(warehouse: Warehouse) -> None:
    before = warehouse.ledger()
    _assert_history_on_two_dates(before)
    assert _looks(warehouse) == ["2026-02-15", "2026-03-20"]
    warehouse.dbt("run", "--full-refresh", as_of=SECOND)
    assert warehouse.ledger() == before
    # The moments it looked at are history too (exit reasons read the previous one).
    assert _looks(warehouse) == ["2026-02-15", "2026-03-20"]
    # `dbt build --full-refresh` (tests included) leaves it alone too.
    warehouse.dbt(
        "build", "--full-refresh", "--select", "fct_audience_membership_changes",
        as_of=SECOND,
    )  # fmt: skip
    assert warehouse.ledger() == before


def _assert_future_as_of_writes_nothing(warehouse: Warehouse) -> None:
    before = warehouse.ledger()
    output = warehouse.dbt("run", as_of=FUTURE)
    assert "is in the future" in output
    assert "records no entries or exits" in output
    assert warehouse.ledger() == before
    looks = _looks(warehouse)
    assert "2030-01-01" not in looks
    # The sync's inputs say which moment they are: the sync refuses a future one.
    assert warehouse.rows(BUILT_AS_OF) == [(datetime(2030, 1, 1), True)]
    # The next real build carries on: it records the changes of its own moment.
    warehouse.dbt("run", as_of=THIRD)
    assert _looks(warehouse) == [*looks, "2026-03-21"]
    assert warehouse.rows(BUILT_AS_OF) == [(datetime(2026, 3, 21, 12), False)]
    after = warehouse.ledger()
    assert set(before) < set(after)
    new_dates = {row[-1] for row in set(after) - set(before)}
    assert [str(date)[:10] for date in new_dates] == ["2026-03-21"]
    assert max(row[-1] for row in after).year == 2026
    assert warehouse.rows(EXITED_CURRENT_MEMBERS) == [(0,)]


def test_empty_run_writes_no_history(warehouse: Warehouse, tmp_path: Path) -> None:
    """`dbt run --empty` (dbt's schema-only run: every ref reads no rows) saw no members
    and recorded every member as exited; the next real build at the same as_of then
    appended nothing (not after the ledger's latest change), so they stayed exited.
    Built with `dbt build --empty`, as CI jobs check a project: the ledger's unit tests
    run too, on their given rows, and pass (they expected history an --empty run skipped)."""
    before = warehouse.ledger()
    output = warehouse.dbt("build", "--empty", as_of=THIRD)
    assert "--empty: " in output
    assert "records no entries or exits" in output
    assert warehouse.ledger() == before
    assert _looks(warehouse) == ["2026-02-15", "2026-03-20"]
    # The sync refuses to send the empty inputs, by what dbt itself wrote of the run.
    refusals = check_dbt_empty(tmp_path / "target" / "run_results.json")
    assert [r.rule for r in refusals] == ["empty_build"]
    assert "`dbt build --empty`" in refusals[0].message
    warehouse.dbt("run", as_of=THIRD)
    after = warehouse.ledger()
    assert set(before) < set(after)
    assert warehouse.rows(EXITED_CURRENT_MEMBERS) == [(0,)]
    refused = warehouse.dbt_result(
        "run", "--empty", "--select", "fct_audience_membership_changes", as_of=THIRD,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert refused.returncode != 0
    assert "rebuild_ledger with --empty" in refused.stdout
    assert warehouse.ledger() == after


def test_full_refresh_keeps_the_ledger(warehouse: Warehouse) -> None:
    _assert_full_refresh_keeps_ledger(warehouse)


def test_future_as_of_writes_no_history(warehouse: Warehouse) -> None:
    _assert_future_as_of_writes_nothing(warehouse)


def test_rebuild_ledger_is_deliberate_and_says_what_is_lost(
    warehouse: Warehouse,
) -> None:
    before = warehouse.ledger()
    refused = warehouse.dbt_result(
        "run", "--select", "fct_audience_membership_changes", as_of=THIRD,
        extra_vars=', "rebuild_ledger": "yes"',
    )  # fmt: skip
    assert refused.returncode != 0
    assert "rebuild_ledger must be true or false" in refused.stdout
    refused = warehouse.dbt_result(
        "run", "--select", "fct_audience_membership_changes", as_of=FUTURE,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert refused.returncode != 0
    assert "would leave an empty ledger" in refused.stdout
    assert warehouse.ledger() == before

    output = warehouse.dbt(
        "run", "--select", "fct_audience_membership_changes", as_of=THIRD,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert "is rebuilt from scratch" in output
    assert "Every past entry and exit" in output
    rebuilt = warehouse.ledger()
    assert rebuilt
    assert {(row[5], str(row[-1])[:10]) for row in rebuilt} == {
        ("entered", "2026-03-21")
    }
    # Rebuilt with the ledger when both are selected, the moments start over too.
    warehouse.dbt(
        "run", "--select", "int_audience_ledger_moments", as_of=THIRD,
        extra_vars=', "rebuild_ledger": true',
    )  # fmt: skip
    assert _looks(warehouse) == ["2026-03-21"]


# Each entered_at of the members, with how many there are and how many of them the
# ledger later shows exiting.
STINTS = (
    "select entered_at, count(*), sum(case when exists ("
    "select 1 from analytics.fct_audience_membership_changes as changes "
    "where changes.audience_key = members.audience_key "
    "and changes.person_id = members.person_id and changes.change_type = 'exited'"
    ") then 1 else 0 end) "
    "from analytics.fct_audience_memberships as members group by 1"
)


def test_a_replay_shows_the_stints_open_at_its_moment(warehouse: Warehouse) -> None:
    """A replay of FIRST reads the ledger as it stood then: every member of that moment
    entered at FIRST, also those whose stint the ledger closed at SECOND (its newest row,
    an exit, once left them with no entered_at) and none with a later entry."""
    before = warehouse.ledger()
    warehouse.dbt("run", as_of=FIRST)
    stints = warehouse.rows(STINTS)
    assert [row[0] for row in stints] == [datetime(2026, 2, 15, 12)], stints
    ((_, members, exited_since),) = stints
    assert members > exited_since > 0
    assert warehouse.ledger() == before  # a replay writes no history


@pytest.mark.postgres
def test_postgres_ledger_survives_full_refresh_and_future_as_of(
    small_postgres_copy: dict[str, str], tmp_path: Path
) -> None:
    warehouse = Warehouse({**environment(tmp_path), **small_postgres_copy}, "postgres")
    _assert_full_refresh_keeps_ledger(warehouse)
    _assert_future_as_of_writes_nothing(warehouse)
