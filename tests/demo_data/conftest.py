"""One small generated data set shared by the demo-data tests (generated once per session)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.demo_data.command import demo_data

SMALL_ARGS = [
    "--people", "1500", "--days", "60", "--seed", "7", "--end-date", "2025-06-30",
    "--workers", "2",
]  # fmt: skip


def generate(out: Path, args: list[str]) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(demo_data, ["--out", str(out), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return time.perf_counter() - started


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    seconds = generate(out, SMALL_ARGS)
    (out.parent / "seconds.txt").write_text(f"{seconds}")
    return out


@pytest.fixture(scope="session")
def manifest(small_run: Path) -> dict:
    return json.loads((small_run / "manifest.json").read_text())
