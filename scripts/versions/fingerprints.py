"""Audience versions are enforced, not hoped for.

Every audience version's definition gets a fingerprint: sha256 over its SQL, the source of
every project macro it calls (transitively) and of the macro that assigns its members' arms
(ARM_MACROS), and the meta that changes who is a member of which arm (`holdout_share`),
with comments and whitespace normalised away so cosmetic edits do not count.
`seeds/audience_fingerprints.csv` records the fingerprint of each released version.
`check` fails when an audience's logic changed but its version did not, and tells the
analyst how to bump it, and when an audience reads another versioned audience without
naming its version (that one's latest_version would then change this one's members).
`undeclared_files` fails a .sql file under models/audiences/ that is no declared version of
a versioned audience model (dbt would build it as an ordinary model beside the audiences).
`record` adds fingerprints for new versions only, so recording can never quietly bless a
changed old version, and only when these rules find nothing but versions not yet recorded
(`Problem.fixed_by_record`): it never records a version the check would refuse.

The fingerprint is taken over the definition (SQL + macros) rather than the warehouse-
specific compiled SQL, so it is the same on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
# Every .sql file here is a declared version of a versioned audience model, in the yml
# beside it (`versions: - v: N`, the file <name>_v<N>.sql or the version's defined_in).
AUDIENCES_DIR = Path("models/audiences")
AUDIENCES_YML = AUDIENCES_DIR / "_audiences.yml"
_VERSION_FILE = re.compile(r"(?P<name>.+)_v(?P<version>[0-9]+)")

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
    # True only for "no recorded fingerprint yet": what `audiences versions record` is for.
    # Any other problem makes `record` refuse, recording nothing.
    fixed_by_record: bool = False


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


def _audience_nodes(manifest: dict) -> list[dict]:
    """The models with audience meta, versioned or not."""
    return [
        node
        for node in manifest["nodes"].values()
        if node.get("resource_type") == "model"
        and "audience" in ((node.get("config") or {}).get("meta") or {})
    ]


def _latest_versions(manifest: dict) -> dict[str, int]:
    """Each versioned audience model's latest_version (unversioned ones are left out)."""
    return {
        node["name"]: _whole_version(
            node["name"], node.get("latest_version") or node["version"]
        )
        for node in _audience_nodes(manifest)
        if node.get("version") is not None
    }


def audience_versions(manifest: dict) -> list[AudienceVersion]:
    project = manifest["metadata"].get("project_name") or "engagement_audiences"
    versioned_audiences = _latest_versions(manifest)
    found = []
    for node in _audience_nodes(manifest):
        meta = node["config"]["meta"]
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
                    fixed_by_record=True,
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
            # Only a recorded version has a row to replace: `record` refuses to record
            # an unpinned one.
            replace_row = (
                ""
                if before is None
                else f" That changes v{version}'s fingerprint but not its members: "
                f"delete its row from {FINGERPRINTS_SEED} in the same commit and run "
                "`audiences versions record`."
            )
            problems.append(
                Problem(
                    key,
                    version,
                    f"{key} v{version} reads the audience {other} without a version "
                    f"({audience.path}). It reads {other} v{resolved} today, but "
                    f"{other}'s next version would change {key} v{version}'s members "
                    f"with no new version of {key}. Name the version it reads today: "
                    f"exclude_audiences={{'{other}': {resolved}}} (in free SQL, "
                    f"ref('{other}', v={resolved})).{replace_row}",
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


def audience_files(project_dir: Path) -> list[str]:
    """The .sql files under models/audiences/, as dbt names them (relative, posix)."""
    return sorted(
        path.relative_to(project_dir).as_posix()
        for path in (project_dir / AUDIENCES_DIR).rglob("*.sql")
    )


# The event columns an audience filters by value, and the dbt var that declares each
# one's vocabulary (dbt_project.yml owns the lists).
FILTER_VOCABULARIES = {"metric": "message_metrics", "channel": "message_channels"}
_LITERAL = r"'(?:[^']|'')*'"
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _filter_pattern(column: str) -> re.Pattern[str]:
    """`column in ('a', 'b')` or `column = 'a'`, the column bare or double-quoted and
    perhaps qualified (`events.metric`), the values string literals only: a subquery's
    literals (`metric in (select …)`) are not the column's values. `not in` and `<>`
    name values the audience leaves out, which may be anything."""
    name = rf'(?<![\w"]){column}\b|"{column}"'
    values = rf"in\s*\(\s*({_LITERAL}(?:\s*,\s*{_LITERAL})*)\s*\)|=\s*({_LITERAL})"
    return re.compile(rf"(?<!not\s)(?:{name})\s*(?:{values})", re.IGNORECASE)


def unknown_filter_values(
    manifest: dict, vocabularies: dict[str, list[str]]
) -> list[Problem]:
    """An audience that filters events by a metric or channel no source sends matches
    nobody, and every build and check passed it (`metrics=['click']` for 'clicked'). Read
    from its compiled SQL, comments dropped, where audience_signals (and hand-written SQL
    alike) say `metric in ('clicked')` or `metric = 'clicked'`: checking inside the macro
    would change the fingerprint of every released version that calls it. `vocabularies`:
    each column's known values (FILTER_VOCABULARIES' vars; a column without one is not
    checked). A value reached another way (`lower(metric) in …`, a join) is not seen."""
    problems = []
    patterns = {column: _filter_pattern(column) for column in vocabularies}
    for node in sorted(_audience_nodes(manifest), key=lambda n: n["unique_id"]):
        code = normalise(node.get("compiled_code") or "")
        key = node["name"]
        version = _whole_version(key, node.get("version") or 1)
        for column, known in vocabularies.items():
            values = {
                quoted.replace("''", "'")
                for listed in patterns[column].findall(code)
                for quoted in _QUOTED.findall(" ".join(listed))
            }
            for value in sorted(values - set(known)):
                problems.append(
                    Problem(
                        key,
                        version,
                        f"{key} v{version} ({node['original_file_path']}) filters "
                        f"{column} '{value}', which no source sends, so it matches no "
                        f"event (known: {', '.join(known)}). Fix the value; or, if "
                        f"Customer.io does send it, add it to var "
                        f"{FILTER_VOCABULARIES[column]} in dbt_project.yml.",
                    )
                )
    return problems


def undeclared_files(manifest: dict, sql_files: Iterable[str]) -> list[Problem]:
    """A .sql file under models/audiences/ that no versioned audience model declares as a
    version: dbt builds it as an ordinary model, outside the audiences, their fingerprints
    and the sync. Each problem names the file and the yml lines that make it a version."""
    audiences = _audience_nodes(manifest)
    declared = {
        node["original_file_path"]: node
        for node in audiences
        if node.get("version") is not None
    }
    latest = _latest_versions(manifest)
    ymls = {
        node["name"]: str(node.get("patch_path") or AUDIENCES_YML).split("://")[-1]
        for node in audiences
    }
    problems = []
    for path in sorted(set(sql_files) - set(declared)):
        stem = PurePosixPath(path).stem
        named = _VERSION_FILE.fullmatch(stem)
        name, version = (named["name"], int(named["version"])) if named else (stem, 1)
        said = (
            f"{path} is not a declared version of "
            f"{name if name in latest else 'an audience'}: dbt builds it as the model "
            f"{stem}, not as an audience version."
        )
        aside = f"or move it out of {AUDIENCES_DIR}/."
        changelog = f'`- {{version: {version}, date: "YYYY-MM-DD", change: "..."}}`'
        same = [
            other
            for other, node in declared.items()
            if node["name"] == name and _whole_version(name, node["version"]) == version
        ]
        if same:
            fix = f"{name} v{version} is {same[0]}: delete this file, {aside}"
        elif name in latest:
            newest = (
                f", and set `latest_version: {version}`"
                if version > latest[name]
                else ""
            )
            fix = (
                f"To make it {name} v{version}, under `- name: {name}` in {ymls[name]} "
                f"add `- v: {version}` to `versions:` and {changelog} to `changelog:`"
                f"{newest}; {aside}"
            )
        else:
            rename = "" if named else f"rename it {name}_v1.sql and "
            entry = (
                f"under `- name: {name}` in {ymls[name]} add"
                if name in ymls
                else f'add an audience to {AUDIENCES_YML} (copy one; README "Add or '
                f'change an audience"): `- name: {name}`,'
            )
            fix = (
                f"To make it {name} v{version}, {rename}{entry} "
                f"`latest_version: {version}`, `versions:` with `- v: {version}`, and "
                f"{changelog} under `changelog:`; {aside}"
            )
        problems.append(Problem(name, version, f"{said} {fix}"))
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
            # Nothing on the console: what went wrong is raised below, in one message
            # (with --quiet, dbt still printed each error with its traceback, some 200
            # lines for a warehouse another process holds). dbt's log file keeps it all,
            # at its own default level: without --log-level-file it would follow
            # --log-level and write nothing.
            "--log-level",
            "none",
            "--log-level-file",
            "debug",
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
