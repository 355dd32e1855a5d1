"""Audience versions are enforced: a logic change without a version bump fails the check
with instructions; cosmetic edits and properly bumped versions pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.versions import fingerprints
from tests.versions.project_copy import WAREHOUSE, versions

pytestmark = pytest.mark.slow

CART_V2 = Path("models/audiences/cart_recovery_clicked_no_purchase_v2.sql")


def parse(project: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Audience versions of the project, in-process (one dbt parse each, for speed)."""
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", WAREHOUSE)
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.chdir(project)
    return fingerprints.audience_versions(fingerprints.load_manifest(project))


def problems_of(project: Path, found: list, recorded: dict | None = None) -> list[str]:
    if recorded is None:
        recorded = fingerprints.read_recorded(project / fingerprints.FINGERPRINTS_SEED)
    members_sql = (project / fingerprints.MEMBERS_MODEL).read_text()
    return [p.message for p in fingerprints.check(found, recorded, members_sql)]


def check(project: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return problems_of(project, parse(project, monkeypatch))


def test_logic_change_without_bump_fails_with_instructions(project: Path) -> None:
    path = project / CART_V2
    path.write_text(
        path.read_text().replace("within_hours=3 * 24", "within_hours=4 * 24")
    )
    result = versions(project, "check")
    assert result.returncode == 1
    assert "cart_recovery_clicked_no_purchase v2 changed its logic" in result.stderr
    assert "cart_recovery_clicked_no_purchase_v3.sql" in result.stderr
    assert "changelog" in result.stderr


def test_shared_macro_change_is_a_logic_change(project: Path) -> None:
    path = project / "macros/audiences/audience_signals.sql"
    path.write_text(
        path.read_text().replace("count(*) >= {{ min_signals }}", "count(*) > 0")
    )
    result = versions(project, "check")
    assert result.returncode == 1
    assert result.stderr.count("changed its logic") >= 5


def test_comment_and_whitespace_edits_are_not_logic(project: Path) -> None:
    path = project / CART_V2
    path.write_text(
        "{# reworded note #}\n\n" + path.read_text().replace("    ", "        ")
    )
    assert versions(project, "check").returncode == 0


def test_new_version_needs_changelog_fingerprint_and_listing(
    project: Path, monkeypatch
) -> None:
    v2 = (project / CART_V2).read_text()
    (project / "models/audiences/cart_recovery_clicked_no_purchase_v3.sql").write_text(
        v2.replace("within_hours=3 * 24", "within_hours=2 * 24")
    )
    yml = project / "models/audiences/_audiences.yml"
    yml.write_text(
        yml.read_text()
        .replace("latest_version: 2", "latest_version: 3", 1)
        .replace("      - v: 2\n", "      - v: 2\n      - v: 3\n", 1)
    )
    problems = "\n".join(check(project, monkeypatch))
    assert "v3 has no changelog line" in problems
    assert "v3 has no recorded fingerprint" in problems
    assert "is missing from" in problems

    yml.write_text(
        yml.read_text().replace(
            'change: "Window 7 -> 3 days',
            'change: "Window 3 -> 2 days."}\n'
            '            - {version: 3, date: "2026-12-01", change: "Window 3 -> 2 days',
            1,
        )
    )
    members = project / "models/intermediate/audiences/int_audience_members_unioned.sql"
    members.write_text(
        members.read_text().replace(
            "-- depends_on: {{ ref('replenishment",
            "-- depends_on: {{ ref('cart_recovery_clicked_no_purchase', v=3) }}\n"
            "-- depends_on: {{ ref('replenishment",
        )
    )
    found = parse(project, monkeypatch)
    recorded = fingerprints.read_recorded(project / fingerprints.FINGERPRINTS_SEED)
    added = fingerprints.record_new(found, recorded)
    assert [(a.key, a.version) for a in added] == [
        ("cart_recovery_clicked_no_purchase", 3)
    ]
    assert problems_of(project, found, recorded) == []


def test_record_never_blesses_a_changed_released_version(project: Path) -> None:
    path = project / CART_V2
    path.write_text(
        path.read_text().replace("within_hours=3 * 24", "within_hours=5 * 24")
    )
    seed = (project / fingerprints.FINGERPRINTS_SEED).read_text()
    recorded = versions(project, "record")
    assert recorded.returncode == 1
    assert "cart_recovery_clicked_no_purchase v2 changed its logic" in recorded.stderr
    assert "nothing recorded" in recorded.stderr
    assert (project / fingerprints.FINGERPRINTS_SEED).read_text() == seed
    assert versions(project, "check").returncode == 1


def _email_clickers_excluding(argument: str, project: Path, monkeypatch) -> list[str]:
    """email_clickers v1 with its shipped pin on cart recovery (v2) replaced by
    `argument`; what the version check then reports."""
    sql = project / "models/audiences/email_clickers_v1.sql"
    pinned = "exclude_audiences={'cart_recovery_clicked_no_purchase': 2}"
    assert pinned in sql.read_text()
    sql.write_text(sql.read_text().replace(pinned, argument))
    return check(project, monkeypatch)


def test_an_audience_read_without_its_version_is_refused(
    project: Path, monkeypatch
) -> None:
    """email_clickers v1 excludes cart recovery's members. Read by name alone, it would
    read whichever version is latest, so cart recovery's v3 would change email_clickers
    v1's members with no new version of it."""
    problems = _email_clickers_excluding(
        "exclude_audiences=['cart_recovery_clicked_no_purchase']", project, monkeypatch
    )
    assert [p.split(" (")[0] for p in problems] == [
        "email_clickers v1 changed its logic but kept its version",
        "email_clickers v1 reads the audience cart_recovery_clicked_no_purchase "
        "without a version",
    ]
    assert "exclude_audiences={'cart_recovery_clicked_no_purchase': 2}" in problems[1]


def test_an_audience_may_exclude_version_1_of_another(
    project: Path, monkeypatch
) -> None:
    """The lowest version there is, 1, is a pin like any other: it compiles, and only
    the edit itself (a changed fingerprint) is reported."""
    problems = _email_clickers_excluding(
        "exclude_audiences={'cart_recovery_clicked_no_purchase': 1}",
        project,
        monkeypatch,
    )
    assert [p.split(" (")[0] for p in problems] == [
        "email_clickers v1 changed its logic but kept its version",
    ]
