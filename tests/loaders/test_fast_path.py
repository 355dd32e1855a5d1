"""What the speed work on `load webhooks` must not break, and the choices it relies on.

The loader finds re-sent keys by reading only the raw table's key column, fingerprints
the next file while the current one loads, stores the payload zstd-compressed on DuckDB,
and the CLI imports a subcommand's modules only when that subcommand runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.loaders.conftest import event, ndjson, query, run_load, write

REPO = Path(__file__).resolve().parents[2]


def test_webhooks__resent_keys_across_files_of_one_run(
    tmp_path: Path, target: str
) -> None:
    first = write(
        tmp_path / "in" / "a.ndjson",
        ndjson(*(event(f"01K{i:05d}", timestamp=1727712000 + i) for i in range(10))),
    )
    second = write(
        tmp_path / "in" / "b.ndjson",
        ndjson(
            event("01K00003", timestamp=1727712003),  # identical re-send
            event("01K00004", timestamp=1727712004, metric="opened"),  # new body
            event("01K00010", timestamp=1727712010),
        ),
    )

    result = run_load("webhooks", [tmp_path / "in"], target)

    assert result.exit_code == 0, result.output
    assert result.counts == {
        "read": 13,
        "loaded": 11,
        "duplicate": 2,
        "rejected": 0,
        "files_loaded": 2,
        "files_skipped": 0,
    }
    assert query(
        target,
        "select metric, _source_file, _source_line from raw_customerio.webhook_events "
        "where event_id = '01K00004'",
    ) == [("clicked", str(first), 5)]
    assert query(
        target,
        "select reason, source_file, source_line, detail from raw_loader.rejects",
    ) == [
        (
            "duplicate_key_different_body",
            str(second),
            2,
            f"event_id 01K00004 already loaded from {first} line 5 with a different "
            "body; the loaded copy wins",
        )
    ]
    assert query(
        target,
        "select source_file, records_loaded, records_duplicate, records_conflicting "
        "from raw_loader.loaded_files order by source_file",
    ) == [(str(first), 10, 0, 0), (str(second), 1, 2, 1)]


def test_webhooks__payload_is_zstd_compressed_on_duckdb(
    tmp_path: Path, duckdb_path: Path
) -> None:
    path = write(tmp_path / "a.ndjson", ndjson(event("01Z1"), event("01Z2")))
    assert run_load("webhooks", [path], "dev").exit_code == 0

    compressions = query(
        "dev",
        "select distinct compression from pragma_storage_info("
        "'raw_customerio.webhook_events') where column_name = 'payload' "
        "and segment_type <> 'VALIDITY'",
    )

    assert compressions == [("ZSTD",)]
    assert query(
        "dev",
        "select payload->>'$.data.identifiers.id' from raw_customerio.webhook_events",
    ) == [("u_1001",), ("u_1001",)]


def test_cli__load_webhooks_imports_only_the_loaders() -> None:
    probe = (
        "import sys\n"
        "from scripts.cli import main\n"
        "try:\n"
        "    main(['load', 'webhooks', '--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('scripts.', 'requests'))"
        " and not m.startswith('scripts.loaders')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    assert out.strip().splitlines()[-1] == (
        "['scripts.cli', 'scripts.cli_options', 'scripts.settings', "
        "'scripts.stop_signals', 'scripts.warehouse']"
    )
