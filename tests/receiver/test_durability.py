"""The 200 waits for the sync system call, and a failed sync never gets a 200.

Reading the landing file back cannot prove durability: the page cache holds the bytes
whether or not they were synced. So `os.fdatasync`/`os.fsync` are replaced here, in a
receiver running in this process, by a gate that records each call and holds it until the
test has looked at the client socket, or by one that fails as a dying disk would.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingWriter
from scripts.receiver.server import ReceiverConfig, ReceiverServer
from tests.receiver.raw_http import read_response

WEBHOOK_PATH = "/webhooks/customerio"
BODY = b'{"event_id":"01DURABLE","object_type":"email","metric":"sent"}'


@pytest.fixture
def in_process_receiver(tmp_path: Path) -> Iterator[ReceiverServer]:
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )
    config = ReceiverConfig(signing_key=None, path=WEBHOOK_PATH, max_body_bytes=1 << 16)
    server = ReceiverServer(("127.0.0.1", 0), config, writer)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
    writer.close()


def _is_landing_file(fd: int) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}").endswith(".part")


def _replace_syncs(monkeypatch, make: Callable) -> None:
    """Route both sync calls through `make(real)`; directory syncs pass untouched."""
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name, None)
        if real is not None:
            monkeypatch.setattr(os, name, make(name, real))


def _send(
    server: ReceiverServer, body: bytes, path: str = WEBHOOK_PATH
) -> socket.socket:
    client = socket.create_connection(server.server_address[:2], timeout=10)
    client.sendall(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return client


def test_append__no_200_before_the_landing_file_is_synced(
    monkeypatch, in_process_receiver
):
    calls: list[tuple[str, int, bytes]] = []
    entered, release = threading.Event(), threading.Event()

    def make(name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def gate(fd: int) -> None:
            if _is_landing_file(fd):
                path = os.readlink(f"/proc/self/fd/{fd}")
                calls.append((name, os.fstat(fd).st_size, Path(path).read_bytes()))
                entered.set()
                assert release.wait(10), "test never released the sync"
            real(fd)

        return gate

    _replace_syncs(monkeypatch, make)
    with _send(in_process_receiver, BODY) as client:
        assert entered.wait(10), "the receiver never synced the landing file"
        # The sync is in progress: the client must not have a single byte of answer yet.
        readable, _, _ = select.select([client], [], [], 0)
        assert readable == [], "the receiver answered before its sync returned"
        release.set()
        status, _, _ = read_response(client)
    assert status == 200
    # One sync of the landing file, holding the whole line when it was called.
    assert [(size, data) for _name, size, data in calls] == [
        (len(BODY) + 1, BODY + b"\n")
    ]


@pytest.mark.parametrize("failure", [errno.EIO, errno.ENOSPC], ids=["EIO", "ENOSPC"])
def test_append__a_failed_sync_gets_503_and_leaves_no_line(
    monkeypatch, in_process_receiver, failure
):
    def make(name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def failing(fd: int) -> None:
            if _is_landing_file(fd):
                raise OSError(failure, os.strerror(failure))
            real(fd)

        return failing

    _replace_syncs(monkeypatch, make)
    with _send(in_process_receiver, BODY) as client:
        status, _, body = read_response(client)
    assert status == 503
    assert json.loads(body) == {"error": "could not store the event"}
    writer = in_process_receiver.writer
    assert writer.status()["events"] == 0
    # The unacknowledged line was cut from the file it was written to.
    landed = [
        path.read_bytes()
        for path in writer.landing_dir.rglob("*.ndjson*")
        if path.is_file()
    ]
    assert all(BODY not in data for data in landed)
    # /healthz says so, with the system's reason.
    code, health = in_process_receiver.status()
    assert code == 503
    assert errno.errorcode[failure] in str(health["reason"])
