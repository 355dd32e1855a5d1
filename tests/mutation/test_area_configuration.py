"""How a Python area's scratch pyproject.toml is configured for mutmut: its modules, its
tests, the PostgreSQL choice and its own per-test timeout (which must replace the
project's, since mutmut puts the project's pytest arguments last)."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.mutation.areas import PYTHON_AREAS, SQL_AREAS, EquivalentMutant, SqlArea
from scripts.mutation.python_areas import configure
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
