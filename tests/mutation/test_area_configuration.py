"""How a Python area's scratch pyproject.toml is configured for mutmut: its modules, its
tests, the PostgreSQL choice and its own per-test timeout (which must replace the
project's, since mutmut puts the project's pytest arguments last)."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.mutation.areas import (
    PYTHON_AREAS,
    SQL_AREAS,
    EquivalentMutant,
    PythonArea,
    PythonEquivalent,
    SqlArea,
)
from scripts.mutation.python_areas import configure, declared_equivalent
from scripts.mutation.sql_areas import _declared_equivalent
from scripts.mutation.sql_operators import mutants_of
from tests.conftest import REPO_ROOT


def _mutmut_lines(tmp_path: Path, area: str) -> list[str]:
    """The [tool.mutmut] lines of a fresh copy of the project's pyproject.toml, as
    configure() leaves them for `area`."""
    project = tmp_path / area
    project.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", project / "pyproject.toml")
    configure(project, PYTHON_AREAS[area], ())
    text = (project / "pyproject.toml").read_text()
    return text[text.index("[tool.mutmut]") :].split("\n[", 1)[0].splitlines()


def _selection(tmp_path: Path, area: str) -> str:
    return next(
        line for line in _mutmut_lines(tmp_path, area) if "test_selection" in line
    )


def test_the_area_timeout_replaces_the_project_one(tmp_path: Path) -> None:
    receiver = "\n".join(_mutmut_lines(tmp_path, "receiver"))
    assert receiver.count("--timeout=") == 1
    assert '"--timeout=20"' in receiver
    assert '"--timeout=60"' in "\n".join(_mutmut_lines(tmp_path, "versions"))


def test_only_a_postgres_area_keeps_its_postgres_tests(tmp_path: Path) -> None:
    loaders = _selection(tmp_path, "loaders")
    assert "not postgres" not in loaders
    assert "test_bulk_rules_postgres.py" in loaders
    assert '"-m", "not postgres"' in _selection(tmp_path, "receiver")


def test_every_declared_equivalent_names_a_mutant_the_runner_makes() -> None:
    """A declaration matches by file, mutation and the original line's text: one whose
    line was edited away would silently declare nothing, so each must still match a
    mutant of the file as it is."""
    for area in SQL_AREAS.values():
        for declared in area.equivalent:
            text = (REPO_ROOT / declared.path).read_text()
            lines = text.splitlines()
            assert any(
                declared.matches(m.path, lines[m.line - 1], m.description)
                for m in mutants_of(declared.path, text)
            ), declared


def test_a_declared_equivalent_is_matched_by_its_line_not_its_number(tmp_path) -> None:
    sql = "select 1\nfrom t\nwhere a > b\n"
    declared = EquivalentMutant("m.sql", "where a > b", "`>` -> `>=`", "why")
    area = SqlArea("x", ("m.sql",), (), (), equivalent=(declared,))
    (mutant,) = [m for m in mutants_of("m.sql", sql) if "`>=`" in m.description]
    assert _declared_equivalent(area, mutant, sql) == "why"
    moved = "select 1\n\nfrom t\nwhere a > b\n"
    (mutant,) = [m for m in mutants_of("m.sql", moved) if "`>=`" in m.description]
    assert _declared_equivalent(area, mutant, moved) == "why"
    edited = "select 1\nfrom t\nwhere a > b + 1\n"
    (mutant,) = [m for m in mutants_of("m.sql", edited) if "`>=`" in m.description]
    assert _declared_equivalent(area, mutant, edited) == ""


# A diff as mutmut's get_diff_for_mutant gives it: the function, the mutated line(s).
_DIFF = """--- scripts/alerts/webhook.py
+++ scripts/alerts/webhook.py
@@ -3,1 +3,1 @@
-    if status >= 300:
+    if status > 300:
"""


def test_a_python_equivalent_is_matched_by_module_and_lines_not_number() -> None:
    declared = PythonEquivalent(
        "scripts.alerts.webhook", ("if status >= 300:",), ("if status > 300:",), "why"
    )
    area = PythonArea("x", (), (), equivalent=(declared,))
    name = "scripts.alerts.webhook.xǁAlerterǁ_post__mutmut_55"
    assert declared_equivalent(area, name, _DIFF) == "why"
    assert declared_equivalent(area, name.replace("_55", "_7"), _DIFF) == "why"
    # Another module, one whose name merely starts the same, another mutation, another
    # original line: not declared.
    for other_name, diff in (
        ("scripts.alerts.message.x_text__mutmut_55", _DIFF),
        ("scripts.alerts.webhooks.x_post__mutmut_55", _DIFF),
        (name, _DIFF.replace("> 300", ">= 301")),
        (name, _DIFF.replace(">= 300", ">= 299")),
    ):
        assert declared_equivalent(area, other_name, diff) == "", (other_name, diff)


def test_every_python_equivalent_names_lines_its_module_still_has() -> None:
    """A declaration whose original lines were edited away would declare nothing: each
    line it removes must still be in its module."""
    for area in PYTHON_AREAS.values():
        for declared in area.equivalent:
            path = REPO_ROOT / (declared.module.replace(".", "/") + ".py")
            source = {line.strip() for line in path.read_text().splitlines()}
            assert set(declared.removed) <= source, declared
