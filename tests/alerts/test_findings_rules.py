"""What each step's outcome says in its alert (scripts/run/findings.py), pinned on plain
step results, dbt artifacts written here and a real DuckDB file, without a tick.

The operator reads these texts at 3 a.m.: which lines of a failed step are quoted, which
node failed and what to run next. test_alerts.py runs the same findings through the
real `audiences run`; these pin the rules themselves (the lines kept, the limits, the
fallbacks, the exact commands).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scripts.dbt_artifacts import rebuild_command
from scripts.run.findings import (
    build_findings,
    fresh_run_results,
    load_findings,
    sync_delivery,
    sync_refusals,
)
from scripts.run.steps import StepResult
from scripts.segment_sync import outbox
from scripts.warehouse import connect

PROJECT = "engagement_audiences"
VOLUME_CHECK = (
    f"test.{PROJECT}.data_health_event_volume_fct_message_events_clicked.4d24"
)
SINCE = datetime(2026, 11, 30, 6)  # when the tick started, naive UTC


def _step(name: str, exit_code: int, *output: str) -> StepResult:
    return StepResult(name, [], exit_code, 1.0, list(output))


def _artifacts(
    target: Path,
    results: list[dict[str, object]],
    checks: dict[str, str] | None = None,
    written_at: datetime | None = None,
) -> Path:
    """run_results.json and manifest.json as a dbt build writes them; `checks` maps a
    data-health test's unique_id to its check. Returns run_results.json's path."""
    checks = checks or {}
    nodes = {}
    for result in results:
        if "unique_id" not in result:
            continue
        unique_id = str(result["unique_id"])
        tags = ["data_health"] if unique_id in checks else []
        meta = {"check": checks[unique_id]} if unique_id in checks else {}
        nodes[unique_id] = {
            "resource_type": unique_id.split(".")[0],
            "tags": tags,
            "config": {"tags": tags, "meta": meta},
        }
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    path = target / "run_results.json"
    path.write_text(json.dumps({"results": results}))
    if written_at is not None:
        stamp = written_at.replace(tzinfo=None) - datetime(1970, 1, 1)
        os.utime(path, (stamp.total_seconds(), stamp.total_seconds()))
    return path


def _failed_model(name: str, message: object = "Binder Error: no such column") -> dict:
    return {
        "unique_id": f"model.{PROJECT}.{name}",
        "status": "error",
        "message": message,
    }


# ---------- loads


def test_a_failed_load_quotes_its_last_three_error_lines() -> None:
    step = _step(
        "load webhooks", 4,
        "webhooks: 3 file(s) to load",
        *(f"error: landing file {i} failed: IO Error" for i in range(5)),
        "webhooks: stopped",
    )  # fmt: skip
    (alert,) = load_findings(step, "webhooks")
    assert alert.cause == "load_failed"
    assert alert.details == [
        "`audiences load webhooks` exited 4",
        "error: landing file 2 failed: IO Error",
        "error: landing file 3 failed: IO Error",
        "error: landing file 4 failed: IO Error",
    ]
    assert alert.command == (
        "audiences load webhooks <the same paths>  # rerun after fixing the cause"
    )


def test_a_load_with_no_error_line_quotes_its_last_lines_then_its_status() -> None:
    """A crash prints no `error:` line: its last three lines say what happened (not the
    resource tracker's warnings); a step that printed nothing has only its status."""
    tracker = "resource_tracker: There appear to be 1 leaked semaphore objects"
    traceback = ["Traceback (most recent call last):", '  File "x.py"', "MemoryError"]
    (alert,) = load_findings(
        _step("load orders", 1, "orders: reading", *traceback, tracker), "orders"
    )
    assert alert.details == ["`audiences load orders` exited 1", *traceback]
    (silent,) = load_findings(_step("load orders", -9), "orders")
    assert silent.details == ["`audiences load orders` exited -9", "exit status -9"]


def test_too_many_rejects_quote_the_last_count_and_one_error_line() -> None:
    step = _step(
        "load segment-events", 3,
        "segment-events: read 10 = loaded 9 + duplicate 0 + rejected 1",
        "segment-events: read 20 = loaded 5 + duplicate 0 + rejected 15",
        "error: 75.0% of the records were rejected (limit 1%)",
        "error: stopping before the next file",
    )  # fmt: skip
    (alert,) = load_findings(step, "segment-events")
    assert alert.cause == "load_rejects"
    assert alert.details == [
        "segment-events: read 20 = loaded 5 + duplicate 0 + rejected 15",
        "error: stopping before the next file",
    ]
    assert alert.command == (
        "select reason, count(*) from raw_loader.rejects "
        "where loader = 'segment-events' group by 1"
    )
    assert load_findings(_step("load segment-events", 0), "segment-events") == []
    # Without an `error:` line, the one line quoted is the step's last.
    quiet = _step("load orders", 3, "orders: read 4 = loaded 1 + duplicate 0 + rejected 3",
                  "orders: 75.0% rejected", "orders: stopped")  # fmt: skip
    (alert,) = load_findings(quiet, "orders")
    assert alert.details == [
        "orders: read 4 = loaded 1 + duplicate 0 + rejected 3",
        "orders: stopped",
    ]


# ---------- the build


def test_results_written_as_the_tick_started_are_this_build_s(tmp_path: Path) -> None:
    path = _artifacts(tmp_path, [_failed_model("fct_orders")], written_at=SINCE)
    assert fresh_run_results(path, SINCE) == [_failed_model("fct_orders")]
    assert fresh_run_results(path, SINCE + timedelta(seconds=1)) is None


def test_a_build_with_no_results_of_its_own(tmp_path: Path) -> None:
    """No fresh run_results.json: a passing build says nothing, a failed one its exit
    status and last three lines, and the command is a whole build."""
    missing = tmp_path / "target" / "run_results.json"
    assert build_findings(_step("dbt build", 0), missing, SINCE) == []
    lines = [f"12:00:0{i}  {i} of 9 OK created sql table model" for i in range(5)]
    (alert,) = build_findings(_step("dbt build", 2, *lines), missing, SINCE)
    assert alert.cause == "build_failed"
    assert alert.details == ["`dbt build` exited 2", *lines[-3:]]
    assert alert.command == "dbt build"


def test_a_failed_build_whose_results_all_passed_names_its_exit(tmp_path: Path) -> None:
    """dbt failed after its nodes (writing an artifact, a hook): every result passed,
    so the alert quotes the exit status and last lines, and the command is a build."""
    path = _artifacts(
        tmp_path, [{"unique_id": f"model.{PROJECT}.fct_orders", "status": "success"}]
    )
    step = _step("dbt build", 2, "on-run-end failed", "Runtime Error: disk I/O")
    (alert,) = build_findings(step, path, SINCE)
    assert alert.cause == "build_failed"
    assert alert.details == ["`dbt build` exited 2", *step.output]
    assert alert.command == "dbt build"


def test_failed_nodes_are_named_ten_at_most_with_their_messages(tmp_path: Path) -> None:
    failed = [_failed_model(f"model_{i:02d}", f"error {i}") for i in range(11)]
    path = _artifacts(tmp_path, failed)
    (alert,) = build_findings(_step("dbt build", 1), path, SINCE)
    assert alert.details == [f"model_{i:02d}: error {i}" for i in range(10)]
    assert alert.command == "dbt build --select model_00+"


def test_a_failed_message_is_one_line_of_200_characters_at_most(tmp_path: Path) -> None:
    long = "Runtime Error\n  in model x\n" + "y" * 300
    path = _artifacts(
        tmp_path,
        [
            _failed_model("a_long", long),
            _failed_model("b_exact", "z" * 200),
            _failed_model("c_none", None),
        ],
    )
    (alert,) = build_findings(_step("dbt build", 1), path, SINCE)
    long_detail, exact_detail, none_detail = alert.details
    shown = long_detail.removeprefix("a_long: ")
    assert len(shown) == 200
    assert shown == ("Runtime Error in model x " + "y" * 300)[:199] + "…"
    assert exact_detail == "b_exact: " + "z" * 200
    assert none_detail == "c_none: "


def test_a_result_without_a_unique_id_is_named_by_a_question_mark(
    tmp_path: Path,
) -> None:
    path = _artifacts(tmp_path, [{"status": "error", "message": "boom"}])
    (alert,) = build_findings(_step("dbt build", 1), path, SINCE)
    assert alert.details == ["?: boom"]
    assert alert.command == rebuild_command("?", {}) == "dbt build"


def test_failed_data_health_checks_alone_make_one_alert(tmp_path: Path) -> None:
    """The build exits 1 for a failed data-health check: that is the data_health alert,
    with the check, the test and dbt's message, and no build_failed beside it."""
    path = _artifacts(
        tmp_path,
        [
            {"unique_id": VOLUME_CHECK, "status": "fail", "message": "Got 3 results"},
            {"unique_id": f"model.{PROJECT}.fct_orders", "status": "success"},
        ],
        checks={VOLUME_CHECK: "event_volume"},
    )
    (alert,) = build_findings(_step("dbt build", 1), path, SINCE)
    assert alert.cause == "data_health"
    assert alert.details == [
        "check 'event_volume' (data_health_event_volume_fct_message_events_clicked): "
        "Got 3 results"
    ]
    assert alert.command == "dbt test --select tag:data_health --store-failures"


# ---------- the sync's refusals


def test_a_refusal_of_the_whole_sync_names_no_audience() -> None:
    """Only the per-audience rules name an audience, even when another rule's message
    begins the way an audience's does."""
    step = _step(
        "sync segment", 3,
        "  - [as_of] as_of: cannot read it from dbt results target/run_results.json",
        "  - [max_change] fatigued would change by 80% (1 enter, 4 exit)",
    )  # fmt: skip
    (alert,) = sync_refusals(step)
    assert alert.audiences == ["fatigued"]
    assert alert.details == [
        "[as_of] as_of: cannot read it from dbt results target/run_results.json",
        "[max_change] fatigued would change by 80% (1 enter, 4 exit)",
    ]


# ---------- the sync's delivery


@pytest.fixture
def warehouse(duckdb_path: Path):
    with connect() as wh:
        yield wh


def _run_row(wh, status: str, counts: tuple[int, int, int, int], error=None) -> None:
    """The sync run this tick started: (planned, sent, failed, dead-lettered)."""
    outbox.ensure(wh)
    wh.execute(
        f"insert into {outbox.RUNS} (run_id, target_name, started_at, status, exit_code, "
        "is_forced, is_full_resync, count_planned, count_sent, count_failed, "
        "count_dead_lettered, error) values ('r1', 'dev', %s, %s, 5, false, false, "
        "%s, %s, %s, %s, %s)",
        (SINCE + timedelta(minutes=1), status, *counts, error),
    )


def test_a_sync_that_crashed_before_its_run_row_quotes_its_errors(warehouse) -> None:
    crashed = _step(
        "sync segment", 1, "sync: planning", "error: cannot reach the outbox"
    )
    expected = [
        "`audiences sync segment` exited 1",
        "error: cannot reach the outbox",
    ]
    # No sync state at all yet, then state without a run since the tick started.
    (alert,) = sync_delivery(warehouse, SINCE, crashed)
    assert (alert.cause, alert.details) == ("sync_undelivered", expected)
    assert alert.command == "audiences sync segment --dry-run"
    outbox.ensure(warehouse)
    (again,) = sync_delivery(warehouse, SINCE, crashed)
    assert again.details == expected
    # Exits that are no delivery problem (sent, refused, locked) say nothing here.
    for code in (0, 3, 4):
        assert sync_delivery(warehouse, SINCE, _step("sync segment", code)) == []


def test_a_run_that_sent_everything_raises_no_delivery_alert(warehouse) -> None:
    _run_row(warehouse, "ok", (5, 5, 0, 0))
    assert sync_delivery(warehouse, SINCE, _step("sync segment", 5)) == []


def test_a_partial_run_without_failures_still_says_what_is_pending(warehouse) -> None:
    _run_row(warehouse, "partial", (5, 3, 0, 0))
    (alert,) = sync_delivery(warehouse, SINCE, _step("sync segment", 5))
    assert alert.cause == "sync_undelivered"
    assert alert.details == [
        "sync run r1 ended 'partial': sent 3 of 5, 0 failed, 0 pending "
        "(resent by the next run)"
    ]
    assert alert.command == (
        "audiences sync segment  # resends pending messages with the same ids"
    )


def test_an_undelivered_run_without_an_outbox_counts_none_pending(warehouse) -> None:
    _run_row(warehouse, "failed", (5, 0, 5, 0), "Segment answered 401")
    warehouse.execute(f"drop table {outbox.OUTBOX}")
    (alert,) = sync_delivery(warehouse, SINCE, _step("sync segment", 5))
    assert alert.details == [
        "sync run r1 ended 'failed': sent 0 of 5, 5 failed, 0 pending "
        "(resent by the next run)",
        "Segment answered 401",
    ]
    assert alert.audiences == []


def test_dead_letters_name_the_query_that_lists_them(warehouse) -> None:
    _run_row(warehouse, "ok", (2, 1, 0, 1))
    warehouse.execute(
        f"insert into {outbox.DEAD_LETTERS} (message_id, transition_id, run_id, "
        "audience_key, user_id, call_type, reason, attempts, dead_lettered_at) values "
        "('m1', 't1', 'r1', 'fatigued', 'u1', 'identify', 'HTTP 400: email too long', 1, "
        "%s)",
        (SINCE,),
    )
    (alert,) = sync_delivery(warehouse, SINCE, _step("sync segment", 5))
    assert alert.cause == "dead_letters"
    assert alert.details == ["fatigued: 1 message(s), e.g. HTTP 400: email too long"]
    assert alert.command == (
        "select * from segment_sync.dead_letters where run_id = 'r1'  # fix, then "
        "`audiences sync segment --retry-dead-letters`"
    )
