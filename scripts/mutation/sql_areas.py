"""Mutation testing of the SQL with our own operator-swap runner (`sql_operators.py`).

Every mutant is written into a scratch copy of the project (never the checkout), judged by
the dbt unit tests first (cheap) and, if they all pass, by the audience checks (pytest that
builds a demo warehouse and compares every audience with an independent Python
computation).

Only the unit tests that can see a mutant run: a dbt unit test feeds its model fixed rows,
so it exercises that model's SQL alone. A mutant of a model is judged by that model's unit
tests; a mutant of a macro by the unit tests of every model that calls the macro, directly
or through other macros (the baseline build's manifest says which). dbt runs in this
process (`dbtRunner`), so a mutant pays a partial parse and its few unit tests, not a
Python start-up and all of them.

The original file is written back after each mutant, whatever happens; the checkout is
never touched, so even a kill leaves nothing behind but build/mutation/.

A mutant that no longer compiles or runs (a dbt `error`, not a test `fail`) is "invalid":
it says nothing about the tests, so it is listed but left out of the score.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.dbt_artifacts import read_run_results
from scripts.mutation.areas import SqlArea
from scripts.mutation.outcome import AreaResult, Mutant
from scripts.mutation.scratch import fresh_copy
from scripts.mutation.sql_operators import SqlMutant, mutants_of

BIN = Path(sys.executable).parent


def _environment(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(project / "build" / "mutation.duckdb"),
        "DBT_PROFILES_DIR": str(project),
        "DBT_PROJECT_DIR": str(project),
    }


def _dbt(project: Path, log, *args: str) -> list[dict]:
    """Run dbt in the scratch project, in this process; the per-node results of
    run_results.json. dbt's console output goes to `log`."""
    from dbt.cli.main import dbtRunner

    results = project / "target" / "run_results.json"
    results.unlink(missing_ok=True)
    # profiles.yml reads AUDIENCES_DUCKDB_PATH from the environment of this process
    os.environ.update(_environment(project))
    log.flush()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        dbtRunner().invoke(
            [*args, "--no-use-colors", "--project-dir", str(project),
             "--profiles-dir", str(project)]
        )  # fmt: skip
    run = read_run_results(results)
    if run is None:  # dbt stopped before running anything: parse/compile error
        return [{"status": "error", "unique_id": "(project)"}]
    return run.results


def unit_tests_by_file(project: Path) -> dict[str, tuple[str, ...]]:
    """For each model and macro file of the project: the names of the models whose unit
    tests can see a change to it (read from the baseline build's manifest)."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    models = {
        node["unique_id"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    tested = {unit["model"] for unit in manifest["unit_tests"].values()}
    # macro -> the macros that call it, to walk from a mutated macro up to every caller
    callers: dict[str, set[str]] = {}
    for macro in manifest["macros"].values():
        for called in macro["depends_on"]["macros"]:
            callers.setdefault(called, set()).add(macro["unique_id"])
    by_file: dict[str, set[str]] = {}
    for node in models.values():
        if node["name"] in tested:
            by_file.setdefault(node["original_file_path"], set()).add(node["name"])
    for macro in manifest["macros"].values():
        reached, frontier = {macro["unique_id"]}, [macro["unique_id"]]
        while frontier:
            for caller in callers.get(frontier.pop(), ()):
                if caller not in reached:
                    reached.add(caller)
                    frontier.append(caller)
        users = {
            node["name"]
            for node in models.values()
            if node["name"] in tested and reached & set(node["depends_on"]["macros"])
        }
        if users:
            by_file.setdefault(macro["original_file_path"], set()).update(users)
    return {path: tuple(sorted(names)) for path, names in by_file.items()}


def unit_test_selection(models: tuple[str, ...]) -> tuple[str, ...]:
    """`dbt test` arguments that run the unit tests of these models and nothing else."""
    return ("test", "--select", *(f"test_type:unit,{model}" for model in models))


def _pytest(project: Path, log, paths: tuple[str, ...]) -> int:
    return subprocess.run(  # noqa: S603 (our venv's pytest)
        # the demo warehouse alone can take minutes on a busy machine
        [str(BIN / "pytest"), *paths, "-x", "-q", "-p", "no:cacheprovider", "--timeout=3600"],
        cwd=project, env=_environment(project), stdout=log, stderr=subprocess.STDOUT,
        check=False,
    ).returncode  # fmt: skip


def judge(
    project: Path,
    area: SqlArea,
    log,
    *,
    audience_checks: bool = True,
    unit_tests: tuple[str, ...] | None = None,
) -> str:
    """killed / survived / invalid for the project as it is on disk now. `unit_tests`:
    the dbt command for the unit tests that can see the mutant (None: the area's; empty:
    no unit test can, straight to the audience checks)."""
    if unit_tests is None:
        unit_tests = area.dbt
    if unit_tests:
        statuses = {result["status"] for result in _dbt(project, log, *unit_tests)}
        if "fail" in statuses:
            return "killed"
        if "error" in statuses:
            return "invalid"
    else:
        # No unit test reads this file; dbt must still compile the mutant, or it is
        # invalid rather than a survivor.
        statuses = {result["status"] for result in _dbt(project, log, "compile")}
        if "error" in statuses:
            return "invalid"
    if audience_checks and area.pytest and _pytest(project, log, area.pytest) != 0:
        return "killed"
    return "survived"


def mutants_of_area(
    project: Path, area: SqlArea, only: tuple[str, ...]
) -> list[SqlMutant]:
    paths = sorted({p for glob in (only or area.files) for p in project.glob(glob)})
    found = []
    for path in paths:
        relative = str(path.relative_to(project))
        found.extend(mutants_of(relative, path.read_text()))
    return found


def run_area(
    area: SqlArea,
    *,
    only: tuple[str, ...] = (),
    audience_checks: bool = True,
    log: Path,
) -> AreaResult:
    project = fresh_copy(f"sql-{area.name}")
    (project / "build").mkdir(exist_ok=True)  # where the scratch warehouse lives
    candidates = mutants_of_area(project, area, only)
    started = time.monotonic()
    result = AreaResult(
        "sql", area.name,
        scope=", ".join(only or area.files)
        + ("" if audience_checks else " (judged by the dbt unit tests only)"),
        command=f"python -m scripts.mutation --sql {area.name}"
        + "".join(f" --only '{glob}'" for glob in only)
        + ("" if audience_checks else " --unit-tests-only"),
    )  # fmt: skip
    with log.open("w") as output:
        # The seeds and models the unit tests introspect, and a green baseline: a mutant
        # only counts as killed if the unmutated project passes the same checks.
        output.write("== baseline: dbt build\n")
        output.flush()
        if {r["status"] for r in _dbt(project, output, "build")} & {"error", "fail"}:
            raise SystemExit(f"the unmutated project does not build; see {log}")
        if judge(project, area, output, audience_checks=audience_checks) != "survived":
            raise SystemExit(f"the unmutated project fails its checks; see {log}")
        seen_by = unit_tests_by_file(project)
        for number, mutant in enumerate(candidates, 1):
            target = project / mutant.path
            original = target.read_text()
            output.write(f"\n== mutant {number}/{len(candidates)}: {mutant.name}\n")
            output.flush()
            try:
                target.write_text(mutant.text)
                models = seen_by.get(mutant.path, ())
                status = judge(
                    project, area, output, audience_checks=audience_checks,
                    unit_tests=unit_test_selection(models) if models else (),
                )  # fmt: skip
            finally:
                target.write_text(original)
            reason = ""
            if status == "survived":
                reason = _declared_equivalent(area, mutant, original)
                status = "equivalent" if reason else status
            print(f"  {status:8} {mutant.name}", flush=True)
            result.mutants.append(
                Mutant(mutant.name, status, _diff(original, mutant), reason)
            )
    result.seconds = time.monotonic() - started
    return result


def _declared_equivalent(area: SqlArea, mutant: SqlMutant, original: str) -> str:
    """The reason the area gives for this survivor being equivalent, or ""."""
    line = original.splitlines()[mutant.line - 1]
    for declared in area.equivalent:
        if declared.matches(mutant.path, line, mutant.description):
            return declared.reason
    return ""


def _diff(original: str, mutant: SqlMutant) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True), mutant.text.splitlines(keepends=True),
            fromfile=mutant.path, tofile=mutant.path, n=0,
        )
    )  # fmt: skip
