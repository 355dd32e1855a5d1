"""The `audiences demo-data` command: help, speed of a small run, independence."""

from __future__ import annotations

import ast
from pathlib import Path

from click.testing import CliRunner

from scripts.cli import main
from tests.demo_data.conftest import generate

PACKAGE = Path(__file__).resolve().parents[2] / "scripts" / "demo_data"


def test_command__help_explains_options_layout_and_examples() -> None:
    result = CliRunner().invoke(main, ["demo-data", "--help"])
    assert result.exit_code == 0
    for text in (
        "--out", "--people", "--days", "--seed", "--end-date", "--workers",
        "webhooks/", "segment/", "orders/", "campaigns.json", "manifest.json",
        "Examples:", "audiences demo-data --out",
    ):  # fmt: skip
        assert text in result.output, text


def test_command__small_run_finishes_in_a_few_seconds(tmp_path: Path) -> None:
    seconds = generate(
        tmp_path / "out",
        [
            "--people",
            "300",
            "--days",
            "30",
            "--end-date",
            "2025-06-30",
            "--workers",
            "1",
        ],
    )
    assert seconds < 8
    assert (tmp_path / "out" / "manifest.json").exists()


def test_command__rejects_more_workers_than_people(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo-data", "--out", str(tmp_path), "--people", "2", "--workers", "3"]
    )
    assert result.exit_code == 2
    assert "cannot exceed --people" in result.output


def test_command__generator_shares_no_code_with_the_loaders() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(n.startswith("scripts.loaders") for n in names), path
