"""The `audiences demo-data` command: help, speed of a small run, independence."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.cli import main
from scripts.demo_data.command import demo_data
from tests.conftest import REPO_ROOT
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


def test_command__progress_is_each_tenth_on_stderr_and_no_file_changes(
    tmp_path: Path,
) -> None:
    args = ["--people", "300", "--days", "30", "--end-date", "2025-06-30",
            "--workers", "1", "--seed", "3"]  # fmt: skip
    shown = CliRunner().invoke(
        demo_data, ["--out", str(tmp_path / "a"), *args, "--progress"]
    )
    # CliRunner's stderr is not a terminal: progress is off unless asked for.
    default = CliRunner().invoke(demo_data, ["--out", str(tmp_path / "b"), *args])
    assert shown.exit_code == 0, shown.output
    assert default.exit_code == 0, default.output
    lines = shown.stderr.splitlines()
    line = re.compile(r"shard 1/1: day (\d+) of 30 \((\d+) %\), \d+\.\d s")
    matches = [line.fullmatch(text) for text in lines]
    assert all(matches), lines
    days = [int(match[1]) for match in matches]
    assert [int(match[2]) for match in matches] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert days == [3, 6, 9, 12, 15, 18, 21, 24, 27]
    assert default.stderr == ""
    # The summary on stdout is the same, but for the folder and the seconds.
    untimed = re.compile(r"in \d+\.\d s")
    assert untimed.sub("", shown.stdout) == untimed.sub(
        "", default.stdout.replace(str(tmp_path / "b"), str(tmp_path / "a"))
    )

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_command__rejects_more_workers_than_people(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo-data", "--out", str(tmp_path), "--people", "2", "--workers", "3"]
    )
    assert result.exit_code == 2
    assert "cannot exceed --people" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--end-date", "0001-01-05", "--days", "10"], "starts before 1970-01-01"),
        (["--end-date", "1970-01-05", "--days", "10"], "starts before 1970-01-01"),
        (["--end-date", "9999-12-31"], "ends after 2999-12-31"),
        (["--seed", "-99999999999999999999999"], "--seed"),
        (["--seed", str(2**63)], "--seed"),
    ],
)
def test_command__values_no_date_or_manifest_can_hold_are_usage_errors(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = CliRunner().invoke(main, ["demo-data", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_command__a_file_where_an_output_folder_goes_is_left_alone(
    tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("someone's data")
    out = tmp_path / "out"
    out.mkdir()
    if kind == "file":
        (out / "webhooks").write_text("someone's data")
    else:
        (out / "webhooks").symlink_to(elsewhere)
    result = CliRunner().invoke(main, ["demo-data", "--out", str(out), "--people", "5"])
    assert result.exit_code == 2, result.output
    assert f"{out / 'webhooks'} is a {kind}, not a folder this command wrote" in (
        result.output
    )
    assert (elsewhere / "keep.txt").read_text() == "someone's data"


def test_command__a_run_cut_short_leaves_no_manifest_of_other_data(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    generate(out, ["--people", "20", "--days", "5", "--end-date", "2025-06-30"])
    assert (out / "manifest.json").exists()
    bigger = subprocess.Popen(
        [sys.executable, "-m", "scripts", "demo-data", "--out", str(out),
         "--people", "200000", "--days", "30", "--end-date", "2026-01-31",
         "--workers", "1"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # The old manifest is removed before the first new file is written.
        while not list(out.glob("webhooks/2026-01-*")):
            assert bigger.poll() is None, "the run ended before writing a file"
            assert time.monotonic() < deadline, "no file written within 60 s"
            time.sleep(0.05)
    finally:
        bigger.kill()
        bigger.wait()
    assert not (out / "manifest.json").exists()


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
