"""Shared fixtures: a private DuckDB file per test, a real PostgreSQL server per session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_server import create_database, running_server

REPO_ROOT = Path(__file__).resolve().parent.parent
_db_counter = itertools.count()


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
    env = create_database(postgres_server, f"audiences_test_{next(_db_counter)}")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
