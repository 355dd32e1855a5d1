"""The `as_of` var as analysts type it: a malformed one is named with the forms that work
(it failed as Python's "Invalid isoformat string", or "month must be in 1..12", naming
neither the var nor a form). The
forms that work beyond the usual ones (ISO 8601's basic form, a lowercase `z`) are pinned
by int_audience_ledger_moments' unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.small_warehouse import Warehouse, environment

pytestmark = [pytest.mark.dbt]

RENDER = ["compile", "--inline", "select {{ as_of_timestamp() }} as moment"]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(environment(tmp_path), "dev")


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01"])
def test_a_malformed_as_of_names_the_var_and_the_forms_that_work(
    warehouse: Warehouse, as_of: str
) -> None:
    result = warehouse.dbt_result(*RENDER, as_of=as_of)
    assert result.returncode != 0
    assert (
        "as_of must be an ISO 8601 moment such as 2026-03-01T00:00:00Z, "
        f"2026-03-01T09:30:00+02:00 or 2026-03-01, not {as_of}"
    ) in result.stdout
    assert "Invalid isoformat" not in result.stdout
    assert "month must be in" not in result.stdout


def test_a_moment_as_git_prints_it_is_read_as_before(warehouse: Warehouse) -> None:
    # `git log --format=%ci`: a space before the offset, which Python reads too.
    rendered = warehouse.dbt(*RENDER, as_of="2026-03-01 10:30:00 +0200")
    assert "cast('2026-03-01 08:30:00' as timestamp)" in rendered
