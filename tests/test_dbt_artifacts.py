"""dbt's artifacts as every reader sees them (scripts/dbt_artifacts.py): run_results.json
missing, unreadable or of another shape; the manifest's data-health checks; the rebuild
command a failed node's alert and the report name."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from scripts import dbt_artifacts
from scripts.dbt_artifacts import UnreadableArtifactError, read_run_results


def test_read_run_results__none_without_a_file(tmp_path: Path) -> None:
    assert read_run_results(None) is None
    assert read_run_results(tmp_path / "run_results.json") is None
    assert read_run_results(tmp_path) is None  # a folder is not a file


def test_read_run_results__what_dbt_wrote(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"generated_at": "2026-12-01T10:00:00Z"},
                "elapsed_time": 12.5,
                "args": {"which": "build", "vars": {"as_of": "2026-11-30"}},
                "results": [
                    {"unique_id": "model.p.a", "status": "success"},
                    {"unique_id": "test.p.b.1", "status": "fail"},
                    {"unique_id": "test.p.c.2", "status": "error"},
                    {"unique_id": "model.p.d", "status": "skipped"},
                    {"unique_id": "test.p.e.3", "status": "warn"},
                ],
            }
        )
    )
    os.utime(path, (1_700_000_000, 1_700_000_000))

    run = read_run_results(path)

    assert run is not None
    assert [r["unique_id"] for r in run.failed()] == ["test.p.b.1", "test.p.c.2"]
    assert run.args["vars"] == {"as_of": "2026-11-30"}
    assert (run.generated_at, run.elapsed_time) == ("2026-12-01T10:00:00Z", 12.5)
    assert run.written_at == datetime(2023, 11, 14, 22, 13, 20)  # naive UTC


def test_read_run_results__missing_parts_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps({"args": "build --empty", "metadata": []}))

    run = read_run_results(path)

    assert run is not None
    assert (run.results, run.args, run.generated_at, run.elapsed_time) == (
        [],
        {},
        None,
        None,
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{not json", ""),
        ("", ""),
        ("[]", ": not the run_results.json dbt writes"),
        ("null", ": not the run_results.json dbt writes"),
        ('{"results": {}}', ": not the run_results.json dbt writes"),
        ('{"results": [1]}', ": not the run_results.json dbt writes"),
    ],
)
def test_read_run_results__unreadable_names_the_file(
    tmp_path: Path, document: str, reason: str
) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(document)
    with pytest.raises(UnreadableArtifactError) as unreadable:
        read_run_results(path)
    assert str(unreadable.value) == f"cannot read dbt results {path}{reason}"


def test_read_manifest__not_an_object_is_empty(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[1, 2]")
    assert dbt_artifacts.read_manifest(tmp_path / "manifest.json") == {}


def test_tests_named__instances_of_one_generic_test() -> None:
    manifest = {
        "nodes": {
            "test.p.unique_new_keys_a.1": {
                "resource_type": "test",
                "test_metadata": {"name": "unique_new_keys"},
            },
            "test.p.not_null_a.2": {
                "resource_type": "test",
                "test_metadata": {"name": "not_null"},
            },
            "test.p.singular": {"resource_type": "test", "test_metadata": None},
            "model.p.a": {"resource_type": "model"},
        }
    }
    assert dbt_artifacts.tests_named(manifest, "unique_new_keys") == {
        "test.p.unique_new_keys_a.1"
    }
    assert dbt_artifacts.tests_named({}, "unique_new_keys") == set()


def test_node_name():
    assert (
        dbt_artifacts.node_name("test.proj.volume_is_sane.abc123") == "volume_is_sane"
    )
    assert dbt_artifacts.node_name("model.proj.fct_x") == "fct_x"
    assert dbt_artifacts.node_name("seed.x") == "seed.x"
    assert dbt_artifacts.node_name("model.proj.cart.v2") == "cart.v2"
    assert (
        dbt_artifacts.node_name("unit_test.proj.cart.v2.clicked_then_bought")
        == "cart.v2.clicked_then_bought"
    )


# The fields dbt's manifest (schema v12) gives a test or a unit test: the node it is
# attached to, and the nodes it depends on.
MANIFEST = {
    "nodes": {
        "test.proj.not_null_fct_orders_order_id.1a2b": {
            "attached_node": "model.proj.fct_orders",
            "depends_on": {"nodes": ["model.proj.fct_orders"]},
        },
        "test.proj.relationships_fct_orders_person_id.3c4d": {
            "attached_node": "model.proj.fct_orders",
            "depends_on": {"nodes": ["model.proj.dim_people", "model.proj.fct_orders"]},
        },
        "test.proj.source_not_null_customerio_webhook_events_event_id.5e6f": {
            "attached_node": None,
            "depends_on": {"nodes": ["source.proj.customerio.webhook_events"]},
        },
        "test.proj.not_null_cart_v2_person_id.7a8b": {
            "attached_node": "model.proj.cart.v2",
            "depends_on": {"nodes": ["model.proj.cart.v2"]},
        },
        "test.proj.assert_ledger_balances": {
            "attached_node": None,
            "depends_on": {"nodes": ["model.proj.a", "model.proj.b"]},
        },
    },
    "unit_tests": {
        "unit_test.proj.cart.v2.clicked_then_bought": {
            "depends_on": {"nodes": ["model.proj.cart.v2"]},
        },
    },
}


@pytest.mark.parametrize(
    ("unique_id", "command"),
    [
        # dbt build skipped what is downstream of a failed model: rebuild it all.
        ("model.proj.fct_orders", "dbt build --select fct_orders+"),
        ("model.proj.cart.v2", "dbt build --select cart.v2+"),
        ("seed.proj.suppressions", "dbt build --select suppressions+"),
        # a failed test skipped what is downstream of the node it checks
        (
            "test.proj.not_null_fct_orders_order_id.1a2b",
            "dbt build --select fct_orders+",
        ),
        (
            "test.proj.relationships_fct_orders_person_id.3c4d",
            "dbt build --select fct_orders+",
        ),
        (
            "test.proj.source_not_null_customerio_webhook_events_event_id.5e6f",
            "dbt build --select source:customerio.webhook_events+",
        ),
        ("test.proj.not_null_cart_v2_person_id.7a8b", "dbt build --select cart.v2+"),
        ("test.proj.assert_ledger_balances", "dbt build --select a+ b+"),
        # a unit test runs before its model, which the failure skipped
        ("unit_test.proj.cart.v2.clicked_then_bought", "dbt build --select cart.v2+"),
        # what no selector names: everything
        ("operation.proj.proj-on-run-start-0", "dbt build"),
        ("test.proj.not_in_the_manifest.9f9f", "dbt build"),
        ("unit_test.proj.gone.test", "dbt build"),
    ],
)
def test_rebuild_command(unique_id: str, command: str) -> None:
    assert dbt_artifacts.rebuild_command(unique_id, MANIFEST) == command


def test_read_manifest__missing_or_unreadable_is_empty(tmp_path: Path) -> None:
    assert dbt_artifacts.read_manifest(tmp_path / "manifest.json") == {}
    (tmp_path / "manifest.json").write_text("{not json")
    assert dbt_artifacts.read_manifest(tmp_path / "manifest.json") == {}


def test_data_health_checks__tags_and_meta_from_node_or_config(tmp_path: Path):
    manifest = tmp_path / "manifest.json"
    nodes = {
        "test.p.e.0": {
            "resource_type": "test",
            "tags": ["other"],
            "meta": {"check": "no"},
        },
        "test.p.a.1": {
            "resource_type": "test",
            "tags": ["data_health"],
            "meta": {"check": "volume"},
        },
        "test.p.b.2": {
            "resource_type": "test",
            "config": {"tags": ["data_health"], "meta": {"check": "fresh"}},
            "meta": {"check": "old"},
        },
        "test.p.c.3": {
            "resource_type": "test",
            "tags": ["data_health"],
            "name": "c_test",
        },
        "test.p.d.4": {"resource_type": "test", "config": {"tags": ["data_health"]}},
        "test.p.e.5": {
            "resource_type": "test",
            "tags": ["other"],
            "meta": {"check": "no"},
        },
        "model.p.f": {"resource_type": "model", "tags": ["data_health"]},
        "test.p.g.6": {
            "resource_type": "test",
            "tags": None,
            "config": None,
            "meta": None,
        },
    }
    manifest.write_text(json.dumps({"nodes": nodes}))

    def checks(path: Path) -> dict[str, str]:
        return dbt_artifacts.data_health_checks(dbt_artifacts.read_manifest(path))

    assert checks(manifest) == {
        "test.p.a.1": "volume",
        "test.p.b.2": "fresh",  # the config's meta wins
        "test.p.c.3": "c_test",
        "test.p.d.4": "test.p.d.4",
    }
    assert checks(tmp_path / "absent.json") == {}
    manifest.write_text("{")
    assert checks(manifest) == {}
    manifest.write_text(json.dumps({}))
    assert checks(manifest) == {}


def test_data_health_checks__nodes_of_another_shape_are_skipped_or_read() -> None:
    manifest = {
        "nodes": {
            "test.p.a.1": "not a node",
            "test.p.b.2": {"resource_type": "test", "tags": "data_health"},
            "test.p.c.3": {
                "resource_type": "test",
                "config": {"tags": ["data_health"], "meta": "not a mapping"},
            },
        }
    }
    assert dbt_artifacts.data_health_checks(manifest) == {
        "test.p.b.2": "test.p.b.2",
        "test.p.c.3": "test.p.c.3",
    }
    assert dbt_artifacts.data_health_checks({"nodes": ["x"]}) == {}
