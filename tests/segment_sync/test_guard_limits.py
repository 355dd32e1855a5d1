"""Guardrail boundaries (issue 13 §3): each limit is tested exactly at the limit, one step
below and one step above, so `>` turned into `>=` (or the reverse) fails a test.

The rules run on a `Plan` as the planner summarises it; the end-to-end refusals through
the real command are in test_guardrails.py and test_resume.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from scripts.segment_sync.guards import Limits, check_plan
from scripts.segment_sync.plan import AudiencePlan, Plan

NOW = datetime(2026, 12, 1, 12, 0, 0)
AUDIENCE = "recent_purchasers"


def _limits(**changes: object) -> Limits:
    values: dict[str, object] = {
        "max_change_pct": 50.0,
        "min_audience_size": 100,
        "max_staleness_hours": 36.0,
        "dbt_run_results": None,
    }
    values.update(changes)
    return Limits(**values)  # type: ignore[arg-type]


def _plan(
    decided: int, enter: int = 0, exit_: int = 0, newest: datetime | None = NOW
) -> Plan:
    audience = AudiencePlan(
        audience_key=AUDIENCE,
        decided_members=decided,
        desired_members=decided + enter - exit_,
        decided_enter=enter,
        decided_exit=exit_,
    )
    return Plan(
        run_id="r",
        planned_at=NOW,
        audiences={AUDIENCE: audience},
        newest_input_at=newest,
    )


def _rules(plan: Plan, **limits: object) -> list[str]:
    return [r.rule for r in check_plan(plan, _limits(**limits), NOW)]


@pytest.mark.parametrize(
    ("enter", "exit_", "refused"),
    [
        (49, 0, False),  # one below the limit
        (50, 0, False),  # exactly at the limit: allowed
        (51, 0, True),  # one above
        (25, 25, False),  # entries and exits add up: exactly at
        (26, 25, True),
    ],
)
def test_guards__max_change_boundary(enter: int, exit_: int, refused: bool):
    assert _rules(_plan(100, enter, exit_)) == (["max_change"] if refused else [])


@pytest.mark.parametrize(
    ("pct", "refused"), [(20.9, True), (21.0, False), (21.1, False)]
)
def test_guards__max_change_boundary_on_the_percentage(pct: float, refused: bool):
    # 21 changes on 100 decided members is 21%.
    assert _rules(_plan(100, 21), max_change_pct=pct) == (
        ["max_change"] if refused else []
    )


@pytest.mark.parametrize(
    ("decided", "checked"),
    [(99, False), (100, True), (101, True)],  # min_audience_size = 100
)
def test_guards__min_audience_size_boundary(decided: int, checked: bool):
    # Growing by as many members as the audience has is always over 50%.
    assert _rules(_plan(decided, decided)) == (["max_change"] if checked else [])


def test_guards__drop_to_zero_from_one_member():
    assert _rules(_plan(1, 0, 1)) == ["drop_to_zero"]
    assert _rules(_plan(0, 0, 0)) == []


@pytest.mark.parametrize(
    ("age", "refused"),
    [
        (timedelta(hours=36) - timedelta(seconds=1), False),
        (timedelta(hours=36), False),  # exactly at the limit: allowed
        (timedelta(hours=36) + timedelta(seconds=1), True),
    ],
)
def test_guards__staleness_boundary(age: timedelta, refused: bool):
    plan = _plan(10, 1, newest=NOW - age)
    assert _rules(plan) == (["stale"] if refused else [])


def test_guards__staleness_only_judged_when_the_build_decides_a_change():
    old = NOW - timedelta(hours=100)
    assert _rules(_plan(10, 0, 0, newest=old)) == []
    assert _rules(_plan(10, 0, 1, newest=old)) == ["stale"]
