"""`audiences report` as an operator meets it: a mistyped warehouse path, and an --out
that cannot be written (the page a web server serves must never be left half-written)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.report.command import report
from scripts.warehouse import connect
from tests.conftest import REPO_ROOT
from tests.report import warehouse_fixture as fx


@pytest.fixture
def filled(tmp_path: Path, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target_dir = tmp_path / "target"
    target_dir.mkdir()
    monkeypatch.setenv(
        "AUDIENCES_DBT_RUN_RESULTS", str(target_dir / "run_results.json")
    )
    with connect() as wh:
        fx.fill(wh, target_dir)
    return tmp_path


@pytest.mark.parametrize("args", [[], ["--out", "report.html"]])
def test_a_warehouse_path_with_no_file_is_said_and_not_created(
    duckdb_path: Path, tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 2
    assert f"error: no warehouse at {duckdb_path}" in result.output
    assert not duckdb_path.exists()
    assert not (tmp_path / "report.html").exists()


def _report_limited(out: Path, max_bytes: int) -> subprocess.CompletedProcess[str]:
    """The real command in a child whose files may not grow past max_bytes (ulimit -f)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run(
        [sys.executable, "-m", "scripts", "report", "--out", str(out)],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_report_that_cannot_be_written_whole_leaves_the_old_one(filled: Path) -> None:
    out = filled / "site" / "report.html"
    out.parent.mkdir()
    out.write_text("the old report")
    out.chmod(0o640)

    done = _report_limited(out, 20_000)

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"error: cannot write the report to {out}: File too large"
    )
    assert out.read_text() == "the old report"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]

    # Written whole, it replaces the old page and keeps its mode.
    assert _report_limited(out, 10_000_000).returncode == 0
    assert out.read_text().startswith("<!doctype html>")
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_an_out_path_under_a_file_is_one_line(filled: Path) -> None:
    blocker = filled / "README.md"
    blocker.write_text("a file, not a folder")
    result = CliRunner().invoke(report, ["--out", str(blocker / "x.html")])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: cannot write the report to {blocker}")
    assert result.output.count("\n") == 1


def test_a_symlinked_report_replaces_its_target(filled: Path) -> None:
    real = filled / "real.html"
    real.write_text("old")
    link = filled / "report.html"
    link.symlink_to(real)
    result = CliRunner().invoke(report, ["--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert real.read_text().startswith("<!doctype html>")
