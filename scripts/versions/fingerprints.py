"""Audience versions are enforced, not hoped for.

Every audience version's definition gets a fingerprint: sha256 over its SQL, the source of
every project macro it calls (transitively) and of the macro that assigns its members' arms
(ARM_MACROS), and the meta that changes who is a member of which arm (`holdout_share`),
with comments and whitespace normalised away so cosmetic edits do not count.
`seeds/audience_fingerprints.csv` records the fingerprint of each released version.
`check` fails when an audience's logic changed but its version did not, and tells the
analyst how to bump it, and when an audience reads another versioned audience without
naming its version (that one's latest_version would then change this one's members).
`record` adds fingerprints for new versions only, so recording can never quietly bless a
changed old version.

The fingerprint is taken over the definition (SQL + macros) rather than the warehouse-
specific compiled SQL, so it is the same on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from scripts.settings import dbt_target_dir, profiles_dir

FINGERPRINTS_SEED = Path("seeds/audience_fingerprints.csv")
# Meta under `meta.audience` that changes membership (the holdout/treatment split). The
# rest (name, owner, is_synced, exit reasons, changelog) labels or routes members only.
MEMBERSHIP_META = ("holdout_share",)
# Macros that decide membership outside each audience's own SQL and macros: the arm
# int_audience_members_unioned gives every member (its salt and threshold), so an edit
# there reassigns every audience's holdout.
ARM_MACROS = ("holdout_arm",)
MEMBERS_MODEL = Path("models/intermediate/audiences/int_audience_members_unioned.sql")

_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
# One match per token, left to right: a quoted string or identifier is kept whole, so a
# `--` or `/*` inside one is text, not a comment ('%cart--reminder%').
_SQL_TOKENS = re.compile(
    r"(?P<string>'(?:[^']|'')*'?)"
    r'|(?P<identifier>"(?:[^"]|"")*"?)'
    r"|(?P<line_comment>--[^\n]*)"
    r"|(?P<block_comment>/\*.*?(?:\*/|\Z))",
    re.DOTALL,
)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class AudienceVersion:
    key: str
    version: int
    fingerprint: str
    changelog_versions: frozenset[int]
    path: str
    # The versioned audiences this version reads without naming a version, each with the
    # version that resolves to now (its latest_version).
    unpinned_audience_reads: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Problem:
    key: str
    version: int
    message: str


def normalise(code: str) -> str:
    """Drop comments and collapse whitespace: only logic moves a fingerprint.

    Comments go first: collapsing whitespace first would join the lines after a `--`
    comment onto it, and their logic would drop out of the fingerprint. SQL comments are
    `--` to the end of the line and `/* ... */`, outside quotes.
    """
    code = _JINJA_COMMENT.sub(" ", code)
    code = _SQL_TOKENS.sub(_drop_comment, code)
    return _WHITESPACE.sub(" ", code).strip()


def _drop_comment(token: re.Match[str]) -> str:
    return " " if token.lastgroup in ("line_comment", "block_comment") else token[0]


def _macro_closure(manifest: dict, start: list[str], project: str) -> list[str]:
    """Every project macro reachable from `start`, in a stable order."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        unique_id = stack.pop()
        if unique_id in seen or not unique_id.startswith(f"macro.{project}."):
            continue
        seen.add(unique_id)
        macro = manifest["macros"].get(unique_id, {})
        stack.extend(macro.get("depends_on", {}).get("macros", []))
    return sorted(seen)


def _latest_versions(manifest: dict) -> dict[str, int]:
    """Each versioned audience model's latest_version (unversioned ones are left out)."""
    latest = {}
    for node in manifest["nodes"].values():
        meta = (node.get("config") or {}).get("meta") or {}
        if (
            node.get("resource_type") == "model"
            and "audience" in meta
            and node.get("version") is not None
        ):
            latest[node["name"]] = _whole_version(
                node["name"], node.get("latest_version") or node["version"]
            )
    return latest


def audience_versions(manifest: dict) -> list[AudienceVersion]:
    project = manifest["metadata"].get("project_name") or "engagement_audiences"
    versioned_audiences = _latest_versions(manifest)
    found = []
    for node in manifest["nodes"].values():
        meta = (node.get("config") or {}).get("meta") or {}
        if node.get("resource_type") != "model" or "audience" not in meta:
            continue
        digest = hashlib.sha256(normalise(node["raw_code"]).encode())
        arm_macros = [
            unique_id
            for unique_id in (f"macro.{project}.{name}" for name in ARM_MACROS)
            if unique_id in manifest["macros"]
        ]
        for macro_id in _macro_closure(
            manifest,
            [*node.get("depends_on", {}).get("macros", []), *arm_macros],
            project,
        ):
            digest.update(b"\0" + macro_id.encode() + b"\0")
            digest.update(normalise(manifest["macros"][macro_id]["macro_sql"]).encode())
        for key in MEMBERSHIP_META:
            value = meta["audience"].get(key, 0)
            digest.update(b"\0meta." + key.encode() + b"\0")
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
        changelog = meta["audience"].get("changelog") or []
        unpinned = sorted(
            {
                (ref["name"], versioned_audiences[ref["name"]])
                for ref in node.get("refs") or []
                # dbt reads any false version (0, '', false) as none: the latest.
                if not ref.get("version") and ref.get("name") in versioned_audiences
            }
        )
        found.append(
            AudienceVersion(
                key=node["name"],
                version=_whole_version(node["name"], node.get("version") or 1),
                fingerprint=digest.hexdigest(),
                changelog_versions=frozenset(
                    int(entry["version"]) for entry in changelog if "version" in entry
                ),
                path=node["original_file_path"],
                unpinned_audience_reads=tuple(unpinned),
            )
        )
    return sorted(found, key=lambda a: (a.key, a.version))


def _whole_version(key: str, version: object) -> int:
    """An audience version is a whole number: `int(1.1)` made v1.1 pass as v1."""
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise DefinitionError(
            f"audience {key}: version {version!r} is not a whole number from 1 "
            "(versions are 1, 2, 3 ...)"
        )
    return int(text)


def read_recorded(path: Path = FINGERPRINTS_SEED) -> dict[tuple[str, int], str]:
    """The recorded fingerprints; a row that is not one key, one whole version and one
    fingerprint, or a key and version recorded twice, is a DefinitionError naming it."""
    if not path.is_file():
        return {}
    recorded: dict[tuple[str, int], str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            version = (row.get("audience_version") or "").strip()
            if not version.isdigit() or not row.get("audience_key"):
                raise DefinitionError(
                    f"{path}, line {line}: {row!r} is not an audience key, a whole "
                    "version and a fingerprint"
                )
            key = (row["audience_key"], int(version))
            if key in recorded:
                raise DefinitionError(
                    f"{path}, line {line}: {key[0]} v{key[1]} is recorded twice; keep "
                    "the row `git log -p` shows was recorded first"
                )
            recorded[key] = row.get("fingerprint") or ""
    return recorded


def write_recorded(
    recorded: dict[tuple[str, int], str], path: Path = FINGERPRINTS_SEED
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["audience_key", "audience_version", "fingerprint"])
        for (key, version), fingerprint in sorted(recorded.items()):
            writer.writerow([key, version, fingerprint])


def record_new(
    versions: list[AudienceVersion], recorded: dict[tuple[str, int], str]
) -> list[AudienceVersion]:
    """Add fingerprints of versions that have none; a released version is never touched."""
    added = []
    for audience in versions:
        if (audience.key, audience.version) not in recorded:
            recorded[(audience.key, audience.version)] = audience.fingerprint
            added.append(audience)
    return added


def check(
    versions: list[AudienceVersion],
    recorded: dict[tuple[str, int], str],
    members_model_sql: str,
) -> list[Problem]:
    problems = []
    latest: dict[str, int] = {}
    for audience in versions:
        latest[audience.key] = max(latest.get(audience.key, 0), audience.version)
    for audience in versions:
        key, version = audience.key, audience.version
        if version not in audience.changelog_versions:
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} has no changelog line: add "
                    f'{{version: {version}, date: "YYYY-MM-DD", change: "..."}} to its '
                    "changelog in models/audiences/_audiences.yml",
                )
            )
        before = recorded.get((key, version))
        if before is None:
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} has no recorded fingerprint: once its changelog "
                    "line is in, run `audiences versions record`",
                )
            )
        elif before != audience.fingerprint:
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} changed its logic but kept its version "
                    f"({audience.path}). Keep v{version} as it was; put the new logic "
                    f"in {key}_v{latest[key] + 1}.sql, add `- v: {latest[key] + 1}` "
                    f"under versions, set latest_version: {latest[key] + 1}, add a "
                    "changelog line saying what changed and why, then run "
                    "`audiences versions record`. If what changed is a model-level "
                    "holdout_share, every version inherits it: keep "
                    f"v{version}'s share with an override under its `- v: {version}` "
                    "entry, `config: {meta: {audience: {holdout_share: <its share>}}}`.",
                )
            )
        for other, resolved in audience.unpinned_audience_reads:
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} reads the audience {other} without a version "
                    f"({audience.path}). It reads {other} v{resolved} today, but "
                    f"{other}'s next version would change {key} v{version}'s members "
                    f"with no new version of {key}. Name the version it reads today: "
                    f"exclude_audiences={{'{other}': {resolved}}} (in free SQL, "
                    f"ref('{other}', v={resolved})). That changes v{version}'s "
                    "fingerprint but not its members: if it is recorded, delete its row "
                    f"from {FINGERPRINTS_SEED} in the same commit and run `audiences "
                    "versions record`.",
                )
            )
        pattern = re.compile(
            r"ref\(\s*'"
            + re.escape(key)
            + r"'\s*,\s*v\s*=\s*"
            + str(version)
            + r"\s*\)"
        )
        if not pattern.search(members_model_sql):
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} is missing from {MEMBERS_MODEL}: add the line "
                    f"-- depends_on: {{{{ ref('{key}', v={version}) }}}}",
                )
            )
    defined = {(audience.key, audience.version) for audience in versions}
    for key, version in sorted(set(recorded) - defined):
        # Removing a released version must be deliberate: its members leave Segment.
        problems.append(
            Problem(
                key,
                version,
                f"{key} v{version} has a recorded fingerprint in {FINGERPRINTS_SEED} but "
                "is no longer defined. If you retired it on purpose, delete its row "
                "from the seed in the same commit (the next build's ledger then records "
                "its members' exits, with `audience_retired` once no version of it is "
                "left); otherwise put its model and its `- v:` entry back.",
            )
        )
    return problems


class DefinitionError(Exception):
    """An audience definition that cannot build: invalid meta, suppressions that disagree
    with the declared exit reasons, a macro argument of the wrong kind."""


class WarehouseBusyError(Exception):
    """The compile could not open the warehouse: another process holds it."""


# Compiling these runs every build-time check of the audience definitions: the audience
# macros validate their arguments and compare the suppressions with the declared exit
# reasons; dim_audiences validates every audience's meta (macros/registry/).
_DEFINITION_CHECKS = ("path:models/audiences", "dim_audiences")


def load_manifest(project_dir: Path) -> dict:
    """Compile the audience definitions with dbt (in-process), so the build-time checks
    run, and return target/manifest.json. Raises DefinitionError naming what is wrong."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "compile",
            "--quiet",
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            # The profiles.yml every `audiences` command reads ($DBT_PROFILES_DIR, else
            # the project's), not always the project's.
            str(profiles_dir()),
            "--select",
            *_DEFINITION_CHECKS,
        ]
    )
    if not result.success:
        messages = [
            str(node.message)
            for node in getattr(result.result, "results", None) or []
            if str(node.status) == "error"
        ]
        text = "\n".join(messages) or f"dbt compile failed: {result.exception}"
        if "could not set lock on file" in text.lower():
            # DuckDB's words for a file another process has open: not a definition error.
            raise WarehouseBusyError(
                "the warehouse is in use by another process (a scheduled `audiences "
                "run`, dbt, a loader or the sync: DuckDB allows one at a time), and the "
                "check compiles the definitions against it; try again when it ends"
            )
        raise DefinitionError(text)
    return json.loads((dbt_target_dir(project_dir) / "manifest.json").read_text())
