"""The `as_of` var as analysts type it: a malformed one is named with the forms that work
(it failed as Python's "Invalid isoformat string", naming neither the var nor a form). The
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


def test_a_malformed_as_of_names_the_var_and_the_forms_that_work(
    warehouse: Warehouse,
) -> None:
    as_of = "yesterday"
    result = warehouse.dbt_result(*RENDER, as_of=as_of)
    assert result.returncode != 0
    assert (
        "as_of must be an ISO 8601 moment such as 2026-03-01T00:00:00Z, "
        f"2026-03-01T09:30:00+02:00 or 2026-03-01, not {as_of}"
    ) in result.stdout
    assert "Invalid isoformat" not in result.stdout
