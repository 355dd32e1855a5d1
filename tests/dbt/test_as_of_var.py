"""The `as_of` var as analysts type it: a malformed one is named with the forms that work
(it failed as Python's "Invalid isoformat string", naming neither the var nor a form), and
a lowercase `z` is UTC like `Z`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbt.small_warehouse import Warehouse, environment

pytestmark = [pytest.mark.dbt]

RENDER = ["compile", "--inline", "select {{ as_of_timestamp() }} as moment"]


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(environment(tmp_path), "dev")


@pytest.mark.parametrize("as_of", ["yesterday", "1733000000"])
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


def test_a_lowercase_z_is_utc(warehouse: Warehouse) -> None:
    # Offsets and plain dates are read by every replay test; `z` was refused.
    rendered = warehouse.dbt(*RENDER, as_of="2026-03-01T09:30:00z")
    assert "cast('2026-03-01 09:30:00' as timestamp)" in rendered
