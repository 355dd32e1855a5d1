"""Our stand-in for dbt-project-evaluator (not installable here): structure, testing,
documentation and governance rules over target/manifest.json, with reasoned exceptions in
seeds/project_check_exceptions.csv (the rules of dbt-project-evaluator:
https://dbt-labs.github.io/dbt-project-evaluator/)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

PREFIX_DIRECTORY = {
    "stg_": "models/staging/",
    "int_": "models/intermediate/",
    "dim_": "models/marts/",
    "fct_": "models/marts/",
    "sync_": "models/syncs/",
    "rpt_": "models/marts/",
}


@pytest.fixture(scope="module")
def manifest(demo_warehouse) -> dict:
    return json.loads(
        (demo_warehouse.path.parent / "target" / "manifest.json").read_text()
    )


@pytest.fixture(scope="module")
def exceptions() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    with (REPO_ROOT / "seeds" / "project_check_exceptions.csv").open() as handle:
        for row in csv.DictReader(handle):
            assert row["comment"].strip(), f"exception without a reason: {row}"
            found[row["fct_name"]].add(row["id_to_exclude"])
    return found


def _models(manifest: dict) -> list[dict]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["package_name"] == "engagement_audiences"
    ]


def _excepted(node: dict, rule: str, exceptions: dict[str, set[str]]) -> bool:
    ids = exceptions.get(rule, set())
    return (
        node["name"] in ids
        or node["unique_id"] in ids
        or any(node["original_file_path"].startswith(prefix) for prefix in ids)
    )


def test_model_naming_and_directories(manifest, exceptions) -> None:
    wrong = []
    for node in _models(manifest):
        if _excepted(node, "fct_model_naming_conventions", exceptions):
            continue
        prefix = next((p for p in PREFIX_DIRECTORY if node["name"].startswith(p)), None)
        if prefix is None or not node["original_file_path"].startswith(
            PREFIX_DIRECTORY[prefix]
        ):
            wrong.append(node["original_file_path"])
    assert wrong == []


def test_only_staging_reads_sources_and_staging_reads_only_sources(manifest) -> None:
    wrong = []
    for node in _models(manifest):
        parents = node["depends_on"]["nodes"]
        reads_source = any(parent.startswith("source.") for parent in parents)
        reads_model = any(parent.startswith("model.") for parent in parents)
        if node["name"].startswith("stg_"):
            source_name = node["original_file_path"].split("/")[2]
            if reads_model or not node["name"].startswith(f"stg_{source_name}__"):
                wrong.append(node["name"])
        elif reads_source:
            wrong.append(node["name"])
    assert wrong == []


def test_every_model_and_column_is_documented(manifest) -> None:
    missing = []
    for node in _models(manifest):
        if not node["description"].strip():
            missing.append(node["name"])
        missing += [
            f"{node['name']}.{name}"
            for name, column in node["columns"].items()
            if not column["description"].strip()
        ]
    for source in manifest["sources"].values():
        if not source["description"].strip():
            missing.append(source["unique_id"])
    assert missing == []


def test_every_model_has_a_primary_key_test(manifest, exceptions) -> None:
    tested: dict[str, set[str]] = defaultdict(set)
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or "test_metadata" not in node:
            continue
        name = node["test_metadata"]["name"]
        column = node["test_metadata"]["kwargs"].get("column_name")
        for parent in node["depends_on"]["nodes"]:
            if name in ("unique_combination_of_columns", "primary_key"):
                tested[parent].add("combination")  # a key test on its own
            elif name in ("unique", "not_null"):
                tested[parent].add(f"{name}:{column}")
            elif name == "unique_new_keys":  # `unique`, scoped by a tick (our macro)
                tested[parent].add(f"unique:{column}")
    missing = []
    for node in _models(manifest):
        if _excepted(node, "fct_missing_primary_key_tests", exceptions):
            continue
        marks = tested[node["unique_id"]]
        uniques = {m.split(":", 1)[1] for m in marks if m.startswith("unique:")}
        has_pk = "combination" in marks or any(
            f"not_null:{c}" in marks for c in uniques
        )
        if not has_pk:
            missing.append(node["name"])
    assert missing == []


def test_public_models_have_enforced_contracts(manifest) -> None:
    public = [node for node in _models(manifest) if node.get("access") == "public"]
    assert {node["name"] for node in public} >= {
        "dim_audiences", "fct_audience_memberships", "fct_audience_membership_changes",
        "sync_segment__audience_memberships", "sync_segment__audience_exits",
    }  # fmt: skip
    assert [n["name"] for n in public if not n["config"]["contract"]["enforced"]] == []


def test_sources_have_freshness(manifest, exceptions) -> None:
    stale = [
        source["unique_id"]
        for source in manifest["sources"].values()
        if source["unique_id"] not in exceptions["fct_sources_without_freshness"]
        and not (source.get("freshness") or {}).get("error_after", {}).get("count")
    ]
    assert stale == []


def test_exposures_depend_only_on_public_tables(manifest, exceptions) -> None:
    for exposure in manifest["exposures"].values():
        for parent in exposure["depends_on"]["nodes"]:
            node = manifest["nodes"][parent]
            if not _excepted(
                node, "fct_exposures_dependent_on_private_models", exceptions
            ):
                assert node["access"] == "public", parent
            assert node["config"]["materialized"] in ("table", "incremental"), parent


# The rules this file checks, each by the name dbt-project-evaluator gives it.
RULES = {
    "fct_model_naming_conventions",
    "fct_missing_primary_key_tests",
    "fct_sources_without_freshness",
    "fct_exposures_dependent_on_private_models",
}


def test_every_exception_names_something_that_exists(manifest, exceptions) -> None:
    """An exception left behind by a renamed or removed model excuses nothing today, but
    would silently excuse a new model that takes the name; one under a misspelled rule
    excuses nothing at all; an empty id would excuse every model (a prefix of every path)."""
    assert set(exceptions) <= RULES
    names, paths = set(), []
    for kind in ("nodes", "sources", "exposures"):
        for node in manifest[kind].values():
            if node["package_name"] == "engagement_audiences":
                names.update((node["name"], node["unique_id"]))
                paths.append(node["original_file_path"])
    stale = [
        (rule, excepted)
        for rule, ids in exceptions.items()
        for excepted in ids
        if not excepted.strip()
        or (
            excepted not in names
            and not (
                excepted.endswith("/") and any(p.startswith(excepted) for p in paths)
            )
        )
    ]
    assert stale == []


def test_seed_values_carry_no_single_quote() -> None:
    """dbt-spark's seed load puts the values into its INSERT without escaping a single
    quote, so one apostrophe in a comment ("the tables' keys") failed the whole Spark
    build with a syntax error; `make test-spark` found it, this keeps it found in CI."""
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((REPO_ROOT / "seeds").glob("*.csv"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "'" in line
    ]
    assert offenders == []


# PostgreSQL truncates nothing: an identifier longer than 63 bytes is an error, and dbt
# names the relation it builds for a unit test after the test.
POSTGRES_MAX_IDENTIFIER = 63


def test_unit_test_names_fit_a_postgres_identifier(manifest) -> None:
    too_long = [
        node["name"]
        for node in manifest["unit_tests"].values()
        if len(node["name"]) > POSTGRES_MAX_IDENTIFIER
    ]
    assert too_long == []


def test_macro_argument_types_are_ones_dbt_validates() -> None:
    """dbt 1.12 checks documented macro argument types (validate_macro_args, on by
    default) and warns at every parse for one outside its grammar (`number`, a bare
    `dict`, `A | B`): a user's `dbt build --warn-error` would then fail. Checked with
    dbt's own validator, without a parse."""
    from dbt.parser.schemas import is_valid_type

    invalid = [
        (path.name, macro["name"], argument["name"], argument["type"])
        for path in sorted((REPO_ROOT / "macros").rglob("*.yml"))
        for macro in (yaml.safe_load(path.read_text()) or {}).get("macros", [])
        for argument in macro.get("arguments", [])
        if "type" in argument and not is_valid_type(argument["type"])
    ]
    assert invalid == []
