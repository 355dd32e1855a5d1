"""Shared fixtures: a private DuckDB file per test, a real PostgreSQL server per session."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import work_units
from tests.postgres_server import create_database, running_server

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController

REPO_ROOT = Path(__file__).resolve().parent.parent
_db_counter = itertools.count()
_units_dir = pytest.StashKey[Path]()


# `make test` runs two xdist workers; tests/work_units.py says which tests share one.
def pytest_configure(config: pytest.Config) -> None:
    if work_units.active(config) and not hasattr(config, "workerinput"):
        config.stash[_units_dir] = Path(tempfile.mkdtemp(prefix="audiences-units-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _units_dir in config.stash:
        shutil.rmtree(config.stash[_units_dir], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerController) -> None:
    if _units_dir in node.config.stash:
        node.workerinput[work_units.WORKERINPUT_KEY] = str(
            node.config.stash[_units_dir]
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if _units_dir not in config.stash:
        return None  # xdist's own scheduler for any other --dist
    return work_units.make_scheduler(config, log, config.stash[_units_dir])


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    work_units.record(config, items)


@pytest.fixture
def duckdb_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DuckDB file, exported as AUDIENCES_DUCKDB_PATH for the `dev` target."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(path))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, str]]:
    with running_server() as env:
        yield env


@pytest.fixture
def postgres_env(
    postgres_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A fresh database on the session's server; PG* variables set for the `postgres` target."""
    return fresh_database(postgres_server, monkeypatch)


def fresh_database(
    server: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    template: str | None = None,
) -> dict[str, str]:
    """A new database (empty, or a copy of `template`), its PG* variables set."""
    # the process id keeps two sessions sharing one server (make mutate) apart
    name = f"audiences_test_{os.getpid()}_{next(_db_counter)}"
    env = create_database(server, name, template)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
