"""A process that has imported dbt once and forks a child for each dbt command of a test.

Started by tests/dbt_commands.py, one per pytest worker. Importing dbt takes some 1.4 s of
CPU on a 2-core machine, and `make test` runs a few hundred dbt commands; a forked child
starts with dbt imported and runs the command exactly as the `dbt` executable would
(`dbt.cli.main.cli`, click's standalone mode: its exit code is dbt's), in its own working
directory, environment, and output files, and exits. Nothing is shared between commands
but the imported modules and the JSON schemas dbt caches on its classes (functions of the
class alone: scripts/run/warm_dbt.preload), the (de)serializers dbt compiles on first
use (scripts/run/dbt_serializers.py) and the macros of the command's last manifest,
compiled (scripts/run/dbt_macro_templates.py): each child is a new process, so DuckDB
files, threads, logging and dbt's flags start afresh.

Protocol: one JSON request per line on stdin, {"args", "env", "cwd", "stdout",
"stderr"} (the last two: files the child writes its output to); one JSON reply per line
on stdout, {"returncode"}. It exits at the end of its input (the worker is gone). A
child ends as the `dbt` executable does, through the interpreter's normal exit.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from scripts.run import dbt_macro_templates
from scripts.run.warm_dbt import freeze_heap, preload, run_dbt_cli
from scripts.settings import dbt_target_dir


def _child(request: dict) -> int:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    return run_dbt_cli(request["args"])


def main() -> None:
    # What every child then has: dbt and both targets' adapters imported, their
    # validation schemas built, dbt's (de)serializers compiled, and all of it frozen for
    # the collector (see scripts/run/warm_dbt.py: together about 1.5 s of a small
    # command's 3 s).
    for adapter in ("duckdb", "postgres"):
        preload(adapter)
    freeze_heap()

    replies = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        # As the loop does before each build: the macros of this command's last
        # manifest, compiled once here (scripts/run/dbt_macro_templates.py).
        manifest = (
            dbt_target_dir(Path(request["cwd"]), request["env"]) / "manifest.json"
        )
        if dbt_macro_templates.warm(manifest):
            freeze_heap()
        pid = os.fork()
        if pid == 0:
            # The interpreter's normal exit, as the `dbt` executable's: atexit handlers and
            # finalizers run, so DuckDB checkpoints its write-ahead log into the file
            # (os._exit left the tables in warehouse.duckdb.wal, which a copy of the file
            # loses).
            sys.exit(_child(request))
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}))
        replies.write("\n")
        replies.flush()


if __name__ == "__main__":
    main()
