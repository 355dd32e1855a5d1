"""The SQL mutants change SQL only, one thing at a time, and still compile."""

from __future__ import annotations

from scripts.mutation.sql_operators import mutants_of

SQL = """{# a comment with < and and #}
{%- set window = 3 if a > b and c else 4 -%}
select person_id
from {{ ref('events') }}  -- keep x >= y here
where
    person_id is not null
    and occurred_at <= {{ as_of }}
    and (channel = 'email'
         or channel = 'sms')
    and amount between 1 and 10
    and payload ->> 'kind' <> 'test'
having count(*) > {{ window }}
"""


def descriptions() -> list[str]:
    return [m.description for m in mutants_of("m.sql", SQL)]


def test_every_operator_outside_jinja_and_comments_is_swapped_once() -> None:
    assert sorted(d for d in descriptions() if not d.startswith("dropped")) == sorted([
        "`<=` -> `<`",
        "`>` -> `>=`",
        "`and` -> `or`", "`and` -> `or`", "`and` -> `or`", "`and` -> `or`",
        "`or` -> `and`",
    ])  # fmt: skip


def test_between_json_arrows_and_not_equal_are_left_alone() -> None:
    swapped = [
        m.text for m in mutants_of("m.sql", SQL) if "dropped" not in m.description
    ]
    assert all("between 1 and 10" in text for text in swapped)
    assert all("->> 'kind' <> 'test'" in text for text in swapped)


def test_a_filter_is_dropped_only_when_its_line_is_a_whole_condition() -> None:
    dropped = [
        m for m in mutants_of("m.sql", SQL) if m.description.startswith("dropped")
    ]
    assert [m.line for m in dropped] == [
        7,
        10,
        11,
    ]  # not line 8: its parenthesis spans lines
    assert "occurred_at <=" not in dropped[0].text
    assert dropped[0].text.count("\n") == SQL.count("\n")


def test_each_mutant_changes_exactly_one_line_and_nothing_in_jinja() -> None:
    mutants = list(mutants_of("m.sql", SQL))
    assert len(mutants) == 10
    for mutant in mutants:
        before, after = SQL.splitlines(), mutant.text.splitlines()
        changed = [
            n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b
        ]
        assert changed == [mutant.line - 1], mutant.name
        assert before[:3] == after[:3], mutant.name  # the Jinja comment and set tag
