"""Mutation testing of the Python areas with mutmut, one scratch project per area.

Why the extra plumbing around `mutmut run`:
- mutmut's [tool.mutmut] names one set of modules and one test selection; each area needs
  its own, so every area runs in its own scratch copy whose pyproject.toml gets the area's
  `only_mutate` and `pytest_add_cli_args_test_selection`.
- Many tests run the code in a subprocess (`.venv/bin/audiences`, `python -m scripts...`),
  which would import `scripts` from the editable install (the checkout). PYTHONPATH puts the
  scratch copy's `mutants/` first, and the subprocess inherits MUTANT_UNDER_TEST, so its
  trampolines switch to the same mutant as the test's process.
- mutmut records which tests reach which function only in the pytest process;
  `site/sitecustomize.py` and `pytest_hits.py` carry the subprocesses' hits back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from scripts.mutation.areas import PYTEST_MARKERS, PythonArea
from scripts.mutation.outcome import AreaResult, Mutant
from scripts.mutation.scratch import PROJECT_ROOT, SCRATCH_ROOT, fresh_copy

MUTMUT = Path(sys.executable).parent / "mutmut"
SITE_HOOK = Path(__file__).resolve().parent / "site"
PROJECT_TIMEOUT = '"--timeout=60"'  # in [tool.mutmut] pytest_add_cli_args
RESULT_LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")


def _toml_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def configure(project: Path, area: PythonArea, mutants: tuple[str, ...]) -> None:
    """Give the scratch copy's [tool.mutmut] this area's modules and tests."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    if "[tool.mutmut]\n" not in text:
        raise SystemExit("pyproject.toml has no [tool.mutmut] section to extend")
    selection = [*area.tests] if area.postgres else [*area.tests, "-m", PYTEST_MARKERS]
    area_keys = (
        f"only_mutate = {_toml_list(mutants or area.mutate)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(selection)}\n"
    )
    # mutmut puts pytest_add_cli_args after every other argument, so the area's
    # per-test timeout replaces the project's there (the last --timeout would win).
    if text.count(PROJECT_TIMEOUT) != 1:
        raise SystemExit(
            f"pyproject.toml's [tool.mutmut] has no single {PROJECT_TIMEOUT}"
        )
    text = text.replace(PROJECT_TIMEOUT, f'"--timeout={area.test_timeout}"')
    pyproject.write_text(
        text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + area_keys, 1)
    )


def environment(project: Path) -> dict[str, str]:
    hits = project / "build" / "mutation-hits"
    hits.mkdir(parents=True, exist_ok=True)
    # mutants/ must exist before mutmut starts: Python caches a PYTHONPATH entry that is
    # missing at start-up as "nothing here" for the whole process, so mutmut's own
    # sys.path entry for it is skipped too; `tests` then imports from the editable install,
    # REPO_ROOT is the checkout, and subprocesses started there run the unmutated code.
    (project / "mutants").mkdir(exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(project / "mutants"), str(SITE_HOOK)]),
        "MUTATION_HITS_DIR": str(hits),
        "MUTATION_PROJECT_ROOT": str(project),
    }


# `mutmut show` once per survivor costs a full start-up each (~3 s on a busy machine, 100+
# survivors in an area); one process asks mutmut for every diff.
_DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
names = json.load(sys.stdin)
json.dump({n: get_diff_for_mutant(n, path=find_mutant(n).path) for n in names}, sys.stdout)
"""


def _diffs(project: Path, env: dict[str, str], names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    shown = subprocess.run(  # noqa: S603 (our venv's python)
        [sys.executable, "-c", _DIFFS], input=json.dumps(names),
        cwd=project, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(shown.stdout)


@contextlib.contextmanager
def _shared_postgres(area: PythonArea, env: dict[str, str]) -> Iterator[None]:
    """For an area that runs PostgreSQL tests: one server for all its mutants, whose
    port the tests' fixture reads from `env` (tests/postgres_server.py)."""
    if not area.postgres:
        yield
        return
    from tests.postgres_server import SHARED_PORT_VARIABLE, running_server

    with running_server() as server:
        env[SHARED_PORT_VARIABLE] = server["PGPORT"]
        yield


def declared_equivalent(area: PythonArea, name: str, diff: str) -> str:
    """The reason the area gives for this survivor being equivalent, or ""."""
    for declared in area.equivalent:
        if declared.matches(name, diff):
            return declared.reason
    return ""


def run_area(
    area: PythonArea,
    *,
    max_children: int,
    only: tuple[str, ...] = (),
    log: Path,
    report_only: bool = False,
) -> AreaResult:
    """Run mutmut over one area; `only` narrows it to some files (globs) for a quick proof.

    `report_only` runs nothing: it reports what the area's last run (perhaps stopped at a
    deadline) left in its scratch copy; mutants it never reached count as not checked.
    """
    project = SCRATCH_ROOT / f"python-{area.name}"
    if report_only:
        if not (project / "mutants").is_dir():
            raise SystemExit(f"no earlier run of {area.name} in {project}")
        env = environment(project)
        # The run's wall time, from when its copy was made to its log's last line.
        seconds = log.stat().st_mtime - (project / "pyproject.toml").stat().st_mtime
    else:
        project = fresh_copy(f"python-{area.name}")
        configure(project, area, only)
        env = environment(project)
        started = time.monotonic()
        with log.open("w") as output, _shared_postgres(area, env):
            finished = subprocess.run(  # noqa: S603 (our venv's mutmut)
                [str(MUTMUT), "run", "--max-children", str(max_children)],
                cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT,
                check=False,
            )  # fmt: skip
        seconds = time.monotonic() - started
        if finished.returncode != 0:
            raise SystemExit(f"mutmut run for {area.name} failed; see {log}")
    listed = subprocess.run(  # noqa: S603
        [str(MUTMUT), "results", "--all", "true"],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    mutants = [
        Mutant(match["name"], match["status"].strip())
        for match in map(RESULT_LINE.match, listed.splitlines())
        if match
    ]
    diffs = _diffs(project, env, [m.name for m in mutants if not m.detected])
    for mutant in mutants:
        mutant.diff = diffs.get(mutant.name, "")
        if mutant.status == "survived":
            mutant.reason = declared_equivalent(area, mutant.name, mutant.diff)
            mutant.status = "equivalent" if mutant.reason else mutant.status
    command = f"python -m scripts.mutation --python {area.name}" + "".join(
        f" --only '{glob}'" for glob in only
    )
    if report_only:
        command += "`, reported by `--report-only"
    return AreaResult(
        "python", area.name, mutants, seconds,
        scope=", ".join(only or area.mutate), command=command,
    )  # fmt: skip


__all__ = ["PROJECT_ROOT", "run_area"]
