"""benchmarks/mutation.md: a run rewrites its own areas' sections and keeps the rest."""

from __future__ import annotations

from pathlib import Path

from scripts.mutation.outcome import AreaResult, Mutant
from scripts.mutation.report import update


def result(area: str, statuses: list[str]) -> AreaResult:
    mutants = [Mutant(f"{area}.m{n}", status, "-a < b\n+a <= b\n") for n, status in
               enumerate(statuses)]  # fmt: skip
    return AreaResult("sql", area, mutants, 1.0, scope="x.sql", command="cmd")


def test_rerun_replaces_only_its_section_and_keeps_the_notes(tmp_path: Path) -> None:
    path = tmp_path / "mutation.md"
    path.write_text("# Mutation testing\n\nNotes by hand.\n\n## Results\n")
    update(path, [result("a", ["killed", "survived"]), result("b", ["killed"])], "m")
    update(path, [result("a", ["killed", "killed", "invalid"])], "m")
    text = path.read_text()
    assert text.startswith("# Mutation testing\n\nNotes by hand.\n\n## Results\n")
    assert text.count("### sql: a") == 1
    assert "killed: 2 of 2 = **100%** (pass)" in text
    assert "(1 invalid, left out of the score)" in text
    assert "### sql: b" in text


def test_survivors_are_listed_with_their_diff_and_a_low_score_is_flagged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mutation.md"
    update(path, [result("a", ["killed", "survived", "no tests"])], "m")
    text = path.read_text()
    assert "killed: 1 of 3 = **33%** (BELOW THE 85 % BAR)" in text
    assert "- `a.m1` (survived)" in text
    assert "- `a.m2` (no tests)" in text
    assert "  +a <= b" in text


def test_a_stopped_run_scores_only_what_it_checked(tmp_path: Path) -> None:
    path = tmp_path / "mutation.md"
    update(
        path, [result("a", ["killed", "survived", "not checked", "not checked"])], "m"
    )
    text = path.read_text()
    assert "killed: 1 of 2 = **50%**" in text
    assert "PARTIAL: the run was stopped with 2 mutants not checked" in text
    assert "(0 invalid, left out of the score)" in text
    assert "(not checked)" not in text


def test_declared_equivalents_are_listed_with_their_reason_and_not_scored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mutation.md"
    area = result("a", ["killed", "survived", "invalid"])
    area.mutants.append(Mutant("a.eq", "equivalent", "-x\n+y\n", "both pick the same"))
    update(path, [area], "m")
    text = path.read_text()
    assert "killed: 1 of 2 = **50%**" in text
    assert "(1 invalid and 1 declared equivalent, left out of the score)" in text
    assert "- `a.eq`: both pick the same" in text
    assert "- `a.m1` (survived)" in text


def test_a_score_is_rounded_down_never_up_to_a_whole_percent(tmp_path: Path) -> None:
    """761 of 764 is 99.6 %: shown as 99 %, since 100 % beside three survivors misleads,
    and 84.9 % must not pass as 85 %."""
    path = tmp_path / "mutation.md"
    update(path, [result("a", ["killed"] * 761 + ["survived"] * 3)], "m")
    assert "killed: 761 of 764 = **99%** (pass)" in path.read_text()
    update(path, [result("a", ["killed"] * 849 + ["survived"] * 151)], "m")
    assert "killed: 849 of 1000 = **84%** (BELOW THE 85 % BAR)" in path.read_text()
    assert result("a", []).percent == "0%"
