"""The SQL mutants: one operator swap or one dropped filter at a time.

Only SQL text is mutated: Jinja tags (`{% %}`, `{{ }}`, `{# #}`) and `--` comments are
masked, so a mutant changes what the warehouse computes, not how dbt renders the template.
`between a and b` keeps its `and` (swapping it is a syntax error, not a realistic bug), and
a filter is dropped only when its line holds a whole condition (balanced parentheses), so
the mutant still compiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MASKED = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}|--[^\n]*", re.DOTALL)
SWAPS = (
    (re.compile(r"<="), "<"),
    (re.compile(r">="), ">"),
    (re.compile(r"<(?![=>])"), "<="),
    (re.compile(r"(?<![<>=\-])>(?!=)"), ">="),
    (re.compile(r"\band\b", re.IGNORECASE), "or"),
    (re.compile(r"\bor\b", re.IGNORECASE), "and"),
)
FILTER_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<keyword>and|or|where)\b(?P<rest>[^\n]*)$",
                         re.IGNORECASE | re.MULTILINE)  # fmt: skip


@dataclass(frozen=True)
class SqlMutant:
    path: str
    line: int
    description: str
    text: str  # the whole mutated file

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line} {self.description}"


def _masked_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in MASKED.finditer(text)]


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _in_between(text: str, position: int) -> bool:
    """Is this `and` the one of `between x and y` (on the same line)?"""
    line_start = text.rfind("\n", 0, position) + 1
    before = text[line_start:position].lower()
    return "between" in before and " and " not in before[before.rfind("between") :]


def _sql_only(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    """The part of text[start:end] outside Jinja and comments."""
    return "".join(
        char for index, char in enumerate(text[start:end], start)
        if not _inside(index, spans)
    )  # fmt: skip


def mutants_of(path: str, text: str) -> Iterator[SqlMutant]:
    spans = _masked_spans(text)
    for pattern, replacement in SWAPS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if _inside(start, spans):
                continue
            if replacement == "or" and _in_between(text, start):
                continue
            yield SqlMutant(
                path,
                _line_of(text, start),
                f"`{match.group()}` -> `{replacement}`",
                text[:start] + replacement + text[end:],
            )
    for match in FILTER_LINE.finditer(text):
        start = match.start("keyword")
        if _inside(start, spans):
            continue
        condition = _sql_only(text, spans, match.start("rest"), match.end("rest"))
        if not condition.strip() or condition.count("(") != condition.count(")"):
            continue
        keyword = match["keyword"].lower()
        if keyword == "where":  # keep the clause, let every row through
            mutated = text[: match.start("rest")] + " true" + text[match.end("rest") :]
        else:
            mutated = text[: match.start()] + text[match.end() :]
        yield SqlMutant(
            path,
            _line_of(text, start),
            f"dropped filter `{match.group().strip()[:60]}`",
            mutated,
        )
