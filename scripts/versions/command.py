"""`audiences versions`: check or record the fingerprints of audience versions."""

from __future__ import annotations

import os

import click

from scripts.settings import dbt_project_var, project_dir
from scripts.versions import fingerprints


@click.group("versions")
def versions() -> None:
    """Keep audience versions honest: a logic change must come with a version bump.

    \b
    Examples:
      audiences versions check     # what `make test` runs; exit 1 on a problem,
                                   # 4 when another process holds the warehouse
      audiences versions record    # after adding a new version and its changelog line;
                                   # refuses (exit 1) what `check` would refuse
      audiences versions list      # every audience version and its fingerprint
    """


def _load() -> tuple[
    list[fingerprints.AudienceVersion], dict, list[fingerprints.Problem]
]:
    """The audience versions, their recorded fingerprints, and every problem the rules in
    scripts/versions/fingerprints.py find: `check` reports them all, and `record` refuses
    all but versions not yet recorded, from this one list."""
    root = project_dir()
    os.chdir(root)
    try:
        manifest = fingerprints.load_manifest(root)
    except fingerprints.WarehouseBusyError as error:
        click.secho(f"error: {error}", fg="red", err=True)
        raise SystemExit(4) from None
    except fingerprints.DefinitionError as error:
        click.secho(str(error), fg="red", err=True)
        click.echo(
            'audience definitions do not build; see README "Add or change an '
            'audience" and macros/_macros.yml.',
            err=True,
        )
        raise SystemExit(1) from None
    members_sql = (root / fingerprints.MEMBERS_MODEL).read_text(encoding="utf-8")
    try:
        found = fingerprints.audience_versions(manifest)
        recorded = fingerprints.read_recorded(root / fingerprints.FINGERPRINTS_SEED)
        vocabularies = {
            column: [str(value) for value in values]
            for column, var in fingerprints.FILTER_VOCABULARIES.items()
            if (values := dbt_project_var(var))
        }
        problems = [
            *fingerprints.undeclared_files(manifest, fingerprints.audience_files(root)),
            *fingerprints.check(found, recorded, members_sql),
            *fingerprints.unknown_filter_values(manifest, vocabularies),
        ]
    except fingerprints.DefinitionError as error:
        click.secho(f"error: {error}", fg="red", err=True)
        raise SystemExit(1) from None
    return found, recorded, problems


@versions.command("check")
def check_command() -> None:
    """Fail when an audience's logic changed but its version did not, when an audience
    reads another versioned audience without naming its version (exclude_audiences by
    name alone), when a .sql file under models/audiences/ is not a declared version of
    an audience (no `- v: N` for it in the yml), when an audience filters events by a
    metric or channel outside the vars message_metrics and message_channels (a
    typo that matches nobody), or when an audience definition does
    not build: invalid meta (holdout_share outside [0, 0.5], is_synced not a boolean,
    unknown exit reasons or channels), macro arguments of the wrong kind, or
    suppressions that disagree with the declared exit_reasons.

    \b
    Example:
      audiences versions check
    """
    found, _, problems = _load()
    for problem in problems:
        click.secho(f"- {problem.message}", fg="red", err=True)
    if problems:
        click.echo(
            f"{len(problems)} audience version problem(s); see README "
            '"Add or change an audience".',
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"audience versions: {len(found)} checked, all fingerprints match")


@versions.command("record")
def record_command() -> None:
    """Record fingerprints of new audience versions (never overwrites a released one).

    Records nothing, and exits 1, when `audiences versions check` would refuse anything
    but the new versions' missing fingerprints: a missing changelog or depends_on line,
    an unpinned audience read, a changed released version, a file under
    models/audiences/ that is no declared version.

    \b
    Example:
      audiences versions record && git add seeds/audience_fingerprints.csv
    """
    found, recorded, problems = _load()
    refused = [problem for problem in problems if not problem.fixed_by_record]
    for problem in refused:
        click.secho(f"- {problem.message}", fg="red", err=True)
    if refused:
        click.echo(
            f"nothing recorded: {len(refused)} audience version problem(s) to fix "
            "first, then run `audiences versions record` again; see README "
            '"Add or change an audience".',
            err=True,
        )
        raise SystemExit(1)
    added = fingerprints.record_new(found, recorded)
    for audience in added:
        click.echo(f"recorded {audience.key} v{audience.version}")
    fingerprints.write_recorded(
        recorded, project_dir() / fingerprints.FINGERPRINTS_SEED
    )
    click.echo(f"{len(added)} new fingerprint(s) recorded")


@versions.command("list")
def list_command() -> None:
    """Show every audience version with its current and recorded fingerprint (their
    first 12 characters; `-`: none recorded) and whether they match: ok, CHANGED (its
    logic changed under a released version) or NEW (not recorded yet).

    \b
    Example:
      audiences versions list
    """
    found, recorded, _ = _load()
    click.echo(f"{'audience':40} {'ver':<4} {'current':12} {'recorded':12} state")
    for audience in found:
        stored = recorded.get((audience.key, audience.version))
        states = {None: "NEW", audience.fingerprint: "ok"}
        state = states.get(stored, "CHANGED")
        click.echo(
            f"{audience.key:40} v{audience.version:<3} "
            f"{audience.fingerprint[:12]} {(stored or '-')[:12]:12} {state}"
        )
