"""`serve-webhooks` as a real process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.receiver.conftest import (
    REPO_ROOT,
    SIGNING_KEY,
    WEBHOOK_PATH,
    post_signed,
    signed_headers,
)


def make_event(index: int, **extra: object) -> dict:
    return {
        "event_id": f"01J9ZK3M4Q8R2T6V0W{index:08d}",
        "object_type": "email",
        "metric": "opened",
        "timestamp": 1727712000 + index,
        "data": {"delivery_id": f"dlv-{index}", "identifiers": {"id": f"u_{index}"}},
        **extra,
    }


def body_of(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def test_serve_webhooks__good_signature_is_on_disk_before_the_200(make_receiver):
    receiver = make_receiver()
    body = b'{"event_id":"01A","object_type":"email", "metric":"sent","timestamp":1}'
    response = post_signed(None, receiver.url, body)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    # The line is in the open .part file already, byte for byte as received ...
    assert receiver.landed_lines(include_parts=True) == [body]
    assert receiver.finalized_files() == []
    # ... and was synced before the 200: the file read above could come from the page
    # cache, the sync log cannot (it is written when the real fsync call returns).
    (part,) = receiver.part_files()
    assert (len(body) + 1, part.name) in receiver.data_syncs()

    assert receiver.stop() == 0
    assert receiver.part_files() == []
    assert receiver.landed_lines() == [body]
    assert "rotated" in receiver.stderr


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {}, id="missing-both"),
        pytest.param(
            lambda body: {"X-CIO-Timestamp": signed_headers(body)["X-CIO-Timestamp"]},
            id="missing-signature",
        ),
        pytest.param(
            lambda body: {"X-CIO-Signature": signed_headers(body)["X-CIO-Signature"]},
            id="missing-timestamp",
        ),
        pytest.param(
            lambda body: signed_headers(body, key="other-key"), id="wrong-key"
        ),
        pytest.param(
            lambda body: signed_headers(b'{"event_id":"forged"}'), id="other-body"
        ),
        pytest.param(
            lambda body: {**signed_headers(body), "X-CIO-Signature": "zz-not-hex"},
            id="malformed",
        ),
        pytest.param(
            lambda body: {
                **signed_headers(body, ts="1700000000"),
                "X-CIO-Timestamp": "1700000001",
            },
            id="timestamp-swapped",
        ),
    ],
)
def test_serve_webhooks__bad_signatures_get_401_and_land_nothing(
    make_receiver, headers
):
    receiver = make_receiver()
    body = body_of(make_event(1))
    response = requests.post(receiver.url, data=body, headers=headers(body), timeout=10)
    assert response.status_code == 401
    assert requests.get(receiver.base_url + "/healthz", timeout=5).json()["events"] == 0
    assert receiver.stop() == 0
    assert receiver.landed_lines(include_parts=True) == []
    assert SIGNING_KEY not in receiver.stderr


def test_serve_webhooks__uppercase_hex_signature_is_accepted(make_receiver):
    receiver = make_receiver()
    body = body_of(make_event(2))
    headers = signed_headers(body)
    headers["X-CIO-Signature"] = headers["X-CIO-Signature"].upper()
    assert requests.post(receiver.url, data=body, headers=headers, timeout=10).ok


def test_serve_webhooks__replay_is_accepted_and_landed_twice_with_one_event_id(
    make_receiver,
):
    """Customer.io retries; the receiver keeps both copies and the loader dedupes."""
    receiver = make_receiver()
    body = body_of(make_event(3))
    headers = signed_headers(body)
    first = requests.post(receiver.url, data=body, headers=headers, timeout=10)
    replay = requests.post(receiver.url, data=body, headers=headers, timeout=10)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert receiver.stop() == 0
    lines = receiver.landed_lines()
    assert lines == [body, body]
    assert {json.loads(line)["event_id"] for line in lines} == {
        make_event(3)["event_id"]
    }


def test_serve_webhooks__replay_is_deduped_by_load_webhooks(make_receiver, duckdb_path):
    from click.testing import CliRunner

    from scripts.cli import main
    from scripts.warehouse import connect

    receiver = make_receiver()
    body = body_of(make_event(13))
    headers = signed_headers(body)
    for _ in range(2):
        assert requests.post(receiver.url, data=body, headers=headers, timeout=10).ok
    assert receiver.stop() == 0
    result = CliRunner().invoke(main, ["load", "webhooks", str(receiver.landing_dir)])
    assert result.exit_code == 0, result.output
    assert "read 2 = loaded 1 + duplicate 1 + rejected 0" in result.output
    with connect("dev") as wh:
        assert wh.query("select event_id from raw_customerio.webhook_events") == [
            (make_event(13)["event_id"],)
        ]


def test_serve_webhooks__max_skew_rejects_old_timestamps_when_asked(make_receiver):
    receiver = make_receiver("--max-skew", "300")
    body = body_of(make_event(4))
    stale = signed_headers(body, ts=str(int(time.time()) - 3600))
    assert (
        requests.post(receiver.url, data=body, headers=stale, timeout=10).status_code
        == 401
    )
    assert post_signed(None, receiver.url, body).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'[{"event_id":"a"}]', id="array"),
        pytest.param(b"not json at all", id="garbage"),
        pytest.param(b'{"event_id":"a","x":"\xff\xfe"}', id="non-utf8"),
        pytest.param(b'{"event_id":"a","x":NaN}', id="nan"),
        pytest.param(b'"just a string"', id="scalar"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"event_id":"a"', id="truncated"),
        pytest.param(b'{"a":1}{"b":2}', id="two-objects"),
    ],
)
def test_serve_webhooks__not_one_json_object_gets_400(make_receiver, body):
    receiver = make_receiver()
    response = post_signed(None, receiver.url, body)
    assert response.status_code == 400
    assert receiver.stop() == 0
    assert receiver.landed_lines(include_parts=True) == []


def test_serve_webhooks__oversized_body_gets_413_and_the_limit_itself_passes(
    make_receiver,
):
    receiver = make_receiver("--max-body-bytes", "2000")
    event = make_event(5, padding="")
    exact = body_of(event)
    event["padding"] = "x" * (2000 - len(exact))
    at_limit = body_of(event)
    assert len(at_limit) == 2000
    over = body_of({**event, "padding": event["padding"] + "y"})
    assert post_signed(None, receiver.url, over).status_code == 413
    assert post_signed(None, receiver.url, at_limit).status_code == 200
    # A lying Content-Length is refused before any byte is read.
    host, port = receiver.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {10**9}\r\n\r\n{{}}".encode()
        )
        reply = raw.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert receiver.stop() == 0
    assert receiver.landed_lines() == [at_limit]


def test_serve_webhooks__routes_methods_and_health(make_receiver):
    receiver = make_receiver()
    base = receiver.base_url
    assert requests.get(receiver.url, timeout=5).status_code == 405
    assert requests.get(receiver.url, timeout=5).headers["Allow"] == "POST"
    assert requests.put(receiver.url, data=b"{}", timeout=5).status_code == 405
    assert requests.post(base + "/other", data=b"{}", timeout=5).status_code == 404
    assert requests.get(base + "/other", timeout=5).status_code == 404
    assert requests.post(base + "/healthz", data=b"{}", timeout=5).status_code == 405
    assert post_signed(None, receiver.url + "?source=cio", body_of(make_event(6))).ok
    health = requests.get(base + "/healthz", timeout=5)
    assert health.status_code == 200
    status = health.json()
    assert status["status"] == "ok"
    assert status["events"] == 1
    assert status["bytes"] == len(body_of(make_event(6))) + 1
    assert status["files"] == 0
    # A clean stop (not the fixture's SIGKILL): the shutdown path is part of the contract,
    # and a mutation run records which code this receiver reached only when it exits.
    assert receiver.stop() == 0


def test_serve_webhooks__sighup_stops_it_as_sigterm_does(make_receiver):
    """Its terminal gone, the receiver finishes, rotates and exits 0 (before: killed,
    the event left in a .part file until the next start recovered it)."""
    receiver = make_receiver()
    event = make_event(8)
    assert post_signed(None, receiver.url, body_of(event)).status_code == 200
    assert receiver.stop(signal.SIGHUP) == 0
    assert "stopped: 1 events" in receiver.stderr
    assert receiver.part_files() == []
    assert [json.loads(line) for line in receiver.landed_lines()] == [event]


def test_serve_webhooks__body_with_newlines_lands_on_one_line(make_receiver):
    receiver = make_receiver()
    event = make_event(7, note="line one\nline two")
    pretty = json.dumps(event, indent=2).encode()
    assert b"\n" in pretty
    assert post_signed(None, receiver.url, pretty).status_code == 200
    assert receiver.stop() == 0
    (line,) = receiver.landed_lines()
    assert json.loads(line) == event


def test_serve_webhooks__rotates_by_age_without_further_traffic(make_receiver):
    receiver = make_receiver("--rotate-seconds", "0.2")
    body = body_of(make_event(8))
    assert post_signed(None, receiver.url, body).status_code == 200
    deadline = time.monotonic() + 10
    while not receiver.finalized_files() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert receiver.landed_lines() == [body]
    assert receiver.part_files() == []


def test_serve_webhooks__concurrent_load_lands_every_event_once_and_fast(
    make_receiver,
):
    threads, per_thread = 8, 200
    receiver = make_receiver("--rotate-bytes", "20000")
    seen_listings: list[list[str]] = []
    stop_watching = threading.Event()

    def watch_landing_dir() -> None:
        while not stop_watching.is_set():
            seen_listings.append(os.listdir(receiver.landing_dir))

    def worker(worker_index: int) -> list[float]:
        latencies = []
        with requests.Session() as session:
            for n in range(per_thread):
                body = body_of(make_event(worker_index * 10_000 + n))
                started = time.perf_counter()
                response = post_signed(session, receiver.url, body)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        return latencies

    watcher = threading.Thread(target=watch_landing_dir)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - started
    stop_watching.set()
    watcher.join()

    latencies = sorted(latency for batch in results for latency in batch)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    total = threads * per_thread
    print(f"\nreceiver: {total / elapsed:.0f} requests/s, p99 {p99 * 1000:.1f} ms")
    assert p99 < 1.0

    assert receiver.stop() == 0
    lines = receiver.landed_lines()
    ids = [json.loads(line)["event_id"] for line in lines]
    expected = {
        make_event(w * 10_000 + n)["event_id"]
        for w in range(threads)
        for n in range(per_thread)
    }
    assert len(ids) == total
    assert set(ids) == expected
    assert len(receiver.finalized_files()) > 1  # rotation happened under load
    assert receiver.part_files() == []
    assert all(
        not name.endswith(".part") for listing in seen_listings for name in listing
    )


def test_serve_webhooks__kill_9_right_after_a_200_keeps_the_event(make_receiver):
    receiver = make_receiver()
    body = body_of(make_event(9))
    assert post_signed(None, receiver.url, body).status_code == 200
    # Synced before the 200 (what makes the line survive power loss, not only kill -9).
    synced = receiver.data_syncs()
    receiver.kill()

    # On disk without any help from the dead process: the open .part holds the line.
    assert receiver.landed_lines(include_parts=True) == [body]
    (part,) = receiver.part_files()
    assert (len(body) + 1, part.name) in synced

    restarted = make_receiver()
    assert "recovery: finalized" in restarted.stderr
    assert restarted.part_files() == []
    assert restarted.landed_lines() == [body]
    assert restarted.stop() == 0


def test_serve_webhooks__recovery_cuts_a_torn_last_line(make_receiver, tmp_path):
    landing = tmp_path / "landing"
    (landing / ".incoming").mkdir(parents=True)
    good = body_of(make_event(10))
    torn_part = landing / ".incoming" / "webhooks-20240101T000000-1-000001.ndjson.part"
    torn_part.write_bytes(good + b"\n" + b'{"event_id":"01TORN","obj')
    (
        landing / ".incoming" / "webhooks-20240101T000000-1-000002.ndjson.part"
    ).write_bytes(b'{"half')
    receiver = make_receiver(landing_dir=landing)
    assert receiver.part_files() == []
    assert receiver.landed_lines() == [good]
    assert "cut a torn last line" in receiver.stderr


def test_serve_webhooks__sigterm_finishes_in_flight_requests(make_receiver):
    receiver = make_receiver()
    accepted: list[bytes] = []
    errors: list[str] = []

    def sender(worker_index: int) -> None:
        with requests.Session() as session:
            for n in range(400):
                body = body_of(make_event(worker_index * 10_000 + n))
                try:
                    response = post_signed(session, receiver.url, body)
                except requests.RequestException as exc:
                    errors.append(type(exc).__name__)
                    return
                if response.status_code == 200:
                    accepted.append(body)
                if response.headers.get("Connection") == "close":
                    return

    workers = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 20
    while len(accepted) < 100 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert receiver.stop(signal.SIGTERM) == 0
    for worker in workers:
        worker.join(timeout=20)
    assert "stopped:" in receiver.stderr
    assert receiver.part_files() == []
    # Every acknowledged event is in a finalized file; nothing unacknowledged sneaks in.
    assert sorted(receiver.landed_lines()) == sorted(accepted)


def test_serve_webhooks__refuses_to_start_without_a_key(tmp_path, receiver_env):
    env = {k: v for k, v in receiver_env.items() if k != "CIO_WEBHOOK_SIGNING_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "scripts.receiver", "--landing-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "CIO_WEBHOOK_SIGNING_KEY is not set" in result.stderr
    assert "--insecure-no-signature" in result.stderr


def test_serve_webhooks__insecure_mode_accepts_unsigned_requests(
    make_receiver, receiver_env
):
    env = {k: v for k, v in receiver_env.items() if k != "CIO_WEBHOOK_SIGNING_KEY"}
    receiver = make_receiver("--insecure-no-signature", env=env)
    assert "NOT verified" in receiver.stderr
    body = body_of(make_event(11))
    assert requests.post(receiver.url, data=body, timeout=10).status_code == 200


def test_serve_webhooks__help_has_examples():
    result = subprocess.run(
        [sys.executable, "-m", "scripts.receiver", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "Examples:" in result.stdout
    assert "audiences serve-webhooks --landing-dir" in result.stdout
    assert WEBHOOK_PATH in result.stdout


def test_serve_webhooks__is_registered_in_the_audiences_cli():
    from click.testing import CliRunner

    from scripts.cli import main

    result = CliRunner().invoke(main, ["serve-webhooks", "--help"])
    assert result.exit_code == 0
    assert "--landing-dir" in result.stdout


def test_landing_dir_contains_only_finished_files(make_receiver):
    """What `load webhooks DIR` lists: finished files only; work lives in .incoming/."""
    receiver = make_receiver()
    assert post_signed(None, receiver.url, body_of(make_event(12))).ok
    assert [p.name for p in Path(receiver.landing_dir).iterdir()] == [".incoming"]
