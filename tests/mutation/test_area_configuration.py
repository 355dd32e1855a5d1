"""How a Python area's scratch pyproject.toml is configured for mutmut: its modules, its
tests, the PostgreSQL choice and its own per-test timeout (which must replace the
project's, since mutmut puts the project's pytest arguments last)."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.mutation.areas import PYTHON_AREAS
from scripts.mutation.python_areas import configure
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
