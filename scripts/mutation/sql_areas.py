"""Mutation testing of the SQL with our own operator-swap runner (`sql_operators.py`).

Every mutant is written into a scratch copy of the project (never the checkout), judged by
the dbt unit tests first (cheap) and, if they all pass, by the audience checks (pytest that
builds a demo warehouse and compares every audience with an independent Python
computation). The original file is written back after each mutant, whatever happens; the
checkout is never touched, so even a kill leaves nothing behind but build/mutation/.

A mutant that no longer compiles or runs (a dbt `error`, not a test `fail`) is "invalid":
it says nothing about the tests, so it is listed but left out of the score.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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
    """Run dbt in the scratch project; the per-node results of run_results.json."""
    results = project / "target" / "run_results.json"
    results.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 (our venv's dbt)
        [str(BIN / "dbt"), *args, "--no-use-colors"],
        cwd=project, env=_environment(project), stdout=log, stderr=subprocess.STDOUT,
        check=False,
    )  # fmt: skip
    if not results.exists():  # dbt stopped before running anything: parse/compile error
        return [{"status": "error", "unique_id": "(project)"}]
    return json.loads(results.read_text())["results"]


def _pytest(project: Path, log, paths: tuple[str, ...]) -> int:
    return subprocess.run(  # noqa: S603 (our venv's pytest)
        # the demo warehouse alone can take minutes on a busy machine
        [str(BIN / "pytest"), *paths, "-x", "-q", "-p", "no:cacheprovider", "--timeout=3600"],
        cwd=project, env=_environment(project), stdout=log, stderr=subprocess.STDOUT,
        check=False,
    ).returncode  # fmt: skip


def judge(project: Path, area: SqlArea, log, *, audience_checks: bool = True) -> str:
    """killed / survived / invalid for the project as it is on disk now."""
    results = _dbt(project, log, *area.dbt)
    statuses = {result["status"] for result in results}
    if "fail" in statuses:
        return "killed"
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
        for number, mutant in enumerate(candidates, 1):
            target = project / mutant.path
            original = target.read_text()
            output.write(f"\n== mutant {number}/{len(candidates)}: {mutant.name}\n")
            output.flush()
            try:
                target.write_text(mutant.text)
                status = judge(project, area, output, audience_checks=audience_checks)
            finally:
                target.write_text(original)
            print(f"  {status:8} {mutant.name}", flush=True)
            result.mutants.append(Mutant(mutant.name, status, _diff(original, mutant)))
    result.seconds = time.monotonic() - started
    return result


def _diff(original: str, mutant: SqlMutant) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True), mutant.text.splitlines(keepends=True),
            fromfile=mutant.path, tofile=mutant.path, n=0,
        )
    )  # fmt: skip
