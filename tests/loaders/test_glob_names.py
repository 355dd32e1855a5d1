"""File names that are glob patterns to DuckDB are still read as the file they name.

DuckDB's readers expand `*`, `?`, `[...]` and `{a,b}` in any path they are given. Before
the fix, a folder holding `a[1].ndjson` beside `a1.ndjson` loaded `a1.ndjson`'s record
under `a[1].ndjson`'s ledger row and never loaded `a[1].ndjson`'s own records; a rerun
then skipped the file as loaded. Each case here failed that way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.loaders.conftest import event, ndjson, query, run_load, write

# (name, how many records): each glob name beside a plain file its pattern matches
FILES = [
    ("a[1].ndjson", 2),
    ("a1.ndjson", 1),
    ("b*c.ndjson", 3),
    ("bxc.ndjson", 1),
    ("d?e.ndjson", 2),
    ("dxe.ndjson", 1),
    ("f{x,y}.ndjson", 2),
    ("fx.ndjson", 1),
]


def _landing(folder: Path) -> dict[str, int]:
    folder.mkdir()
    for name, count in FILES:
        records = [event(f"{name}-{n}") for n in range(count)]
        write(folder / name, ndjson(*records))
    return {str(folder / name): count for name, count in FILES}


def _per_file(target: str) -> tuple[list[tuple], list[tuple]]:
    rows = query(
        target,
        "select _source_file, count(*), min(event_id), max(event_id) "
        "from raw_customerio.webhook_events group by 1 order by 1",
    )
    ledger = query(
        target,
        "select source_file, records_read, records_loaded "
        "from raw_loader.loaded_files order by 1",
    )
    return rows, ledger


def _expected(counts: dict[str, int]) -> tuple[list[tuple], list[tuple]]:
    rows = [
        (path, count, f"{Path(path).name}-0", f"{Path(path).name}-{count - 1}")
        for path, count in sorted(counts.items())
    ]
    ledger = [(path, count, count) for path, count in sorted(counts.items())]
    return rows, ledger


def test_load__glob_names_in_a_batch_load_their_own_records(
    tmp_path: Path, target: str
) -> None:
    counts = _landing(tmp_path / "in")

    result = run_load("webhooks", [tmp_path / "in"], target)

    assert result.exit_code == 0, result.output
    assert result.counts["read"] == result.counts["loaded"] == sum(counts.values())
    assert _per_file(target) == _expected(counts)


def test_load__a_glob_name_loaded_alone_loads_its_own_records(
    tmp_path: Path, duckdb_path: Path
) -> None:
    """One file is loaded by the per-file path (no batch), gzipped or not."""
    counts = _landing(tmp_path / "in")
    lone = tmp_path / "in" / "z[0-9].ndjson.gz"
    write(lone, ndjson(event("z-0")), gz=True)
    write(tmp_path / "in" / "z1.ndjson.gz", ndjson(event("z1-0")), gz=True)

    for name in ("a[1].ndjson", "b*c.ndjson", lone.name):
        result = run_load("webhooks", [tmp_path / "in" / name], "dev")
        assert result.exit_code == 0, result.output

    rows, ledger = _per_file("dev")
    wanted = {str(tmp_path / "in" / n) for n in ("a[1].ndjson", "b*c.ndjson")}
    expected_rows, expected_ledger = _expected(
        {path: count for path, count in counts.items() if path in wanted}
    )
    assert rows == sorted([*expected_rows, (str(lone), 1, "z-0", "z-0")])
    assert ledger == sorted([*expected_ledger, (str(lone), 1, 1)])


@pytest.mark.parametrize("name", ["o[1].parquet", "o*.parquet"])
def test_load__a_glob_named_parquet_file_loads_its_own_orders(
    tmp_path: Path, duckdb_path: Path, name: str
) -> None:
    import duckdb

    def parquet(path: Path, order_id: str) -> None:
        with duckdb.connect() as duck:
            duck.execute(
                f"copy (select '{order_id}' as order_id, 'c1' as customer_id, "
                "'completed' as status, 1234 as total_cents, 'EUR' as currency, "
                "timestamp '2024-09-01 00:00:00' as ordered_at) "
                f"to '{path}' (format parquet)"
            )

    parquet(tmp_path / name, "mine")
    parquet(tmp_path / "o1.parquet", "other")  # what the pattern would read instead

    result = run_load("orders", [tmp_path / name], "dev")

    assert result.exit_code == 0, result.output
    assert query("dev", "select order_id from raw_shop.orders") == [("mine",)]


def test_load__a_temporary_folder_with_a_glob_character_is_a_clear_error(
    tmp_path: Path, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staged copies live in the temporary folder and DuckDB reads them from there."""
    odd = tmp_path / "tmp[1]"
    odd.mkdir()
    monkeypatch.setenv("TMPDIR", str(odd))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile caches the folder it chose
    write(tmp_path / "in" / "a.ndjson", ndjson(event("a-0")))

    result = run_load("webhooks", [tmp_path / "in"], "dev")

    assert result.exit_code == 2
    assert "set TMPDIR to a folder without one" in result.output
    assert list(odd.iterdir()) == []  # the temporary folder is removed
