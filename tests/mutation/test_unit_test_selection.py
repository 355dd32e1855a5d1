"""Which dbt unit tests judge a SQL mutant: a mutant must meet every unit test that can see
it (else a kill is missed) and, for speed, no other."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.mutation.sql_areas import unit_test_selection, unit_tests_by_file

PKG = "engagement_audiences"


def _model(name: str, macros: list[str]) -> dict:
    return {
        "unique_id": f"model.{PKG}.{name}",
        "name": name,
        "resource_type": "model",
        "original_file_path": f"models/{name}.sql",
        "depends_on": {"macros": [f"macro.{PKG}.{m}" for m in macros], "nodes": []},
    }


def _macro(name: str, calls: list[str]) -> dict:
    return {
        "unique_id": f"macro.{PKG}.{name}",
        "original_file_path": f"macros/{name}.sql",
        "depends_on": {"macros": [f"macro.{PKG}.{m}" for m in calls]},
    }


def _project(tmp_path: Path) -> Path:
    models = [
        _model("audience_cart", ["audience_signals"]),  # calls the outer macro
        _model("dim_people", []),  # has unit tests, calls no macro of ours
        _model("fct_untested", ["audience_window"]),  # no unit test of its own
        _model("rpt_summary", ["type_double"]),
    ]
    macros = [
        _macro("audience_signals", ["audience_window"]),
        _macro("audience_window", ["type_double"]),  # reached through audience_signals
        _macro("type_double", []),
        _macro("unused", []),
    ]
    units = {
        f"unit_test.{PKG}.{model}.test_{model}": {"model": model}
        for model in ("audience_cart", "dim_people", "rpt_summary")
    }
    manifest = {
        "nodes": {m["unique_id"]: m for m in models},
        "macros": {m["unique_id"]: m for m in macros},
        "unit_tests": units,
    }
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_a_model_is_judged_by_its_own_unit_tests_only(tmp_path: Path) -> None:
    seen_by = unit_tests_by_file(_project(tmp_path))
    assert seen_by["models/dim_people.sql"] == ("dim_people",)
    assert seen_by["models/audience_cart.sql"] == ("audience_cart",)
    assert "models/fct_untested.sql" not in seen_by  # straight to the audience checks


def test_a_macro_is_judged_by_every_tested_model_that_reaches_it(
    tmp_path: Path,
) -> None:
    seen_by = unit_tests_by_file(_project(tmp_path))
    # audience_window is called by fct_untested directly (no unit test) and by
    # audience_cart through audience_signals
    assert seen_by["macros/audience_window.sql"] == ("audience_cart",)
    assert seen_by["macros/audience_signals.sql"] == ("audience_cart",)
    # two levels down: reached from audience_cart and directly from rpt_summary
    assert seen_by["macros/type_double.sql"] == ("audience_cart", "rpt_summary")
    assert "macros/unused.sql" not in seen_by


def test_the_selection_intersects_unit_tests_with_each_model() -> None:
    assert unit_test_selection(("a", "b")) == (
        "test", "--select", "test_type:unit,a", "test_type:unit,b",
    )  # fmt: skip
