"""`audiences load api` against a fake App API on 127.0.0.1; DuckDB and PostgreSQL."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scripts.loaders.api import WINDOW_SECONDS, parse_time, windows_from
from scripts.loaders.api_store import check_message
from scripts.loaders.stage import NUL_DETAIL
from scripts.warehouse import connect
from tests.fakes.customerio_api import SIX_MONTHS_SECONDS, FakeAppApi, make_messages

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "customerio_api"
# Made per test session: no key literal in the repo, and leak checks search for it.
API_KEY = "app-api-test-" + secrets.token_hex(8)
SINCE = parse_time("2024-01-01")
UNTIL = parse_time("2025-03-01")  # 425 days: three windows


def template() -> list[dict]:
    return json.loads((FIXTURES / "messages_page.json").read_text())["messages"]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest) -> str:
    if request.param == "duckdb":
        request.getfixturevalue("duckdb_path")
        return "dev"
    request.getfixturevalue("postgres_env")
    return "postgres"


@pytest.fixture
def duck(duckdb_path: Path) -> str:
    return "dev"


@pytest.fixture
def served() -> list[dict]:
    messages = make_messages(template(), SINCE, UNTIL, 230)
    # One delivery exactly on a window boundary: both windows serve it (inclusive ends).
    messages[100]["created"] = SINCE + WINDOW_SECONDS
    return messages


@pytest.fixture
def fake_api(
    served: list[dict], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeAppApi]:
    with FakeAppApi(served, API_KEY, now=UNTIL) as fake:
        monkeypatch.setenv("CIO_APP_API_KEY", API_KEY)
        monkeypatch.setenv("CIO_API_BASE_URL", fake.base_url)
        yield fake


def run_api(*args: str) -> Result:
    from scripts.loaders.command import api_command

    return CliRunner().invoke(api_command, list(args), catch_exceptions=False)


def landed(target_name: str) -> dict[str, tuple]:
    with connect(target_name) as wh:
        rows = wh.query(
            "select delivery_id, message_type, created_at, payload "
            "from raw_customerio.api_messages"
        )
    return {
        row[0]: (
            row[1],
            row[2],
            json.loads(row[3]) if isinstance(row[3], str) else row[3],
        )
        for row in rows
    }


def summary(result: Result) -> str:
    lines = [
        line for line in result.stdout.splitlines() if line.startswith("api: read")
    ]
    assert len(lines) == 1, result.stdout + result.stderr
    return lines[0]


# ---------------------------------------------------------------- pure parts
def test_windows_from__never_exceeds_the_api_limit_and_covers_the_range():
    windows = windows_from(SINCE, UNTIL)
    assert len(windows) == 3
    assert windows[0][0] == SINCE
    assert windows[-1][1] == UNTIL
    assert all(b[0] == a[1] for a, b in itertools.pairwise(windows))
    assert all(
        end - start <= WINDOW_SECONDS < SIX_MONTHS_SECONDS for start, end in windows
    )


def test_parse_time__dates_datetimes_and_unix_seconds():
    assert parse_time("2024-01-01") == 1704067200
    assert parse_time("1704067200") == 1704067200
    assert parse_time("2024-01-01T01:00:00Z") == 1704070800
    assert parse_time("2024-01-01T02:00:00+01:00") == 1704070800


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("not an object", ("not_an_object", "message is not a JSON object")),
        ("missing id", ("missing_id", "missing id")),
        ("id is not a string", ("bad_id", "id is not a string")),
        (
            "created is a string",
            ("bad_created", "created is not a Unix timestamp (integer seconds)"),
        ),
        (
            "created is a float",
            ("bad_created", "created is not a Unix timestamp (integer seconds)"),
        ),
        ("missing type", ("missing_type", "missing type")),
        ("metrics not an object", ("bad_metrics", "metrics is not an object")),
        (
            "metric value not a timestamp",
            ("bad_metrics", "metrics.opened is not a Unix timestamp"),
        ),
        (
            "NUL character",
            ("unsupported_nul_character", NUL_DETAIL),
        ),
    ],
)
def test_check_message__names_the_reason(case: str, reason: tuple[str, str]):
    cases = json.loads((FIXTURES / "malformed_messages.json").read_text())
    message = next(item["message"] for item in cases if item["case"] == case)
    assert check_message(message) == reason


@pytest.mark.parametrize(
    "value",
    [10**400, 2**63, -1, 0, 946684799, "future"],
)
def test_check_message__a_staged_metric_outside_the_time_window_is_rejected(value):
    # Staging casts each metric of var api_message_metrics to bigint, then to a
    # timestamp: one value out of range would fail the model for every row.
    limit = 1_800_000_000
    message = {"id": "d1", "type": "email", "created": 1727711000}
    message["metrics"] = {"sent": limit + 1 if value == "future" else value}
    assert check_message(message, future_limit=limit) == (
        "bad_metrics",
        "metrics.sent is not a Unix timestamp between 2000-01-01 and a day after "
        "the load",
    )
    for edge in (946684800, limit):  # both ends are in the window
        message["metrics"] = {"sent": edge}
        assert check_message(message, future_limit=limit) is None
    # A metric staging does not read (one Customer.io adds) stays in the payload as is.
    message["metrics"] = {"sent": limit, "first_seen_by_bots": 0}
    assert check_message(message, future_limit=limit) is None
    assert check_message(message, future_limit=limit, staged_metrics={"sent"}) is None
    assert check_message(
        message, future_limit=limit, staged_metrics={"first_seen_by_bots"}
    ) == (
        "bad_metrics",
        "metrics.first_seen_by_bots is not a Unix timestamp between 2000-01-01 and a "
        "day after the load",
    )


def test_check_message__a_message_too_deep_to_store_is_rejected():
    nested: list = []
    for _ in range(100_000):  # built in a loop: no recursion here
        nested = [nested]
    message = {"id": "d1", "type": "email", "created": 1727711000, "body": nested}
    assert check_message(message) == (
        "too_deeply_nested",
        "nested too deeply to store as JSON",
    )


def test_check_message__accepts_every_documented_shape():
    assert [check_message(message) for message in template()] == [None] * 5


# ---------------------------------------------------------------- backfills
def test_load_api__backfill_over_six_months_walks_windows_and_lands_exactly(
    target, fake_api, served
):
    result = run_api(
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--limit-per-page",
        "15",
        "--target",
        target,
    )
    assert result.exit_code == 0, result.output
    rows = landed(target)
    assert set(rows) == {message["id"] for message in served}
    by_id = {message["id"]: message for message in served}
    for delivery_id, (message_type, created_at, payload) in rows.items():
        assert payload == by_id[delivery_id]
        assert message_type == by_id[delivery_id]["type"]
        # Stored as naive UTC wall time (docs/warehouse-contracts.md).
        assert (
            created_at.replace(tzinfo=UTC).timestamp() == by_id[delivery_id]["created"]
        )
    # Every request stayed inside the API's rules.
    windows = {
        (int(r.params["start_ts"]), int(r.params["end_ts"])) for r in fake_api.requests
    }
    assert windows == set(windows_from(SINCE, UNTIL))
    assert all(r.status == 200 for r in fake_api.requests)
    served_count = sum(len(r.served) for r in fake_api.requests)
    assert served_count == 231  # 230 + the boundary delivery served by two windows
    assert summary(result).startswith(
        "api: read 231 = loaded 230 + duplicate 1 + rejected 0"
    )
    assert "window 3/3" in result.stderr
    # The rate ceiling: no second holds more than 10 requests, retries included.
    times = [r.at for r in fake_api.requests]
    assert len(times) >= 15
    # On average too, with one request of slack: these are the times the server read each
    # request, which carry the client's scheduling jitter (on a loaded machine the first
    # request, which opens the connection, arrived 86 ms late: 16 intervals in 1.563 s,
    # though the client paced them at 9.7 a second, 1.649 s apart at least).
    assert (len(times) - 2) / (times[-1] - times[0]) <= 10.0
    # And in any window, shortened by that jitter: a request the server reads up to
    # JITTER late lets the ten after it fall within one second of it (at 9.7 a second,
    # ten intervals are 1.031 s), as a CI run under load saw (11 in a second). A window of
    # 1 - JITTER s holds at most 10 from a client paced right, and a burst, or pacing
    # well above 10 a second, still overfills it.
    jitter = 0.1
    assert all(
        sum(1 for t in times if start <= t < start + 1.0 - jitter) <= 10
        for start in times
    )

    # A finished range is not fetched again …
    before = len(fake_api.requests)
    again = run_api(
        "--since", "2024-01-01", "--until", "2025-03-01", "--target", target
    )
    assert again.exit_code == 0, again.output
    assert len(fake_api.requests) == before
    assert "nothing to do" in again.stderr
    assert summary(again).startswith("api: read 0 = loaded 0")
    # … unless asked: a restart reads everything again and changes nothing.
    restart = run_api(
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--restart",
        "--target",
        target,
    )
    assert restart.exit_code == 0, restart.output
    assert summary(restart).startswith("api: read 231 = loaded 0 + duplicate 231")
    assert landed(target) == rows


def test_load_api__changed_metrics_update_the_row_latest_wins(duck, fake_api, served):
    assert run_api("--since", "2024-01-01", "--until", "2025-03-01").exit_code == 0
    served[5]["metrics"] = {**served[5]["metrics"], "opened": served[5]["created"] + 60}
    result = run_api("--since", "2024-01-01", "--until", "2025-03-01", "--restart")
    assert summary(result).startswith("api: read 231 = loaded 1 + duplicate 230")
    assert "updated 1" in summary(result)
    assert (
        landed(duck)[served[5]["id"]][2]["metrics"]["opened"]
        == served[5]["created"] + 60
    )


def test_load_api__429_burst_500_and_reset_are_retried_without_loss(
    duck, fake_api, served
):
    fake_api.faults = {
        2: "429",
        3: "429",
        4: "429-retry-after",
        6: "500",
        8: "reset",
    }
    result = run_api(
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--limit-per-page",
        "50",
        "--backoff",
        "0.1",
    )
    assert result.exit_code == 0, result.output
    assert set(landed(duck)) == {message["id"] for message in served}
    assert summary(result).startswith(
        "api: read 231 = loaded 230 + duplicate 1 + rejected 0"
    )
    assert "5 retries" in summary(result)
    assert "retry 1/7 after HTTP 429" in result.stderr
    assert "retry 1/7 after HTTP 500" in result.stderr
    gaps = {
        n: fake_api.requests[n].at - fake_api.requests[n - 1].at
        for n in (2, 3, 4, 6, 8)
    }  # index n = request n + 1, the retry of request n
    assert gaps[2] >= 0.1  # first retry already backs off
    assert gaps[3] >= 0.2  # and doubles
    assert gaps[4] >= 1.0  # Retry-After: 1 wins over the backoff
    assert gaps[6] >= 0.1
    # Each page was served once: retries lost nothing and duplicated nothing.
    pages = [tuple(r.served) for r in fake_api.ok_requests()]
    assert len(pages) == len(set(pages))


def test_load_api__gives_up_clearly_then_resumes_from_the_stored_cursor(
    duck, fake_api, served
):
    fake_api.faults = {n: "500" for n in range(4, 7)}
    first = run_api(
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--limit-per-page",
        "20",
        "--max-attempts",
        "3",
        "--backoff",
        "0.01",
    )
    assert first.exit_code == 4
    assert "gave up on GET /v1/messages after 3 attempts: HTTP 500" in first.stderr
    assert "rerun to resume" in first.stderr
    assert len(landed(duck)) == 60  # three committed pages of 20
    with connect("dev") as wh:
        token = wh.scalar("select next_token from raw_loader.api_cursors")
    assert token

    fetched_before = len(fake_api.ok_requests())
    second = run_api(
        "--since", "2024-01-01", "--until", "2025-03-01", "--limit-per-page", "15"
    )
    assert second.exit_code == 0, second.output
    assert "resuming the stored cursor" in second.stderr
    resumed = fake_api.requests[6]
    assert resumed.params.get("start") == token  # continues, does not start over
    assert set(landed(duck)) == {message["id"] for message in served}
    assert summary(second).startswith(
        "api: read 171 = loaded 170 + duplicate 1 + rejected 0"
    )
    # No page fetched twice across both runs.
    pages = [tuple(r.served) for r in fake_api.ok_requests()]
    assert len(pages) == len(set(pages))
    assert fetched_before == 3


def test_load_api__a_full_disk_stops_in_one_line_and_a_rerun_resumes(
    fake_api, served, small_disk, monkeypatch: pytest.MonkeyPatch
):
    # The warehouse on a small real disk that then fills up, as a full disk does:
    # every free block taken by another file.
    disk = small_disk("4m")
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(disk / "warehouse.duckdb"))
    monkeypatch.delenv("AUDIENCES_TARGET", raising=False)
    assert run_api("--since", "2024-01-01", "--until", "2024-01-02").exit_code == 0
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 4096)

    full = run_api(
        "--since", "2024-01-01", "--until", "2025-03-01", "--limit-per-page", "20"
    )

    assert full.exit_code == 4, full.output
    assert "api: stopped, a disk is full" in full.stderr
    assert "No space left on device" in full.stderr
    assert "rerun to resume" in full.stderr
    kept = set(landed("dev"))
    assert len(kept) < len(served)
    # Space freed, the same warehouse file resumes: every delivery, each once.
    filler.unlink()
    again = run_api(
        "--since", "2024-01-01", "--until", "2025-03-01", "--limit-per-page", "20"
    )
    assert again.exit_code == 0, again.output
    assert set(landed("dev")) == {message["id"] for message in served}


@pytest.mark.slow
def test_load_api__kill_9_mid_backfill_resumes_with_exact_counts(
    target, fake_api, served, tmp_path
):
    fake_api.delay_seconds = 0.02
    args = [
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--limit-per-page",
        "10",
        "--target",
        target,
    ]
    audiences = str(Path(sys.executable).parent / "audiences")
    process = subprocess.Popen(
        [audiences, "load", "api", *args],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(fake_api.ok_requests()) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    killed_after = len(fake_api.ok_requests())
    assert 8 <= killed_after < 24  # really interrupted mid-run

    with connect(target) as wh:
        committed_pages = wh.scalar("select pages from raw_loader.api_cursors")
        committed_rows = wh.scalar("select count(*) from raw_customerio.api_messages")
    assert committed_rows == len(
        {i for r in fake_api.ok_requests()[:committed_pages] for i in r.served}
    )

    result = run_api(*args)
    assert result.exit_code == 0, result.output
    assert set(landed(target)) == {message["id"] for message in served}
    # At most the page in flight at the kill was fetched twice.
    pages = [tuple(r.served) for r in fake_api.ok_requests()]
    assert len(pages) - len(set(pages)) <= 1
    read = 231 - sum(len(p) for p in pages[:committed_pages])
    assert summary(result).startswith(f"api: read {read} = ")


def test_load_api__wrong_key_is_a_clear_401_without_the_key(
    duck, fake_api, monkeypatch
):
    monkeypatch.setenv("CIO_APP_API_KEY", "wrong-key-0000-secret")
    result = run_api("--since", "2024-06-01", "--until", "2024-07-01")
    assert result.exit_code == 4
    assert "refused the key (HTTP 401)" in result.stderr
    assert "CIO_APP_API_KEY" in result.stderr
    assert "--region" in result.stderr
    assert "wrong-key-0000-secret" not in result.output
    assert API_KEY not in result.output
    assert len(fake_api.requests) == 1  # a 401 is not retried


def test_load_api__an_answer_quoting_the_key_back_is_printed_without_it(duck, fake_api):
    fake_api.faults = {1: "400-echo"}
    result = run_api("--since", "2024-06-01", "--until", "2024-07-01")
    assert result.exit_code == 4
    assert "GET /v1/messages answered HTTP 400" in result.stderr
    assert "Bearer <CIO_APP_API_KEY>" in result.stderr  # the answer is still quoted
    assert API_KEY not in result.output


def test_load_api__an_answer_quoting_the_key_in_capitals_is_printed_without_it(
    duck, fake_api
):
    """Only the key as it is was replaced: a gateway that upper-cased it leaked it."""
    fake_api.faults = {1: "400-echo-upper"}
    result = run_api("--since", "2024-06-01", "--until", "2024-07-01")
    assert result.exit_code == 4
    assert "BEARER <CIO_APP_API_KEY>" in result.stderr
    assert API_KEY.upper() not in result.output


def test_load_api__a_redirect_loop_is_one_line_not_a_traceback(duck, fake_api):
    fake_api.faults = {1: "redirect-loop"}
    result = run_api("--since", "2024-06-01", "--until", "2024-07-01")
    assert result.exit_code == 4
    assert "error: GET /v1/messages failed: TooManyRedirects: Exceeded" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_load_api__json_nested_too_deeply_is_a_clear_error_not_a_traceback(
    duck, fake_api
):
    fake_api.faults = {1: "deep"}
    result = run_api("--since", "2024-06-01", "--until", "2024-07-01")
    assert result.exit_code == 4
    assert result.stderr.strip().splitlines()[-1] == (
        "error: GET /v1/messages answered 200 with JSON nested too deeply to read. "
        "Committed pages are kept; rerun to resume."
    )
    assert "Traceback" not in result.output


def test_load_api__missing_key_is_refused_before_any_request(
    duck, fake_api, monkeypatch
):
    monkeypatch.delenv("CIO_APP_API_KEY")
    result = run_api("--since", "2024-06-01")
    assert result.exit_code == 2
    assert "CIO_APP_API_KEY is not set" in result.stderr
    assert fake_api.requests == []


@pytest.mark.parametrize("pasted", ["\n", "\r\n", " ", "\x7f", "\u201d"])
def test_load_api__a_key_with_a_stray_character_is_refused_without_it(
    duck, fake_api, monkeypatch, pasted
):
    """A key pasted with a line break went into the header and the HTTP library's
    exception printed it whole, in a traceback."""
    monkeypatch.setenv("CIO_APP_API_KEY", f"SEKRET_part1{pasted}SEKRET_part2")
    result = run_api("--since", "2024-06-01")
    assert result.exit_code == 2
    assert "CIO_APP_API_KEY holds a character no key has, at position 13" in (
        result.stderr
    )
    assert "SEKRET" not in result.output
    assert "Traceback" not in result.output
    assert fake_api.requests == []


def test_load_api__malformed_messages_are_rejected_with_reasons(duck, fake_api):
    cases = json.loads((FIXTURES / "malformed_messages.json").read_text())
    fake_api.extra_first_page = [item["message"] for item in cases]
    result = run_api("--since", "2024-01-01", "--until", "2025-03-01")
    assert result.exit_code == 3  # 9 of 240 is over the default 1 %
    assert summary(result).startswith(
        "api: read 240 = loaded 230 + duplicate 1 + rejected 9"
    )
    assert "rejected (> 1.0%)" in result.stderr
    with connect("dev") as wh:
        rejects = wh.query(
            "select reason, detail, source_line, raw_text, source_file "
            "from raw_loader.rejects where loader = 'api' order by source_line"
        )
    assert [row[:2] for row in rejects] == [check_message(i["message"]) for i in cases]
    assert rejects[0][3] == "just a string"
    assert rejects[0][4].startswith("customerio-app-api:/v1/messages?type=*&window=")

    tolerant = run_api(
        "--since",
        "2024-01-01",
        "--until",
        "2025-03-01",
        "--restart",
        "--max-reject-pct",
        "100",
    )
    assert tolerant.exit_code == 0


def test_load_api__type_filter_keeps_its_own_cursor(duck, fake_api, served):
    result = run_api("--since", "2024-01-01", "--until", "2025-03-01", "--type", "push")
    assert result.exit_code == 0, result.output
    pushes = {m["id"] for m in served if m["type"] == "push"}
    assert set(landed(duck)) == pushes
    assert all(r.params["type"] == "push" for r in fake_api.requests)
    with connect("dev") as wh:
        keys = wh.query("select cursor_key from raw_loader.api_cursors")
    assert keys == [("/v1/messages|region=us|type=push",)]


def test_load_api__help_has_examples():
    from scripts.cli import main

    result = CliRunner().invoke(main, ["load", "api", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "audiences load api --since 2024-01-01" in result.stdout
