"""What a mutation run found, whichever runner produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

# mutmut's statuses (and ours) that mean a test noticed the mutant.
DETECTED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
# Left out of the score: a mutant that no longer compiles says nothing about the tests,
# one a stopped run never reached ("not checked") has not been judged yet, and an
# "equivalent" one survived every test and is declared, with the reason, as changing
# nothing any test could see (areas.py: SqlArea.equivalent, PythonArea.equivalent); it
# is listed, not scored.
UNSCORED = frozenset({"invalid", "not checked", "equivalent"})


@dataclass
class Mutant:
    name: str
    status: str
    diff: str = ""
    reason: str = ""  # why an "equivalent" mutant changes nothing observable

    @property
    def detected(self) -> bool:
        return self.status in DETECTED


@dataclass
class AreaResult:
    kind: str  # "python" or "sql"
    area: str
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    scope: str = ""  # what was mutated, when a run covered only part of the area
    command: str = ""

    @property
    def scored(self) -> list[Mutant]:
        """The mutants that count (UNSCORED ones are left out)."""
        return [m for m in self.mutants if m.status not in UNSCORED]

    @property
    def unchecked(self) -> int:
        """Mutants a stopped run never reached: the score is then partial."""
        return sum(m.status == "not checked" for m in self.mutants)

    @property
    def killed(self) -> int:
        return sum(m.detected for m in self.scored)

    @property
    def score(self) -> float:
        return self.killed / len(self.scored) if self.scored else 0.0

    @property
    def percent(self) -> str:
        """The score as a whole percentage, rounded down: 761 of 764 is 99 %, not the
        100 % that rounding would show beside three survivors."""
        return f"{self.killed * 100 // len(self.scored) if self.scored else 0}%"

    @property
    def survivors(self) -> list[Mutant]:
        return [m for m in self.scored if not m.detected]

    @property
    def equivalents(self) -> list[Mutant]:
        return [m for m in self.mutants if m.status == "equivalent"]
