"""Copies of this project for the audience-version tests, and `audiences versions` run on
one. Every copy uses the same warehouse path, relative to the copy (dbt runs in it): dbt
hashes the profile, so one path for every copy keeps a parse saved in one copy valid in
the next (tests/versions/conftest.py's parsed_project)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

AUDIENCES = str(Path(sys.executable).parent / "audiences")
WAREHOUSE = "warehouse.duckdb"


def copy_project(root: Path) -> None:
    """What dbt reads of this project, copied into root."""
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO_ROOT / name, root / name)
    for folder in ("models", "macros", "seeds", "data-tests"):
        if (REPO_ROOT / folder).exists():
            shutil.copytree(REPO_ROOT / folder, root / folder)


def versions(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`audiences versions ARGS` on a copy, with the copy's own target/."""
    env = {
        **os.environ,
        "DBT_PROJECT_DIR": str(project),
        "AUDIENCES_DUCKDB_PATH": WAREHOUSE,
    }
    env.pop("DBT_TARGET_PATH", None)
    return subprocess.run(
        [AUDIENCES, "versions", *args], cwd=project, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
