"""/healthz's body from `ReceiverServer.status()`, in-process: ok, draining, unhealthy.

test_operations.py drives the unhealthy case end to end (a real receiver whose file-size
limit is lowered); here each state's exact code and body is pinned, with a real
LandingWriter in a temporary directory.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingWriter
from scripts.receiver.server import ReceiverConfig, ReceiverServer


@pytest.fixture
def server(tmp_path: Path):
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=60
    )
    config = ReceiverConfig(signing_key=b"k", path="/webhooks", max_body_bytes=1024)
    receiver = ReceiverServer(("127.0.0.1", 0), config, writer)
    try:
        yield receiver
    finally:
        receiver.server_close()
        writer.close()


def test_status__ok_with_the_writer_counters(server):
    server.writer.append(b'{"event_id":"a"}')
    code, body = server.status()
    assert code == 200
    assert body.pop("uptime_seconds") >= 0
    assert body == {
        "status": "ok", "files": 0, "bytes": 17, "events": 1, "current_file_bytes": 17,
        "refused": {},
    }  # fmt: skip


def test_status__draining_is_still_200(server):
    server.draining = True
    code, body = server.status()
    assert (code, body["status"]) == (200, "draining")
    assert "reason" not in body


def test_status__unhealthy_is_503_with_the_reason_even_while_draining(server):
    # A full disk, as test_operations.py makes one: every write fails with EFBIG.
    server.draining = True
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, limit[1]))
    try:
        code, body = server.status()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert code == 503
    assert body["status"] == "unhealthy"
    assert "EFBIG" in body["reason"]
    assert body["events"] == 0


def test_status__uptime_is_seconds_since_start_to_a_tenth(server):
    server.started_at = time.monotonic() - 12.34
    _, body = server.status()
    assert 12.3 <= body["uptime_seconds"] <= 13.0
    assert body["uptime_seconds"] == round(body["uptime_seconds"], 1)


def test_refused_requests__summed_up_in_one_line_and_counted_in_the_status(server):
    """No access log is kept, so a wrong signing key (every request 401) went unseen
    while Customer.io held its backlog back: refusals are one summary line per minute
    (the ticker calls say_refused) and a count in /healthz since the start."""
    lines: list[str] = []
    server.log = lines.append
    for status in (401, 401, 401, 400):
        server.count_refused(status)

    server.say_refused()
    server.say_refused()  # nothing refused since: no line

    assert lines == [
        "refused 4 request(s) since the last line: 400 x1 (not one JSON object, or a "
        "bad Content-Length), 401 x3 (missing or invalid signature: is the signing key "
        "the webhook's?)"
    ]
    code, body = server.status()
    assert (code, body["refused"]) == (200, {"400": 1, "401": 3})
