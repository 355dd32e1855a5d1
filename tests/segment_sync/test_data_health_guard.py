"""Issue 11 item 2 (the sync's side): the guardrails read dbt's data-health results and
name the failing check when they refuse."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.segment_sync.guards import check_data_health

PROJECT = "engagement_audiences"


def _artifacts(target: Path, results: dict[str, str], checks: dict[str, str]) -> Path:
    """dbt's manifest.json and run_results.json: {unique_id: status}, {unique_id: check}."""
    target.mkdir(parents=True, exist_ok=True)
    nodes = {
        unique_id: {
            "resource_type": unique_id.split(".")[0],
            "name": unique_id.split(".")[2],
            "tags": ["data_health"] if unique_id in checks else [],
            "config": {
                "tags": ["data_health"] if unique_id in checks else [],
                "meta": {"check": checks[unique_id]} if unique_id in checks else {},
            },
        }
        for unique_id in results
    }
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    path = target / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": uid, "status": status}
                    for uid, status in results.items()
                ]
            }
        )
    )
    return path


def test_failed_and_errored_checks_refuse_by_name(tmp_path: Path) -> None:
    volume = (
        f"test.{PROJECT}.event_volume_within_baseline_rpt_event_volumes_daily_7.924a2d"
    )
    fresh = f"test.{PROJECT}.source_is_fresh_rpt_source_freshness_72.63b3bd"
    share = (
        f"test.{PROJECT}.machine_open_share_stable_rpt_machine_open_share_daily.9f98ca"
    )
    other = f"test.{PROJECT}.unique_fct_orders_order_id.1a2b3c"
    path = _artifacts(
        tmp_path / "target",
        {volume: "fail", fresh: "error", share: "pass", other: "fail"},
        {
            volume: "event_volume",
            fresh: "source_freshness",
            share: "machine_open_share",
        },
    )

    refusals = check_data_health(path)

    assert [(r.rule, r.overridable) for r in refusals] == [("data_health", True)] * 2
    assert refusals[0].message.startswith(
        "data-health check 'event_volume' failed "
        "(event_volume_within_baseline_rpt_event_volumes_daily_7)"
    )
    assert refusals[1].message.startswith("data-health check 'source_freshness' failed")


def test_warnings_passes_and_missing_artifacts_do_not_refuse(tmp_path: Path) -> None:
    volume = f"test.{PROJECT}.event_volume_within_baseline_x.924a2d"
    path = _artifacts(tmp_path / "target", {volume: "warn"}, {volume: "event_volume"})
    assert check_data_health(path) == []
    assert check_data_health(tmp_path / "nowhere" / "run_results.json") == []
    assert check_data_health(None) == []
    (tmp_path / "target" / "manifest.json").unlink()
    path.write_text(json.dumps({"results": [{"unique_id": volume, "status": "fail"}]}))
    assert check_data_health(path) == []  # without a manifest, no test is data-health


def test_unreadable_results_refuse(tmp_path: Path) -> None:
    volume = f"test.{PROJECT}.event_volume_within_baseline_x.924a2d"
    path = _artifacts(tmp_path / "target", {volume: "fail"}, {volume: "event_volume"})
    path.write_text("{ not json")
    (refusal,) = check_data_health(path)
    assert refusal.message.startswith("cannot read dbt results")


def test_an_unreadable_manifest_beside_a_failed_test_refuses(tmp_path: Path) -> None:
    """dbt killed while writing manifest.json: which tests are data-health checks is
    unknown, so a failed test may be one; passing results still say nothing."""
    volume = f"test.{PROJECT}.event_volume_within_baseline_x.924a2d"
    path = _artifacts(tmp_path / "target", {volume: "fail"}, {volume: "event_volume"})
    manifest = tmp_path / "target" / "manifest.json"
    for broken in ('{"nodes": {"test.p', "{}"):
        manifest.write_text(broken)
        (refusal,) = check_data_health(path)
        assert (refusal.rule, refusal.overridable) == ("data_health", True)
        assert refusal.message.startswith(f"cannot read dbt's manifest {manifest}")
        assert "any of the 1 failed test(s)" in refusal.message
    path.write_text(json.dumps({"results": [{"unique_id": volume, "status": "pass"}]}))
    assert check_data_health(path) == []
