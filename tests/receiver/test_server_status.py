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
