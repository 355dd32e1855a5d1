"""The Makefile deletes only the demo's own warehouse. `make demo` starts from an empty
warehouse and `make clean` removes the demo's; an AUDIENCES_DUCKDB_PATH exported for a
real warehouse (docs/scheduling.md suggests an absolute one) used to be the file both
deleted, with its ledger and sync state, which nothing can recompute.

The targets run from a copy of the real Makefile in a scratch folder, so that `make clean`
never touches this checkout. `demo-warehouse-reset` is the first step `make demo` runs
(after `setup`, which a scratch folder cannot run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DEMO_FILES = ("warehouse.duckdb", "warehouse.duckdb.wal")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    for name in DEMO_FILES:
        (tmp_path / name).write_bytes(b"demo")
    (tmp_path / "warehouse.duckdb.tmp").mkdir()
    return tmp_path


@pytest.fixture
def real_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse of an operator's own, outside the checkout, that an exported
    AUDIENCES_DUCKDB_PATH names."""
    real = tmp_path_factory.mktemp("srv") / "warehouse.duckdb"
    real.write_bytes(b"the ledger")
    return real


def _make(folder: Path, target: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUDIENCES_")}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(folder), target],
        env={**environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _make_with_real(
    scratch: Path, target: str, real: Path
) -> subprocess.CompletedProcess:
    """`target` with AUDIENCES_DUCKDB_PATH exported for `real`, which must survive it."""
    run = _make(scratch, target, AUDIENCES_DUCKDB_PATH=str(real))
    assert real.read_bytes() == b"the ledger", run.stdout + run.stderr
    return run


def test_make_demo_stops_before_an_existing_warehouse_it_does_not_own(
    scratch: Path, real_warehouse: Path
) -> None:
    run = _make_with_real(scratch, "demo-warehouse-reset", real_warehouse)
    assert run.returncode == 2, run.stdout + run.stderr
    said = f"AUDIENCES_DUCKDB_PATH names an existing warehouse ({real_warehouse})"
    assert said in run.stderr
    assert "unset AUDIENCES_DUCKDB_PATH" in run.stderr
    # Nothing else deleted either: the demo's own files stay until a demo runs there.
    assert all((scratch / name).exists() for name in DEMO_FILES)


def test_make_demo_replaces_its_own_warehouse_however_it_is_named(
    scratch: Path,
) -> None:
    for named in ("", "warehouse.duckdb", str(scratch / "warehouse.duckdb")):
        for name in DEMO_FILES:
            (scratch / name).write_bytes(b"demo")
        env = {"AUDIENCES_DUCKDB_PATH": named} if named else {}
        run = _make(scratch, "demo-warehouse-reset", **env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert not any((scratch / name).exists() for name in DEMO_FILES), named
        assert not (scratch / "warehouse.duckdb.tmp").exists()


def test_make_demo_into_a_new_file_or_on_postgres_deletes_nothing(
    scratch: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    real = elsewhere / "warehouse.duckdb"
    run = _make(scratch, "demo-warehouse-reset", AUDIENCES_DUCKDB_PATH=str(real))
    assert run.returncode == 0, run.stderr
    real.write_bytes(b"the ledger")
    on_postgres = _make(
        scratch, "demo-warehouse-reset",
        AUDIENCES_TARGET="postgres", AUDIENCES_DUCKDB_PATH=str(real),
    )  # fmt: skip
    assert on_postgres.returncode == 0, on_postgres.stderr
    assert real.read_bytes() == b"the ledger"
    assert all((scratch / name).exists() for name in DEMO_FILES)


def test_make_clean_removes_the_demo_warehouse_never_the_exported_one(
    scratch: Path, real_warehouse: Path
) -> None:
    run = _make_with_real(scratch, "clean", real_warehouse)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any((scratch / name).exists() for name in DEMO_FILES)
    assert not (scratch / "warehouse.duckdb.tmp").exists()
