"""`make demo`'s first step: an empty warehouse for the demo, and never someone else's.

`python -m scripts.demo_data.fresh_warehouse DEMO_FILE` (DEMO_FILE: the checkout's own demo
warehouse, `warehouse.duckdb`):

- the target is DuckDB and its file is DEMO_FILE (however the path is written): the demo's
  own files are deleted (the file, its write-ahead log, its spill folder);
- the target is DuckDB and its file is another one that exists: refused, exit 2. An
  AUDIENCES_DUCKDB_PATH exported for a real warehouse (docs/scheduling.md suggests an
  absolute one) was deleted by `make demo`, with its ledger and sync state, which nothing
  can recompute; the demo would otherwise load its people into it;
- any other target (AUDIENCES_TARGET=postgres): refused, exit 2, when its warehouse already
  holds loaded files, unless DEMO_INTO_EXISTING=1; the demo's 10,000 people would join a
  real database's, and the next real sync would send them to Segment.

The rule lives here rather than in the Makefile's shell: resolving paths there needs GNU
`realpath -m`, and a shell without it compared two empty strings and went ahead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from scripts.settings import SettingsError, load_target
from scripts.warehouse import WarehouseError, connect, duckdb_file

OPT_IN = "DEMO_INTO_EXISTING"


def _demo_files(demo_file: Path) -> list[Path]:
    return [demo_file, Path(f"{demo_file}.wal"), Path(f"{demo_file}.tmp")]


def prepare(demo_file: Path) -> str | None:
    """Make the demo's warehouse empty, or say why not (the refusal, else None)."""
    target = load_target()
    if target.type == "duckdb":
        path = duckdb_file(target)
        if path is None:  # in memory: nothing to delete, nobody's data
            return None
        if path.resolve() == demo_file.resolve():
            for leftover in _demo_files(demo_file):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
            return None
        if path.exists():
            return (
                f"AUDIENCES_DUCKDB_PATH names an existing warehouse ({path}); make demo "
                "would load its demo data into it, so it stops here and changes "
                f"nothing. make demo builds this checkout's {demo_file} afresh: unset "
                "AUDIENCES_DUCKDB_PATH, or point it at a file that does not exist yet."
            )
        return None
    if os.environ.get(OPT_IN) == "1":
        return None
    with connect() as wh:
        held = (
            wh.query("select count(*) from raw_loader.loaded_files")[0][0]
            if wh.table_exists("raw_loader", "loaded_files")
            else 0
        )
    if not held:
        return None
    return (
        f"target {target.name} ({target.describe()}) already holds {held} loaded "
        "file(s); make demo would add its demo people to them, and a real sync would "
        f"send them on. Point AUDIENCES_TARGET at an empty database, or set {OPT_IN}=1 "
        "to load the demo into it anyway."
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m scripts.demo_data.fresh_warehouse DEMO_FILE")
    try:
        refusal = prepare(Path(args[0]))
    except (SettingsError, WarehouseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
