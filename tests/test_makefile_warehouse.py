"""The Makefile deletes only the demo's own warehouse, and the demo loads into no one
else's. `make demo` starts from an empty warehouse and `make clean` removes the demo's; an
AUDIENCES_DUCKDB_PATH exported for a real warehouse (docs/scheduling.md suggests an
absolute one) used to be the file both deleted, with its ledger and sync state, which
nothing can recompute.

The targets run from a copy of the real Makefile in a scratch folder, so that `make clean`
never touches this checkout. `demo-warehouse-reset` is the first step `make demo` runs
(after `setup`, which a scratch folder cannot run: this environment's bin/ is given)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.warehouse import connect
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
    # Not an outer make's flags (`make test` runs pytest): a variable given on its
    # command line would override the environment set here.
    outer = ("AUDIENCES_", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEMO_INTO_EXISTING")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(outer)}
    environ["DBT_PROJECT_DIR"] = str(REPO_ROOT)  # the profile the commands read
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(folder), target,
         f"BIN={Path(sys.executable).parent}"],
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
    (scratch / "link.duckdb").symlink_to(scratch / "warehouse.duckdb")
    for named in (
        "",
        "warehouse.duckdb",
        str(scratch / "warehouse.duckdb"),
        "link.duckdb",
    ):
        for name in DEMO_FILES:
            (scratch / name).write_bytes(b"demo")
        env = {"AUDIENCES_DUCKDB_PATH": named} if named else {}
        run = _make(scratch, "demo-warehouse-reset", **env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert not any((scratch / name).exists() for name in DEMO_FILES), named
        assert not (scratch / "warehouse.duckdb.tmp").exists()


def test_make_demo_into_a_new_file_deletes_nothing(
    scratch: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    new = tmp_path_factory.mktemp("elsewhere") / "warehouse.duckdb"
    run = _make(scratch, "demo-warehouse-reset", AUDIENCES_DUCKDB_PATH=str(new))
    assert run.returncode == 0, run.stderr
    assert all((scratch / name).exists() for name in DEMO_FILES)


@pytest.mark.postgres
def test_make_demo_on_postgres_stops_before_a_database_holding_loads(
    scratch: Path, postgres_env: dict[str, str]
) -> None:
    """AUDIENCES_TARGET=postgres, exported in an operator's shell, made `make demo` load
    10,000 demo people into the real database, for the next real sync to send."""
    env = {**postgres_env, "AUDIENCES_TARGET": "postgres"}
    empty = _make(scratch, "demo-warehouse-reset", **env)
    assert empty.returncode == 0, empty.stderr
    with connect("postgres") as wh:  # postgres_env set the PG* variables here too
        wh.ensure_schema("raw_loader")
        wh.execute("create table raw_loader.loaded_files (source_file text)")
        wh.execute("insert into raw_loader.loaded_files values ('orders.csv')")
    held = _make(scratch, "demo-warehouse-reset", **env)
    assert held.returncode == 2, held.stdout + held.stderr
    assert "already holds 1 loaded file(s)" in held.stderr
    assert "DEMO_INTO_EXISTING=1" in held.stderr
    chosen = _make(scratch, "demo-warehouse-reset", **env, DEMO_INTO_EXISTING="1")
    assert chosen.returncode == 0, chosen.stderr
    # A DuckDB file is no business of a PostgreSQL demo.
    assert all((scratch / name).exists() for name in DEMO_FILES)


def test_make_clean_removes_the_demo_warehouse_never_the_exported_one(
    scratch: Path, real_warehouse: Path
) -> None:
    run = _make_with_real(scratch, "clean", real_warehouse)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any((scratch / name).exists() for name in DEMO_FILES)
    assert not (scratch / "warehouse.duckdb.tmp").exists()
