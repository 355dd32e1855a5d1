"""`audiences report`'s size table: its `entered` and `exited` columns are the latest
build's changes, the build being the ledger's latest look at the audiences
(int_audience_ledger_moments), not the ledger's latest change."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from scripts.report.command import report
from scripts.warehouse import connect

SCHEMA = "analytics"
GROWING = "email_clickers"
STEADY = "fatigued"
BUILDS = [
    datetime(2026, 11, 28, 6),
    datetime(2026, 11, 29, 6),
    datetime(2026, 11, 30, 6),
]


def _warehouse() -> None:
    """Two audiences and a ledger kept by dbt's rules, before any build."""
    with connect() as wh:
        wh.ensure_schema(SCHEMA)
        wh.execute(
            f"create table {SCHEMA}.dim_audiences (audience_key varchar, "
            "audience_version integer, is_synced boolean, is_latest boolean)"
        )
        wh.executemany(
            f"insert into {SCHEMA}.dim_audiences values (%s, 1, true, true)",
            [(GROWING,), (STEADY,)],
        )
        wh.execute(
            f"create table {SCHEMA}.fct_audience_memberships (audience_key varchar, "
            "person_id varchar, arm varchar)"
        )
        wh.execute(
            f"create table {SCHEMA}.fct_audience_membership_changes ("
            "audience_key varchar, person_id varchar, change_type varchar, "
            "exit_reason varchar, changed_at timestamp)"
        )
        wh.execute(
            f"create table {SCHEMA}.int_audience_ledger_moments (evaluated_at timestamp)"
        )


def _build(at: datetime, changes: list[tuple[str, str, str]]) -> None:
    """What one `dbt build` at as_of `at` leaves: a look at the audiences, whatever
    changed, and (audience, person, entered | exited) rows stamped with it."""
    with connect() as wh:
        wh.execute(
            f"insert into {SCHEMA}.int_audience_ledger_moments values (%s)", (at,)
        )
        wh.executemany(
            f"insert into {SCHEMA}.fct_audience_membership_changes values "
            "(%s, %s, %s, %s, %s)",
            [
                (
                    key,
                    person,
                    change,
                    "window_expired" if change == "exited" else None,
                    at,
                )
                for key, person, change in changes
            ],
        )
        wh.execute(f"delete from {SCHEMA}.fct_audience_memberships")
        wh.execute(
            f"""insert into {SCHEMA}.fct_audience_memberships
            select audience_key, person_id, 'treatment' from (
                select
                    audience_key, person_id, change_type,
                    row_number() over (
                        partition by audience_key, person_id order by changed_at desc
                    ) as recency_rank
                from {SCHEMA}.fct_audience_membership_changes
            ) as latest
            where recency_rank = 1 and change_type = 'entered'"""
        )


def _movements() -> dict[str, tuple[int, int, int]]:
    """audience -> (treatment, entered, exited), read from the printed table."""
    result = CliRunner().invoke(report, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "audience", "version", "syncs", "treatment", "holdout", "entered", "exited"
    ]  # fmt: skip
    rows = [line.split() for line in lines[2:4]]
    return {row[0]: (int(row[3]), int(row[5]), int(row[6])) for row in rows}


def test_entered_and_exited_are_the_latest_builds_even_when_it_changed_nothing(
    duckdb_path: Path,
) -> None:
    _warehouse()
    _build(BUILDS[0], [(GROWING, "p1", "entered"), (STEADY, "p2", "entered")])
    _build(BUILDS[1], [(GROWING, "p3", "entered"), (GROWING, "p1", "exited")])

    assert _movements() == {GROWING: (1, 1, 1), STEADY: (1, 0, 0)}

    # A build with no new data: the ledger appends nothing, its moments one row. The
    # columns were still the second build's (the ledger's latest change).
    _build(BUILDS[2], [])

    assert _movements() == {GROWING: (1, 0, 0), STEADY: (1, 0, 0)}
