"""A `dbt build` as `audiences run --every` runs it, timed (for `make bench`).

    python -m scripts.bench.warm_build --adapter duckdb -- build --no-use-colors ...

Imports dbt and the adapter (scripts/run/warm_dbt.preload) and compiles the macros of
the last build's manifest (scripts/run/dbt_macro_templates.py), neither timed: the loop
does both once, before its first build. Then times, as the loop's tick does, the look at
the manifest for macros to compile (none, unless one was edited) and the build forked
from this process, from the fork to the child's exit. Exits with the build's exit code;
the last line of output is a JSON object: seconds, the child's CPU seconds (user +
system), peak RSS in bytes and the untimed import's seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from scripts import settings
from scripts.run import dbt_macro_templates, warm_dbt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapter", default="duckdb")
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = options.dbt_args[1:] if options.dbt_args[:1] == ["--"] else options.dbt_args
    imported = warm_dbt.preload(options.adapter)
    manifest = settings.dbt_target_dir(Path.cwd()) / "manifest.json"
    dbt_macro_templates.warm(manifest)  # the loop's first build did this
    blocker = warm_dbt.fork_blocker()
    if blocker:
        raise SystemExit(f"cannot fork: {blocker}")
    started = time.perf_counter()
    dbt_macro_templates.warm(manifest)  # as the loop does before each build
    child = warm_dbt.start_forked(lambda: warm_dbt.run_dbt_cli(args), cwd=Path.cwd())
    for line in child.stdout:
        sys.stdout.write(line)
    code = child.wait()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": child.rusage.ru_utime + child.rusage.ru_stime,
                "rss": child.rusage.ru_maxrss * 1024,
                "imported_seconds": imported,
            }
        )
    )
    raise SystemExit(code)


if __name__ == "__main__":
    main()
