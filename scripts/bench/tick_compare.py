"""Two versions of the dbt project, the same daily tick, side by side.

On this 2-core machine one tick's wall time moves by a second or more from run to run
with whatever else the machine does (the same command over an empty warehouse took 4.9 s
in one `make bench` and 6.4 s in the next), so a change worth less than that cannot be
seen in two separate benchmarks. This runs both versions' ticks alternately on the same
data and reports the medians:

1. each version (a git revision, checked out in its own worktree under
   build/tick-compare/) gets its own warehouse, built as `make bench` builds it: every
   arrival day but the last loaded, a full `dbt build`, a tick with no new data, then the
   last day loaded and parsed. That state is kept.
2. then, `--rounds` times, for each version in turn: the kept state is copied into place
   and one tick runs (`dbt build --exclude-resource-type unit_test`, the key checks scoped
   as `audiences run` scopes them, and DuckDB's storage vacuum off, as in a tick that
   follows one that vacuumed: scripts/run/storage_vacuum.py). Wall time, the CPU time
   of the process (user + system: on 2 cores, the work that competes for them), dbt's
   own elapsed time and each node's time are recorded.

The loaders are this checkout's for both versions (only the dbt project is compared), so
the two revisions must agree on the raw tables. A revision against itself (an A/A run)
shows how far the machine's noise alone moves the medians; with `--base-bin`, the same
revision run by another environment's dbt compares interpreters (README, "Which
Python"), and with `--base-data`, the same revision on another history compares how the
tick grows with the history (benchmarks/results.md, "The tick grows with the history").
Uses the data of `make bench`:

    .venv/bin/audiences demo-data --out data-200k --people 200000 --days 365 --seed 1 \\
        --end-date 2026-06-30
    .venv/bin/python -m scripts.bench.tick_compare --data data-200k --base b6c06f8
    # the same project under another Python: a second environment of the same lock
    UV_PROJECT_ENVIRONMENT=/tmp/venv-pyenv .tools/bin/uv sync --frozen \\
        --python ~/.pyenv/versions/3.11.7/bin/python3.11
    .venv/bin/python -m scripts.bench.tick_compare --data data-200k --base HEAD \\
        --base-bin /tmp/venv-pyenv/bin
    # each tick as the loop of `audiences run --every` builds it (dbt imported once,
    # the build forked): compares changes to the loop's own code (scripts/run/warm_dbt.py)
    .venv/bin/python -m scripts.bench.tick_compare --data data-200k --base ffbc027~2 --loop
    # the same day's tick over one year of history (the base) and two (the head)
    .venv/bin/audiences demo-data --out data-200k-2y --people 200000 --days 730 \\
        --seed 1 --end-date 2026-06-30
    .venv/bin/python -m scripts.bench.tick_compare --data data-200k-2y --base HEAD \\
        --base-data data-200k
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from scripts.bench.end_to_end import (
    AS_OF_FULL,
    AS_OF_INCREMENTAL,
    END_DATE,
    LOAD_OPTIONS,
    REPO_ROOT,
    copy_database,
    only_data_health_failed,
    remove_database,
)
from scripts.run import key_checks, storage_vacuum

BIN = Path(sys.executable).parent
GIT = shutil.which("git") or "git"
WARM_BUILD = "scripts/bench/warm_build.py"


def _run(args: list[str], env: dict[str, str], cwd: Path, ok=lambda code: code == 0):
    """One command to its exit: (wall seconds, user + system CPU seconds, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 (our own entry points)
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if not ok(os.waitstatus_to_exitcode(status)):
        raise SystemExit(f"{' '.join(args[:3])} failed in {cwd}:\n{output[-4000:]}")
    return wall, usage.ru_utime + usage.ru_stime, output


class Version:
    """One revision's worktree, warehouse and target folder."""

    def __init__(
        self,
        revision: str,
        root: Path,
        slot: str,
        bin_dir: Path = BIN,
        *,
        loop: bool = False,
    ) -> None:
        sha = subprocess.run(  # noqa: S603 (git, on a revision the operator names)
            [GIT, "rev-parse", "--short", revision], cwd=REPO_ROOT, check=True,
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        self.label = f"{revision} ({sha})" if sha != revision else sha
        # Whose dbt runs this side's builds; the loaders are always this checkout's.
        self.bin = bin_dir
        # Timed as the loop of `audiences run --every` builds (the revision's own
        # scripts/bench/warm_build.py: dbt imported untimed, the build forked and timed
        # from the fork to its exit), rather than as the `dbt` command.
        self.loop = loop
        if loop:
            self.label += ", forked as the loop builds"
        if bin_dir != BIN:
            python = (bin_dir / "python").resolve()
            self.label += f", dbt of {bin_dir} ({python})"
        # Its own folder even when both sides are one revision (an A/A run: the noise).
        self.home = root / f"{slot}-{sha}"
        self.project = self.home / "project"
        self.state = self.home / "pre-tick.duckdb"
        self.db = self.home / "warehouse.duckdb"
        self.marks = self.home / "keys-verified-before.txt"
        self.source = self.home / "data.txt"  # the data the kept state was built from
        self.env = {
            **os.environ,
            "AUDIENCES_DUCKDB_PATH": str(self.db),
            "DBT_TARGET_PATH": str(self.home / "target"),
            "DBT_LOG_PATH": str(self.home / "logs"),
            "DO_NOT_TRACK": "1",
        }
        self.env.pop("AUDIENCES_TARGET", None)
        self.sha = sha

    def checkout(self) -> None:
        if not self.project.is_dir():
            self.home.mkdir(parents=True, exist_ok=True)
            subprocess.run(  # noqa: S603 (git, on a revision the operator names)
                [GIT, "worktree", "add", "--detach", str(self.project), self.sha],
                cwd=REPO_ROOT, check=True, capture_output=True,
            )  # fmt: skip

    def dbt(self, *args: str, as_of: str, env: dict[str, str] | None = None):
        command = [
            str(self.bin / "dbt"), *args, "--no-use-colors", "--project-dir",
            str(self.project),
            "--profiles-dir", str(self.project), "--vars", json.dumps({"as_of": as_of}),
        ]  # fmt: skip
        accept = only_data_health_failed(self.home / "target")
        return _run(command, env or self.env, self.project, accept)

    def load(self, kind: str, files: list[Path]) -> None:
        command = [
            str(BIN / "audiences"),
            "load",
            kind,
            *map(str, files),
            *LOAD_OPTIONS,
        ]
        _run(command, self.env, REPO_ROOT)

    def kept_state_is_from(self, data: Path) -> bool:
        """Whether a whole kept state (the warehouse and its key-check mark) was built
        from `data`: only then is it reused."""
        return (
            self.state.is_file()
            and self.marks.is_file()
            and self.source.is_file()
            and self.source.read_text() == str(data.resolve())
        )

    def prepare(self, data: Path) -> None:
        """The warehouse a tick starts from, built once and kept (see the module doc),
        and built again when asked for other data than the kept one came from."""
        if self.kept_state_is_from(data):
            return
        data = data.resolve()
        self.source.unlink(missing_ok=True)
        remove_database(self.db)
        webhooks = sorted((data / "webhooks").iterdir())
        segment = sorted((data / "segment").iterdir())
        last_day = webhooks[-1].name[:10]
        self.load("webhooks", [f for f in webhooks if not f.name.startswith(last_day)])
        self.load(
            "segment-events", [f for f in segment if not f.name.startswith(last_day)]
        )
        self.load("orders", [data / "orders"])
        tick = ("build", "--exclude-resource-type", "unit_test")
        self.dbt("build", as_of=AS_OF_FULL)
        mark = datetime.now(UTC).replace(tzinfo=None)
        self.dbt(*tick, as_of=AS_OF_FULL)
        self.load("webhooks", [f for f in webhooks if f.name.startswith(last_day)])
        self.load("segment-events", [f for f in segment if f.name.startswith(last_day)])
        self.dbt("parse", as_of=AS_OF_INCREMENTAL)
        copy_database(self.db, self.state)
        self.marks.write_text(mark.isoformat(sep=" "))
        self.source.write_text(str(data))

    def tick(self) -> dict:
        """One tick from the kept state: wall, CPU and dbt's times."""
        copy_database(self.state, self.db)
        mark = datetime.fromisoformat(self.marks.read_text())
        # As `audiences run` builds a tick that follows one that vacuumed DuckDB's
        # storage (the prepared tick with no new data): without a vacuum (scripts/run/
        # storage_vacuum.py). A revision whose profile does not read the variable
        # vacuums on every tick, as it did.
        env = {
            **self.env,
            **key_checks.scoped_env(mark),
            **storage_vacuum.build_env(due=False),
        }
        build = ("build", "--exclude-resource-type", "unit_test")
        if self.loop:
            wall, cpu = self._forked(*build, env=env)
        else:
            wall, cpu, _ = self.dbt(*build, as_of=AS_OF_INCREMENTAL, env=env)
        results = json.loads((self.home / "target" / "run_results.json").read_text())
        nodes = {
            result["unique_id"].split(".")[-1]: result["execution_time"]
            for result in results["results"]
        }
        return {
            "wall": wall,
            "cpu": cpu,
            "elapsed": results["elapsed_time"],
            "nodes": nodes,
        }

    def _forked(self, *args: str, env: dict[str, str]) -> tuple[float, float]:
        """The build as the loop forks it, by this revision's warm_build: the seconds
        from the fork to the child's exit, and the child's CPU (user + system)."""
        command = [
            str(self.bin / "python"), "-m", "scripts.bench.warm_build", "--",
            *args, "--no-use-colors", "--project-dir", str(self.project),
            "--profiles-dir", str(self.project),
            "--vars", json.dumps({"as_of": AS_OF_INCREMENTAL}),
        ]  # fmt: skip
        accept = only_data_health_failed(self.home / "target")
        # The revision's own scripts (its warm_dbt is the loop's code being compared).
        _, parent_cpu, output = _run(
            command, {**env, "PYTHONPATH": str(self.project)}, self.project, accept
        )
        timed = json.loads(output.strip().splitlines()[-1])
        return timed["seconds"], timed.get("cpu", parent_cpu)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(versions: list[Version], runs: dict[str, list[dict]]) -> str:
    lines = [
        "| version | tick wall (median) | all walls | CPU user+sys (median) | dbt elapsed "
        "(median) |",
        "|---|---|---|---|---|",
    ]
    for version in versions:
        done = runs[version.home.name]
        walls = ", ".join(
            f"{run['wall']:.2f}" for run in sorted(done, key=lambda r: r["wall"])
        )
        lines.append(
            f"| {version.label} | {_median(done, 'wall'):.2f} s | {walls} | "
            f"{_median(done, 'cpu'):.2f} s | {_median(done, 'elapsed'):.2f} s |"
        )
    base, head = (runs[v.home.name] for v in versions)
    names = set().union(*(run["nodes"] for run in base + head))
    moved = sorted(
        (
            statistics.median(r["nodes"].get(n, 0.0) for r in head)
            - statistics.median(r["nodes"].get(n, 0.0) for r in base),
            n,
        )
        for n in names
    )
    changes = [f"{name} {delta:+.2f} s" for delta, name in moved if abs(delta) >= 0.1]
    lines.append("")
    lines.append(
        f"Nodes whose median time moved by 0.1 s or more ({versions[1].label} against "
        f"{versions[0].label}): " + (", ".join(changes) or "none")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True,
                        help=f"`audiences demo-data ... --end-date {END_DATE}` output")  # fmt: skip
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--head", default="HEAD", help="the revision measured (HEAD)")
    parser.add_argument("--base-data", type=Path,
                        help="the data the base runs on (default: --data); with --base "
                             "HEAD, the same revision over two histories")  # fmt: skip
    parser.add_argument("--base-bin", type=Path, default=BIN,
                        help="folder of the dbt that runs the base (another environment's "
                             "bin/, to compare interpreters; default: this one's)")  # fmt: skip
    parser.add_argument("--loop", action="store_true",
                        help="time each tick as `audiences run --every` builds it (dbt "
                             "imported once, the build forked), not as the `dbt` "
                             "command")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5,
                        help="ticks per version (5; 0 prepares the warehouses only)")  # fmt: skip
    parser.add_argument("--root", type=Path, default=REPO_ROOT / "build" / "tick-compare",
                        help="worktrees and kept warehouses (build/tick-compare)")  # fmt: skip
    args = parser.parse_args(argv)
    versions = [
        Version(args.base, args.root, "base", args.base_bin.absolute(), loop=args.loop),
        Version(args.head, args.root, "head", loop=args.loop),
    ]
    sources = [args.base_data or args.data, args.data]
    for source in sources:
        if not (source / "webhooks").is_dir():
            parser.error(f"{source} is not `audiences demo-data` output (no webhooks/)")
    if sources[0].resolve() != sources[1].resolve():
        for version, source in zip(versions, sources, strict=True):
            version.label += f", on {source}"
    for version in versions:
        version.checkout()
        # Before any warehouse is built: a revision older than the loop's timing
        # (scripts/bench/warm_build.py) cannot be timed as the loop builds.
        if args.loop and not (version.project / WARM_BUILD).is_file():
            parser.error(f"--loop: {version.label} has no {WARM_BUILD}")
    for version, source in zip(versions, sources, strict=True):
        print(f"preparing {version.label} (kept in {version.home})", flush=True)
        version.prepare(source)
    if args.rounds == 0:
        print("prepared; --rounds 0 runs no tick")
        return
    runs: dict[str, list[dict]] = {version.home.name: [] for version in versions}
    for round_number in range(1, args.rounds + 1):
        for version in versions:
            run = version.tick()
            runs[version.home.name].append(run)
            print(f"round {round_number}: {version.label} {run['wall']:.2f} s wall, "
                  f"{run['cpu']:.2f} s CPU", flush=True)  # fmt: skip
    print(report(versions, runs))


if __name__ == "__main__":
    main()
