"""The lift intervals are honest: the SQL that rpt_audience_lift runs (the
audience_lift_statistics macro, rendered by dbt, not re-implemented here) is executed on
synthetic cohorts with a known true effect, and its 95 % intervals must contain the true
lift in 93-97 % of seeded runs, at every size and base rate below.

Arm outcomes are drawn from the exact binomial distribution (inverse CDF), seeded, so the
test is deterministic and needs no numpy.
"""

from __future__ import annotations

import bisect
import math
import os
import random
import sys
from pathlib import Path

import duckdb
import pytest

from tests import dbt_commands

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

BIN = Path(sys.executable).parent
RUNS_PER_SCENARIO = 2000
SEED = 20261202

# (treatment members, holdout members, holdout base rate, true relative lift):
# small and large arms, 10 % and 50 % holdouts, base rates from 1 % to 30 %, no effect to
# doubling. Expected holdout converters range from 2 to 60.
SCENARIOS = [
    (90, 30, 0.30, 0.0),
    (200, 200, 0.20, 0.0),
    (450, 50, 0.10, 0.2),
    (900, 100, 0.05, 0.3),
    (300, 300, 0.05, 1.0),
    (1800, 200, 0.02, 0.5),
    (4000, 1000, 0.03, 0.1),
    (9000, 1000, 0.01, 0.2),
]


def _binomial_cdf(n: int, p: float) -> list[float]:
    log_p, log_q = math.log(p), math.log1p(-p)
    cdf, total = [], 0.0
    for k in range(n + 1):
        total += math.exp(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * log_p + (n - k) * log_q
        )  # fmt: skip
        cdf.append(total)
    return cdf


def _draw(cdf: list[float], rng: random.Random) -> int:
    return min(bisect.bisect_left(cdf, rng.random()), len(cdf) - 1)


@pytest.fixture(scope="module")
def lift_sql(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The macro compiled by dbt for the DuckDB target, over a table synthetic_cohorts."""
    root = tmp_path_factory.mktemp("lift-compile")
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(root / "compile.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    result = dbt_commands.run(
        [str(BIN / "dbt"), "compile", "--quiet", "--no-use-colors", "--inline",
         "{{ audience_lift_statistics('synthetic_cohorts') }}"],
        env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "wilson" in result.stdout
    return result.stdout


def _lift(lift_sql: str, rows: list[tuple], columns: str) -> list[tuple]:
    """`columns` of the macro's output over the cohorts `rows` (scenario, run, then the
    arms' members and converters), ordered by scenario and run."""
    with duckdb.connect() as connection:
        connection.execute(
            "create table synthetic_cohorts (scenario integer, run integer, "
            "treatment_members integer, treatment_converters integer, "
            "holdout_members integer, holdout_converters integer)"
        )
        connection.executemany(
            "insert into synthetic_cohorts values (?, ?, ?, ?, ?, ?)", rows
        )
        return connection.execute(
            f"select {columns} from ({lift_sql}) as lift order by scenario, run"
        ).fetchall()


def _run(lift_sql: str, rows: list[tuple]) -> list[tuple]:
    return _lift(
        lift_sql,
        rows,
        "scenario, run, absolute_lift_ci_lower, absolute_lift_ci_upper, "
        "relative_lift_ci_lower, relative_lift_ci_upper, holdout_converters",
    )


def test_intervals_cover_the_true_lift_95_percent_of_the_time(lift_sql: str) -> None:
    rng = random.Random(SEED)
    rows = []
    for scenario, (n_t, n_h, base_rate, relative) in enumerate(SCENARIOS):
        treatment_cdf = _binomial_cdf(n_t, base_rate * (1 + relative))
        holdout_cdf = _binomial_cdf(n_h, base_rate)
        rows += [
            (
                scenario,
                run,
                n_t,
                _draw(treatment_cdf, rng),
                n_h,
                _draw(holdout_cdf, rng),
            )
            for run in range(RUNS_PER_SCENARIO)
        ]
    results = _run(lift_sql, rows)
    assert len(results) == len(rows)

    report = []
    for scenario, (n_t, n_h, base_rate, relative) in enumerate(SCENARIOS):
        absolute = base_rate * relative
        mine = [row for row in results if row[0] == scenario]
        absolute_cover = sum(low <= absolute <= high for _, _, low, high, *_ in mine)
        # The relative lift is defined only when the holdout has a converter.
        defined = [row for row in mine if row[6] > 0]
        relative_cover = sum(row[4] <= relative <= row[5] for row in defined)
        report.append(
            (n_t, n_h, base_rate, relative, absolute_cover / len(mine),
             relative_cover / len(defined))
        )  # fmt: skip
    summary = "\n".join(
        f"n_t={n_t} n_h={n_h} p={p} lift={lift:+.0%}: "
        f"absolute {a:.3f}, relative {r:.3f}"
        for n_t, n_h, p, lift, a, r in report
    )
    print(summary)  # shown with pytest -s: the measured coverage per scenario
    for *_, absolute_share, relative_share in report:
        assert 0.93 <= absolute_share <= 0.97, summary
        assert 0.93 <= relative_share <= 0.97, summary


def test_newcombe_published_examples(lift_sql: str) -> None:
    """Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10."""
    results = _run(lift_sql, [(0, 0, 70, 56, 80, 48), (1, 0, 10, 0, 10, 0)])
    (_, _, low, high, *_), (_, _, zero_low, zero_high, *_) = results
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert (round(zero_low, 4), round(zero_high, 4)) == (-0.2775, 0.2775)


def test_empty_arm_gives_nulls_not_an_error(lift_sql: str) -> None:
    (row,) = _run(lift_sql, [(0, 0, 0, 0, 25, 3)])
    assert row[2:6] == (None, None, None, None)


def test_everyone_converting_in_both_arms_is_a_point_relative_interval(
    lift_sql: str,
) -> None:
    """What docs/lift-and-data-health.md says of this edge: the relative interval
    collapses to the point 0 (every term under its root cancels), while the absolute
    interval, which rpt_audience_lift's verdict reads, keeps the Wilson bounds' width and
    spans zero, so the report calls the lift inconclusive rather than exactly zero."""
    (row,) = _run(lift_sql, [(0, 0, 40, 40, 30, 30)])
    absolute_low, absolute_high, relative_low, relative_high = row[2:6]
    assert relative_low == pytest.approx(0, abs=1e-12)
    assert relative_high == pytest.approx(0, abs=1e-12)
    assert absolute_low < -0.05 < 0.05 < absolute_high


def _defined(lift_sql: str, rows: list[tuple]) -> list[tuple]:
    """(relative_lift, its interval, minimum_detectable_effect) per cohort."""
    return _lift(
        lift_sql,
        rows,
        "relative_lift, relative_lift_ci_lower, relative_lift_ci_upper, "
        "minimum_detectable_effect",
    )


def test_what_is_left_undefined_and_why(lift_sql: str) -> None:
    """A relative lift needs a holdout converter to divide by: with none it is null, its
    interval too, though the adjusted interval could be computed. The minimum detectable
    effect needs some but not all members to convert: at 0 % or 100 % its variance is 0
    and the effect would read as 0, as if any lift were detectable."""
    no_holdout_converter, nobody, everybody, between = _defined(
        lift_sql,
        [
            (0, 0, 50, 5, 40, 0),
            (1, 0, 50, 0, 40, 0),
            (2, 0, 50, 50, 40, 40),
            (3, 0, 50, 5, 40, 4),
        ],
    )
    assert no_holdout_converter[:3] == (None, None, None)
    assert no_holdout_converter[3] > 0
    assert (nobody[3], everybody[3]) == (None, None)
    relative, low, high, detectable = between
    assert relative == pytest.approx(0.0)
    assert low < 0 < high
    assert 0 < detectable < 1
