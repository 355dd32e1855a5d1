"""One setting, AUDIENCES_TARGET, moves the CLI and dbt together; drift is refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.cli import main
from scripts.settings import SettingsError, load_target

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = REPO_ROOT / ".venv" / "bin"


@pytest.fixture
def clean_target_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AUDIENCES_TARGET", "DBT_TARGET", "DBT_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_default_target_is_duckdb(clean_target_env) -> None:
    assert load_target().name == "dev"


def test_audiences_target_moves_the_cli(clean_target_env) -> None:
    clean_target_env.setenv("AUDIENCES_TARGET", "postgres")
    assert load_target().name == "postgres"
    assert load_target("dev").name == "dev"  # an explicit --target still wins


def test_committed_profile_reads_audiences_target_for_dbt() -> None:
    """dbt takes its default target from the profile, so the profile must read the env."""
    text = (REPO_ROOT / "profiles.yml").read_text()
    assert "target: \"{{ env_var('AUDIENCES_TARGET', 'dev') }}\"" in text


def test_a_profile_that_ignores_audiences_target_is_refused(
    clean_target_env, tmp_path
) -> None:
    profile = (REPO_ROOT / "profiles.yml").read_text()
    pinned = profile.replace(
        "target: \"{{ env_var('AUDIENCES_TARGET', 'dev') }}\"", "target: dev"
    )
    assert pinned != profile
    (tmp_path / "profiles.yml").write_text(pinned)
    clean_target_env.setenv("DBT_PROFILES_DIR", str(tmp_path))
    clean_target_env.setenv("AUDIENCES_TARGET", "postgres")
    with pytest.raises(SettingsError, match=r"plain `dbt build` would use 'dev'"):
        load_target()


def test_dbt_target_naming_another_target_is_refused(clean_target_env) -> None:
    clean_target_env.setenv("AUDIENCES_TARGET", "postgres")
    clean_target_env.setenv("DBT_TARGET", "dev")
    with pytest.raises(
        SettingsError, match="DBT_TARGET=dev makes dbt use target 'dev'"
    ):
        load_target()
    clean_target_env.setenv("DBT_TARGET", "postgres")
    assert load_target().name == "postgres"


def test_cli_refuses_the_mismatch_in_one_line(clean_target_env, tmp_path) -> None:
    clean_target_env.setenv("AUDIENCES_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    clean_target_env.setenv("DBT_TARGET", "postgres")
    result = CliRunner().invoke(main, ["load", "orders", str(tmp_path)])
    assert result.exit_code == 2
    assert "DBT_TARGET=postgres makes dbt use target 'postgres'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.postgres
def test_plain_dbt_follows_audiences_target(postgres_env, tmp_path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DBT_TARGET"},
        "AUDIENCES_TARGET": "postgres",
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(BIN / "dbt"), "debug", "--no-use-colors"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # dbt debug starts all of dbt: slow on a busy machine
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "adapter type: postgres" in result.stdout
    assert postgres_env["PGDATABASE"] in result.stdout
    assert "Connection test: [OK connection ok]" in result.stdout


def test_dbt_run_results__is_read_where_dbt_wrote_it(monkeypatch, tmp_path):
    # The sync's guardrails, the tick's alerts and the report read this file: read
    # anywhere else, a build that failed its checks goes unseen.
    from scripts.settings import dbt_run_results, dbt_target_dir

    project = tmp_path / "project"
    monkeypatch.delenv("AUDIENCES_DBT_RUN_RESULTS", raising=False)
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert dbt_run_results(project) == project / "target" / "run_results.json"
    monkeypatch.setenv(
        "DBT_TARGET_PATH", "elsewhere"
    )  # relative to the project, as dbt
    assert dbt_target_dir(project) == project / "elsewhere"
    assert dbt_run_results(project) == project / "elsewhere" / "run_results.json"
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "abs"))
    assert dbt_run_results(project) == tmp_path / "abs" / "run_results.json"
    monkeypatch.setenv("AUDIENCES_DBT_RUN_RESULTS", str(tmp_path / "r.json"))
    assert dbt_run_results(project) == tmp_path / "r.json"
    # Relative: to the project, as DBT_TARGET_PATH, not to the working directory (red
    # team, 2026-12-07: a tick started elsewhere looked for it there and reported its
    # successful build as one that wrote no results, on every tick).
    monkeypatch.setenv("AUDIENCES_DBT_RUN_RESULTS", "target/r.json")
    assert dbt_run_results(project) == project / "target" / "r.json"
