"""Audience definitions are validated and fingerprinted whole (issues 8 §4, 12 §4, 13):
invalid meta and macro arguments are refused naming the audience and the key, suppressions
that disagree with the declared exit reasons are refused, holdout_share is checked at its
boundaries and moves the fingerprint, and a `--` comment cannot hide the logic after it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.versions import fingerprints
from tests.versions.project_copy import versions

YML = Path("models/audiences/_audiences.yml")


def _edit_audience_meta(yml: str, audience: str, old: str, new: str) -> str:
    """Replace `old` by `new` inside one audience's block of _audiences.yml."""
    start = yml.index(f"  - name: {audience}\n")
    end = yml.find("\n  - name: ", start + 1)
    end = len(yml) if end == -1 else end
    block = yml[start:end]
    assert old in block, (audience, old)
    return yml[:start] + block.replace(old, new, 1) + yml[end:]


def _refused(copy: Path) -> str:
    """`audiences versions check` on a project copy: it must fail; returns what it said."""
    result = versions(copy, "check")
    assert result.returncode == 1
    return result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_invalid_meta_is_refused_naming_audience_and_key(project: Path) -> None:
    yml_path = project / YML
    yml = yml_path.read_text()
    edits = [
        # holdout_share boundaries: 0.5 and 0 are allowed, just outside them is not.
        ("cart_recovery_clicked_no_purchase", "holdout_share: 0.1", "holdout_share: 0.5"),
        ("unengaged_45_days", "holdout_share: 0.2", "holdout_share: 0.50001"),
        ("fatigued", "holdout_share: 0", "holdout_share: -0.00001"),
        ("replenishment_clicked_no_purchase", "is_synced: true", 'is_synced: "yes"'),
        ("email_clickers", "is_synced: true", 'is_synced: "false or true"'),
        ("sms_clickers", "unsubscribed_channels: [sms]", "unsubscribed_channels: [fax]"),
        ("recent_purchasers", "exit_reasons: [suppressed]", "exit_reasons: [suppressed, bored]"),
    ]  # fmt: skip
    for audience, old, new in edits:
        yml = _edit_audience_meta(yml, audience, old, new)
    yml_path.write_text(yml)

    errors = _refused(project)
    meta = "meta.audience."
    not_boolean = "is_synced must be true or false (a YAML boolean), got"
    # Every problem at once, each naming its audience and key.
    assert (
        f"unengaged_45_days: {meta}holdout_share must be a number from 0 to 0.5"
        in errors
    )
    assert f"fatigued: {meta}holdout_share must be a number from 0 to 0.5" in errors
    assert f"cart_recovery_clicked_no_purchase: {meta}holdout_share" not in errors
    assert f"recent_purchasers: {meta}holdout_share" not in errors
    assert f'replenishment_clicked_no_purchase: {meta}{not_boolean} "yes"' in errors
    assert f'email_clickers: {meta}{not_boolean} "false or true"' in errors
    assert f'sms_clickers: {meta}unsubscribed_channels has "fax"' in errors
    assert f'recent_purchasers: {meta}exit_reasons has "bored"' in errors


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_suppressions_disagreeing_with_exit_reasons_are_refused(project: Path) -> None:
    # The SQL drops sms unsubscribers; the yml would label their exits as email ones.
    yml_path = project / YML
    yml_path.write_text(
        _edit_audience_meta(
            yml_path.read_text(),
            "sms_clickers",
            "unsubscribed_channels: [sms]",
            "unsubscribed_channels: [email]",
        )
    )
    assert re.search(
        r"audience sms_clickers: its suppressions .* cause the exits exit_reasons: "
        r'\["unsubscribed", "suppressed"\], unsubscribed_channels: \["sms"\] but '
        r"models/audiences/_audiences.yml declares exit_reasons: "
        r'\["unsubscribed", "suppressed"\], unsubscribed_channels: \["email"\]',
        _refused(project),
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    ("model", "argument", "wrong", "error"),
    [
        (
            "email_clickers_v1",
            "human_only=true,",
            "human_only=true,\n        min_signals='1 or true',",
            'audience email_clickers: argument min_signals must be a number >= 1, got "1 or true"',
        ),
        # An absence audience's channel becomes part of a column name
        # (first_<channel>_message_event_at): only the configured channels get that far.
        (
            "unengaged_45_days_v1",
            "channels=['email', 'sms']",
            "channels=['email', 'sms or true']",
            "audience unengaged_45_days: argument channels must be one of email, sms, push, "
            'in_app, got "sms or true"',
        ),
        # An excluded audience's version is a whole number: "latest" would be read as a
        # version name, and the audience would follow the excluded one's next versions.
        (
            "email_clickers_v1",
            "{'cart_recovery_clicked_no_purchase': 2}",
            "{'cart_recovery_clicked_no_purchase': 'latest'}",
            "audience email_clickers: argument exclude_audiences must be a version (a "
            "whole number >= 1) for each audience, got {'cart_recovery_clicked_no_purchase"
            "': 'latest'}",
        ),
        # dbt reads a version of 0 as none at all, the latest: refused, not read so.
        (
            "email_clickers_v1",
            "{'cart_recovery_clicked_no_purchase': 2}",
            "{'cart_recovery_clicked_no_purchase': 0}",
            "audience email_clickers: argument exclude_audiences must be a version (a "
            "whole number >= 1) for each audience, got {'cart_recovery_clicked_no_purchase"
            "': 0}",
        ),
        # true is a number to Python (True == 1), not to the macro: not read as version 1.
        (
            "email_clickers_v1",
            "{'cart_recovery_clicked_no_purchase': 2}",
            "{'cart_recovery_clicked_no_purchase': true}",
            "audience email_clickers: argument exclude_audiences must be a version (a "
            "whole number >= 1) for each audience, got {'cart_recovery_clicked_no_purchase"
            "': True}",
        ),
        # No channel at all would make "messaged for 45 days" true of nobody, silently.
        (
            "unengaged_45_days_v1",
            "channels=['email', 'sms']",
            "channels=[]",
            "audience unengaged_45_days: argument channels must be a non-empty list, got []",
        ),
    ],
)
def test_macro_argument_of_the_wrong_kind_is_refused(
    project: Path,
    model: str,
    argument: str,
    wrong: str,
    error: str,
) -> None:
    sql = project / f"models/audiences/{model}.sql"
    assert argument in sql.read_text()
    sql.write_text(sql.read_text().replace(argument, wrong))
    assert error in _refused(project)


def test_a_comment_cannot_hide_the_logic_after_it() -> None:
    # Collapsing whitespace before stripping `--` comments would join the next line onto
    # the comment and drop it: a 3 -> 4 day window would hash the same.
    three = "{{ audience_signals(\n    -- cart clicks\n    within_hours=3 * 24,\n) }}"
    four = three.replace("3 * 24", "4 * 24")
    assert fingerprints.normalise(three) != fingerprints.normalise(four)
    assert "within_hours=3 * 24" in fingerprints.normalise(three)
    assert "cart clicks" not in fingerprints.normalise(three)


def _manifest(holdout_share: object) -> dict:
    """The smallest manifest an audience fingerprint is read from."""
    return {
        "metadata": {"project_name": "engagement_audiences"},
        "macros": {},
        "nodes": {
            "model.engagement_audiences.a.v1": {
                "resource_type": "model",
                "name": "a",
                "version": 1,
                "raw_code": "select 1",
                "original_file_path": "models/audiences/a_v1.sql",
                "depends_on": {"macros": []},
                "config": {
                    "meta": {
                        "audience": {
                            "holdout_share": holdout_share,
                            "changelog": [{"version": 1}],
                        }
                    }
                },
            }
        },
    }


def test_holdout_share_is_part_of_the_fingerprint() -> None:
    # Who is held out is membership: changing the share of a released version must fail
    # `audiences versions check` like any logic change.
    def fingerprint(share: object) -> str:
        return fingerprints.audience_versions(_manifest(share))[0].fingerprint

    assert fingerprint(0.1) != fingerprint(0.2)
    assert fingerprint(0.1) == fingerprint(0.1)
