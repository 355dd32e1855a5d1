"""benchmarks/mutation.md: the score of each area and every surviving mutant.

Each run rewrites only the sections of the areas it ran, so a quick run of one area keeps
the others' last results. Notes by hand go above the first area section and are kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from scripts.mutation.areas import REQUIRED_SCORE
from scripts.mutation.outcome import AreaResult

START = "<!-- mutation: {key} -->"
END = "<!-- /mutation: {key} -->"


def section(result: AreaResult, machine: str) -> str:
    key = f"{result.kind}/{result.area}"
    verdict = "pass" if result.score >= REQUIRED_SCORE else "BELOW THE 85 % BAR"
    invalid = (
        len(result.mutants) - len(result.scored) - result.unchecked
        - len(result.equivalents)
    )  # fmt: skip
    partial = (
        f" PARTIAL: the run was stopped with {result.unchecked} mutants not checked;"
        " they are left out of the score"
        if result.unchecked
        else ""
    )
    equivalent = (
        f" and {len(result.equivalents)} declared equivalent"
        if result.equivalents
        else ""
    )
    lines = [
        START.format(key=key),
        f"### {result.kind}: {result.area}",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}",
        f"- command: `{result.command}`",
        f"- mutated: {result.scope}",
        f"- mutants: {len(result.mutants)} ({invalid} invalid{equivalent}, left out of "
        f"the score){partial}",
        f"- killed: {result.killed} of {len(result.scored)} = **{result.percent}** ({verdict})",
        f"- wall time: {result.seconds:.0f} s",
        "",
    ]
    if result.survivors:
        lines += ["Surviving mutants:", ""]
        for mutant in result.survivors:
            lines += [f"- `{mutant.name}` ({mutant.status})"]
            if mutant.diff.strip():
                body = "\n".join(
                    line for line in mutant.diff.strip().splitlines()
                    if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
                )  # fmt: skip
                lines += ["", "  ```diff", *(f"  {line}" for line in body.splitlines()),
                          "  ```"]  # fmt: skip
        lines.append("")
    else:
        lines += ["No surviving mutants.", ""]
    if result.equivalents:
        lines += [
            "Equivalent mutants (survived; declared in scripts/mutation/areas.py with why "
            "no test can see them; left out of the score):",
            "",
        ]
        lines += [
            f"- `{mutant.name}`: {mutant.reason}" for mutant in result.equivalents
        ]
        lines.append("")
    lines.append(END.format(key=key))
    return "\n".join(lines)


def update(path: Path, results: list[AreaResult], machine: str) -> None:
    text = path.read_text() if path.exists() else "# Mutation testing\n\n"
    for result in results:
        key = f"{result.kind}/{result.area}"
        block = section(result, machine)
        pattern = re.compile(
            re.escape(START.format(key=key)) + r".*?" + re.escape(END.format(key=key)),
            re.DOTALL,
        )
        if pattern.search(text):
            text = pattern.sub(lambda _, block=block: block, text)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
