"""Where a loader validates its files, and within which limits.

On DuckDB the staging runs in the warehouse connection, inside the profile's
memory_limit and temp_directory (the same limits as a build: README, "DuckDB on a shared
machine"). For PostgreSQL a scratch in-memory DuckDB of its own does it, bounded by
AUDIENCES_LOADER_MEMORY_LIMIT and spilling to the loader's temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts.loaders import runner
from scripts.warehouse import connect


def _settings(duck) -> tuple[str, str, str]:
    return duck.execute(
        "select current_setting('memory_limit'), current_setting('temp_directory'), "
        "current_setting('TimeZone')"
    ).fetchone()


@pytest.mark.parametrize("loader_limit", [None, "200MB"])
def test_a_duckdb_load_keeps_the_profiles_limits(
    tmp_path: Path,
    duckdb_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loader_limit: str | None,
) -> None:
    monkeypatch.setenv("AUDIENCES_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("AUDIENCES_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    if loader_limit is None:
        monkeypatch.delenv("AUDIENCES_LOADER_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("AUDIENCES_LOADER_MEMORY_LIMIT", loader_limit)
    with connect("dev") as wh:
        duck = runner._staging_connection(wh, tmp_path / "work")
        assert duck is wh.raw_connection
        assert _settings(duck) == ("667.5 MiB", str(tmp_path / "spill"), "UTC")
    err = capsys.readouterr().err
    if loader_limit is None:
        assert err == ""
    else:
        # Set by an operator who expects it to bound a DuckDB load: the load says it
        # does not, and which setting does; the profile's limit still holds.
        assert "AUDIENCES_LOADER_MEMORY_LIMIT is for a PostgreSQL target" in err
        assert "AUDIENCES_DUCKDB_MEMORY_LIMIT" in err


def test_a_postgresql_load_stages_in_a_bounded_scratch_duckdb(tmp_path: Path) -> None:
    # Only the target's dialect decides; no server is needed to open the scratch engine.
    duck = runner._staging_connection(SimpleNamespace(dialect="postgres"), tmp_path)
    try:
        assert runner.STAGING_MEMORY_LIMIT == "1GB"
        assert _settings(duck) == ("953.6 MiB", str(tmp_path), "UTC")
    finally:
        duck.close()
