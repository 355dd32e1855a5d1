"""dbt's record of its last command: `run_results.json` and `manifest.json`, read here.

The sync's guardrails, the tick's alerts, key checks and vacuum bookkeeping, and the
report all judge dbt's last command by these two files (where they are:
scripts/settings.py, `dbt_run_results`). One reader, so that each file's three
unhappy cases mean the same to all of them:

- no file (nothing built yet, or another target folder): `None` or `{}`;
- unreadable: not JSON (dbt killed while writing it, a full disk), or JSON of another
  shape than dbt's (an object whose `results` is a list of objects): run_results.json
  raises `UnreadableArtifactError`, naming the file, and each caller says what that means
  to it (the sync refuses, the report lists it, a tick counts it as a build that wrote
  no results); an unreadable manifest is `{}`, as one that names no node;
- a file of an earlier command: `RunResults.written_at` says when it was written.

The fields read (dbt's artifact schemas, schemas.getdbt.com/dbt/run-results/v6.json
and manifest/v12.json): a result's `unique_id`, `status` and `message`; `args` (the
command's own arguments: `vars`, `empty`, `which`); `metadata.generated_at`; the
manifest's `nodes` and `unit_tests` with their `resource_type`, `tags`, `config`,
`meta`, `test_metadata`, `attached_node` and `depends_on`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# A result with one of these statuses failed (dbt also writes pass, success, warn,
# skipped and no-op).
FAILED_STATUSES = ("fail", "error", "runtime error")
DATA_HEALTH_TAG = "data_health"


class UnreadableArtifactError(ValueError):
    """A run_results.json that is not JSON, or not of the shape dbt writes."""


@dataclass(frozen=True)
class RunResults:
    path: Path
    results: list[dict[str, Any]]  # one per node that ran
    args: dict[str, Any]  # the command's arguments ({} if dbt wrote none)
    generated_at: object  # metadata.generated_at as written (an ISO string), or None
    elapsed_time: float | None  # dbt's own wall time for the command, in seconds
    written_at: datetime  # the file's modification time, naive UTC

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r.get("status") in FAILED_STATUSES]


def read_run_results(path: Path | None) -> RunResults | None:
    """dbt's run_results.json at `path`: None when there is none (module docstring)."""
    if path is None or not path.is_file():
        return None
    try:
        written_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:  # removed since is_file(): as if never there
        return None
    except (OSError, ValueError) as exc:
        raise UnreadableArtifactError(f"cannot read dbt results {path}") from exc
    results = document.get("results", []) if isinstance(document, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise UnreadableArtifactError(
            f"cannot read dbt results {path}: not the run_results.json dbt writes"
        )
    arguments = document.get("args")
    metadata = document.get("metadata")
    elapsed = document.get("elapsed_time")
    return RunResults(
        path=path,
        results=results,
        args=arguments if isinstance(arguments, dict) else {},
        generated_at=metadata.get("generated_at")
        if isinstance(metadata, dict)
        else None,
        written_at=written_at.replace(tzinfo=None),
        elapsed_time=elapsed if isinstance(elapsed, int | float) else None,
    )


def read_manifest(manifest_path: Path) -> dict[str, Any]:
    """dbt's manifest.json, or {} when it is missing, unreadable or not an object."""
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def node_name(unique_id: str) -> str:
    """A dbt unique_id as a person reads it: the name past the project, with a model's
    version (`model.<project>.cart.v2` -> `cart.v2`) and a unit test's model
    (`unit_test.<project>.cart.v2.<test>` -> `cart.v2.<test>`), but without a data
    test's trailing hash (`test.<project>.<name>.<hash>` -> `<name>`), which says
    nothing to a person."""
    parts = unique_id.split(".")
    if len(parts) < 3:
        return unique_id
    return parts[2] if parts[0] == "test" else ".".join(parts[2:])


def tests_named(manifest: dict[str, Any], generic_test: str) -> set[str]:
    """The unique_ids of every instance of one generic test (`unique_new_keys`)."""
    return {
        unique_id
        for unique_id, node in (manifest.get("nodes") or {}).items()
        if isinstance(node, dict)
        and node.get("resource_type") == "test"
        and (node.get("test_metadata") or {}).get("name") == generic_test
    }


def data_health_checks(manifest: dict[str, Any]) -> dict[str, str]:
    """unique_id -> check name of every test tagged data_health in dbt's manifest.

    run_results.json carries no tags, so the manifest (written by the same dbt invocation)
    is where a test's tag and its `meta: {check: ...}` live."""
    nodes = manifest.get("nodes")
    checks = {}
    for unique_id, node in (nodes if isinstance(nodes, dict) else {}).items():
        if not isinstance(node, dict):
            continue
        config = _mapping(node.get("config"))
        if node.get("resource_type") != "test" or DATA_HEALTH_TAG not in (
            _tags(node.get("tags")) | _tags(config.get("tags"))
        ):
            continue
        meta = {**_mapping(node.get("meta")), **_mapping(config.get("meta"))}
        checks[unique_id] = str(meta.get("check") or node.get("name") or unique_id)
    return checks


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tags(value: object) -> set[str]:
    """A node's tags: a list, as dbt writes them, or one tag as a string."""
    if isinstance(value, str):
        return {value}
    return {str(tag) for tag in value} if isinstance(value, list) else set()


def rebuild_command(unique_id: str, manifest: dict[str, Any]) -> str:
    """What to run once a failed node's cause is fixed: `dbt build --select X+ …`.

    `dbt build` skips everything downstream of a failed model, and of the model or
    source a failed test checks, so the rebuild is that node and its descendants (`+`),
    not the failed node alone: rebuilding only fct_orders would leave dim_people and the
    audiences as the failure left them until the next full build. A test over several
    models selects each of them; a unit test, its model (unit tests run before it). What
    no selector names (a failed hook, an id the manifest does not know) gets `dbt build`."""
    resource = unique_id.split(".", 1)[0]
    if resource in ("model", "seed", "snapshot"):
        parents = [unique_id]
    else:
        section = "unit_tests" if resource == "unit_test" else "nodes"
        node = (manifest.get(section) or {}).get(unique_id) or {}
        attached = node.get("attached_node")
        parents = (
            [attached]
            if attached
            else (node.get("depends_on") or {}).get("nodes") or []
        )
    selectors = [_selector(parent) for parent in parents]
    if not selectors or None in selectors:
        return "dbt build"
    return "dbt build --select " + " ".join(f"{s}+" for s in selectors)


def _selector(unique_id: str) -> str | None:
    """dbt's selector for one node: `name` or `name.v2` (a model version), or
    `source:<source>.<table>`; None for anything else."""
    resource, _, rest = unique_id.partition(".")
    name = rest.partition(".")[2]  # past the project
    if not name:
        return None
    if resource in ("model", "seed", "snapshot"):
        return name
    if resource == "source":
        return f"source:{name}"
    return None
