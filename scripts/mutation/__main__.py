"""`make mutate` / `python -m scripts.mutation`: mutation testing, results in
benchmarks/mutation.md, exit 1 when any area that ran scores below 85 %."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from scripts.mutation import python_areas, report, sql_areas
from scripts.mutation.areas import PYTHON_AREAS, REQUIRED_SCORE, SQL_AREAS
from scripts.mutation.outcome import AreaResult
from scripts.mutation.scratch import PROJECT_ROOT, SCRATCH_ROOT

EXAMPLES = """\
examples:
  python -m scripts.mutation                    # every area (about 2.5 h: benchmarks/mutation.md)
  python -m scripts.mutation --python versions  # one Python area through mutmut
  python -m scripts.mutation --python versions --only 'scripts/versions/command.py'
  python -m scripts.mutation --sql audience_macros --only 'macros/audiences/audience_signals.sql'
  python -m scripts.mutation --list             # the areas, their modules and tests

Python areas: {python}
SQL areas:    {sql}
Each area runs in its own scratch copy under build/mutation/; the checkout is never
mutated, so an interrupted run leaves nothing to restore. Logs: build/mutation/*.log.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.mutation",
        description=__doc__,
        epilog=EXAMPLES.format(
            python=", ".join(PYTHON_AREAS), sql=", ".join(SQL_AREAS)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--python", action="append", choices=sorted(PYTHON_AREAS),
                        metavar="AREA", help="run this Python area (repeatable)")  # fmt: skip
    parser.add_argument("--sql", action="append", choices=sorted(SQL_AREAS),
                        metavar="AREA", help="run this SQL area (repeatable)")  # fmt: skip
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="mutate only these files of one area (a quick proof)")  # fmt: skip
    parser.add_argument("--max-children", type=int, default=None,
                        help="parallel mutmut workers (default: the number of cores)")  # fmt: skip
    parser.add_argument("--report", type=Path,
                        default=PROJECT_ROOT / "benchmarks" / "mutation.md",
                        help="where the results go (default: benchmarks/mutation.md)")  # fmt: skip
    parser.add_argument("--unit-tests-only", action="store_true",
                        help="SQL: judge by the dbt unit tests alone, skip the audience "
                             "checks (a quick proof; the score is then a lower bound)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="Python: run nothing, report the area's last (perhaps "
                             "stopped) run from build/mutation/; unreached mutants are "
                             "left out of the score and counted as not checked")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the areas and exit")
    args = parser.parse_args(argv)
    if args.report_only and (args.sql or not args.python):
        parser.error("--report-only reports Python areas: give --python AREA")
    if args.only and len((args.python or []) + (args.sql or [])) != 1:
        parser.error("--only narrows exactly one area: give one --python or one --sql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for area in PYTHON_AREAS.values():
            print(
                f"python {area.name}: {', '.join(area.mutate)} <- {', '.join(area.tests)}"
            )
        for area in SQL_AREAS.values():
            print(f"sql {area.name}: {', '.join(area.files)} <- dbt {' '.join(area.dbt)}; "
                  f"{', '.join(area.pytest)}")  # fmt: skip
        return 0
    everything = not args.python and not args.sql
    python_names = sorted(PYTHON_AREAS) if everything else (args.python or [])
    sql_names = sorted(SQL_AREAS) if everything else (args.sql or [])
    only = tuple(args.only)
    SCRATCH_ROOT.mkdir(parents=True, exist_ok=True)
    results: list[AreaResult] = []
    for name in python_names:
        print(f"== python {name} (mutmut)", flush=True)
        log = SCRATCH_ROOT / f"python-{name}.log"
        results.append(python_areas.run_area(
            PYTHON_AREAS[name],
            max_children=args.max_children or os.cpu_count() or 2,
            only=only, log=log,
            report_only=args.report_only))  # fmt: skip
    for name in sql_names:
        print(f"== sql {name}", flush=True)
        log = SCRATCH_ROOT / f"sql-{name}.log"
        checks = not args.unit_tests_only
        results.append(sql_areas.run_area(
            SQL_AREAS[name], only=only, audience_checks=checks, log=log))  # fmt: skip
    machine = f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}"
    report.update(args.report, results, machine)
    failing = [r for r in results if r.score < REQUIRED_SCORE]
    for result in results:
        print(f"{result.kind} {result.area}: {result.killed}/{len(result.scored)} killed "
              f"= {result.percent}, {len(result.survivors)} surviving")  # fmt: skip
    print(f"results: {args.report}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
