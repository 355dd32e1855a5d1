"""Issue 11 item 5: `audiences report --out` writes one self-contained page that a real
headless Chromium loads without console errors, its charts holding the expected points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.report.command import report
from scripts.warehouse import connect
from tests.report import warehouse_fixture as fx
from tests.report.browser import Elements, load, screenshot


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The report's tables filled with known rows, on a DuckDB file or PostgreSQL."""
    request.getfixturevalue("duckdb_path")
    if request.param == "postgres":
        request.getfixturevalue("postgres_env")
        monkeypatch.setenv("AUDIENCES_TARGET", "postgres")
    target_dir = tmp_path / "target"
    monkeypatch.setenv(
        "AUDIENCES_DBT_RUN_RESULTS", str(target_dir / "run_results.json")
    )
    with connect() as wh:
        fx.fill(wh, target_dir)
    return tmp_path


def _write(out: Path) -> str:
    result = CliRunner().invoke(report, ["--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _points(page: Elements, chart: str) -> list[dict[str, str]]:
    """The circles inside one chart, in document order."""
    inside, points = False, []
    for tag, attrs, _ in page.found:
        if tag == "svg":
            inside = attrs.get("data-chart") == chart
        elif inside and tag == "circle" and "point" in attrs.get("class", ""):
            points.append(attrs)
    return points


def test_report_loads_in_chromium_with_the_expected_data_points(filled: Path) -> None:
    out = filled / "report.html"
    assert "report written to" in _write(out)

    loaded = load(out, filled / "chromium-profile")

    assert loaded.console == []
    page = Elements(loaded.dom)
    # audience sizes over time, per arm
    sizes = _points(page, "sizes:email_clickers")
    treatment = [
        (p["data-x"], int(p["data-y"]))
        for p in sizes
        if p["data-series"] == "treatment"
    ]
    assert treatment == [
        (d.isoformat(), fx.members("email_clickers", "treatment", i))
        for i, d in enumerate(fx.days())
    ]
    holdout = [p for p in sizes if p["data-series"] == "holdout"]
    assert int(holdout[-1]["data-y"]) == fx.members(
        "email_clickers", "holdout", fx.DAYS - 1
    )
    # entries and exits by reason
    bars = {
        (b["data-row"], b["data-segment"]): int(b["data-value"])
        for b in page.select("rect")
        if b.get("class") == "bar"
    }
    assert bars == {
        (f"{key} · {change}", reason or "entered"): people
        for key, change, reason, people in fx.LEDGER
    }
    # lift with intervals, the inconclusive flag visible
    intervals = [a for a in page.select("g") if "interval" in a.get("class", "")]
    assert [
        (
            a["data-label"],
            float(a["data-estimate"]),
            float(a["data-lower"]),
            float(a["data-upper"]),
            a["data-inconclusive"],
        )
        for a in intervals
    ] == [
        (
            f"{key} v{version} · {week.isoformat()}",
            lift,
            lower,
            upper,
            "true" if reason else "false",
        )
        for key, version, week, _, _, lift, lower, upper, reason in sorted(fx.LIFT)
    ]
    assert page.texts("text", "flag") == ["inconclusive", "inconclusive"]
    assert "holdout arm too small" in loaded.dom
    # event volumes, the injected drop marked
    clicks = _points(page, "volume:email/clicked")
    assert [int(p["data-y"]) for p in clicks] == [fx.clicks(d) for d in fx.days()]
    flagged = [p for p in clicks if "data-flag" in p]
    assert [(p["data-x"], p["data-flag"]) for p in flagged] == [
        (fx.DROP_DAY.isoformat(), "drop")
    ]
    assert not any("data-flag" in p for p in _points(page, "volume:email/opened"))
    # machine-open share
    share = _points(page, "machine-open-share")
    assert [float(p["data-y"]) for p in share] == [
        fx.machine_share(i) for i in range(fx.DAYS)
    ]
    # sync history and failures
    assert [
        r["data-status"] for r in page.select("tr") if r.get("class") == "sync-run"
    ] == [
        "refused",
        "partial",
        "ok",
    ]
    # on top: what needs attention
    attention = page.texts("li", "attention-item")
    assert len(attention) == 7, attention
    assert attention[0].startswith("data-health check event_volume failed")
    assert attention[1].startswith(
        f"clicked on email: drop on {fx.DROP_DAY.isoformat()}"
    )
    assert "last scheduled run" in attention[2]
    assert "attention" in attention[2]
    assert "last Segment sync" in attention[3]
    assert "refused" in attention[3]
    assert attention[4].startswith("2 dead-lettered Segment message(s) (fatigued)")
    assert attention[5] == (
        f"cart_recovery_clicked_no_purchase has no members on {fx.LAST_DAY.isoformat()}"
    )
    # An audience that never had a member has no size rows: dim_audiences names it.
    assert attention[6] == (
        f"{fx.NEVER_FILLED} has no members on {fx.LAST_DAY.isoformat()}"
    )
    assert f"{fx.NEVER_FILLED}" in " ".join(page.texts("p", "empty"))
    assert loaded.dom.index('id="attention"') < loaded.dom.index('id="sizes"')

    screenshot(out, filled / "report.png", filled / "chromium-profile")
    assert (filled / "report.png").stat().st_size > 10_000


def test_report_on_an_empty_warehouse_says_what_is_missing(
    tmp_path: Path, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIENCES_DBT_RUN_RESULTS", str(tmp_path / "none.json"))
    with connect():  # a warehouse file, and nothing built in it
        pass
    out = tmp_path / "nested" / "report.html"
    _write(out)

    loaded = load(out, tmp_path / "chromium-profile")

    assert loaded.console == []
    assert "analytics.rpt_audience_lift does not exist yet" in loaded.dom
    assert "No real sync has run yet." in loaded.dom
    (missing,) = Elements(loaded.dom).texts("li", "attention-item")
    assert missing.startswith("the report cannot show everything:")
    assert "analytics.rpt_event_volumes_daily" in missing


def test_page_is_self_contained(filled: Path) -> None:
    """No script, no external reference; a CSP that blocks any fetch if one slipped in."""
    out = filled / "report.html"
    _write(out)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert "default-src 'none'" in html


def test_a_console_error_would_be_caught(tmp_path: Path) -> None:
    """The console check is not vacuous: a page that logs or fetches is seen doing so."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><script>console.error('boom')</script></body></html>"
    )
    assert any('"boom"' in line for line in load(page, tmp_path / "profile").console)


def test_a_failed_node_suggests_rebuilding_what_it_skipped(filled: Path) -> None:
    """A failed model, or a test of a source, skipped everything downstream: the page
    says to rebuild that node with its descendants (`+`), not the failed node alone."""
    target = filled / "target"
    source_test = (
        "test.engagement_audiences.source_not_null_customerio_webhook_events_id.1"
    )
    (target / "manifest.json").write_text(
        json.dumps(
            {
                "nodes": {
                    source_test: {
                        "resource_type": "test",
                        "attached_node": None,
                        "depends_on": {
                            "nodes": [
                                "source.engagement_audiences.customerio.webhook_events"
                            ]
                        },
                    }
                }
            }
        )
    )
    (target / "run_results.json").write_text(
        json.dumps(
            {
                "results": [
                    {"unique_id": "model.engagement_audiences.fct_orders",
                     "status": "error", "message": "Conversion Error"},
                    {"unique_id": source_test, "status": "fail",
                     "message": "Got 3 results, configured to fail if != 0"},
                ]
            }
        )
    )  # fmt: skip
    out = filled / "report.html"
    _write(out)
    html = out.read_text(encoding="utf-8")
    assert "look further: <code>dbt build --select fct_orders+</code>" in html
    assert (
        "look further: <code>dbt build --select source:customerio.webhook_events+</code>"
        in html
    )
