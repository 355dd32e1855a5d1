"""Every answer of the webhook handler, in-process: a real `ReceiverServer` and
`LandingWriter` on 127.0.0.1 in this process, spoken to over raw HTTP/1.1 sockets.

test_receiver.py and test_routes.py prove the same answers through the real
`serve-webhooks` process (about a second per test to start it); here each check of the
POST path (route, Content-Length, signature, JSON, storage) is pinned to its exact status,
body and headers in milliseconds, so `make mutate` can judge scripts/receiver/server.py
by this file (scripts/mutation/areas.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingWriter
from scripts.receiver.server import ReceiverConfig, ReceiverServer
from scripts.receiver.signature import sign
from tests.receiver.raw_http import read_response

PATH = "/webhooks/customerio"
KEY = b"in-process-key"
BODY = b'{"event_id":"01INPROC","metric":"sent"}'


class Served:
    def __init__(self, server: ReceiverServer, lines: list[str]):
        self.server = server
        self.log = lines

    @property
    def writer(self) -> LandingWriter:
        return self.server.writer

    def connect(self) -> socket.socket:
        return socket.create_connection(self.server.server_address[:2], timeout=10)

    def landed(self) -> list[bytes]:
        return [
            line
            for path in sorted(self.writer.landing_dir.rglob("*.ndjson*"))
            for line in path.read_bytes().splitlines()
        ]


def _serve(tmp_path: Path, **config: object) -> Iterator[Served]:
    lines: list[str] = []
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )
    settings: dict = {"signing_key": KEY, "path": PATH, "max_body_bytes": 100}
    settings.update(config)
    server = ReceiverServer(
        ("127.0.0.1", 0), ReceiverConfig(**settings), writer, log=lines.append
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.start()
    try:
        yield Served(server, lines)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        writer.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path)


def request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    return head.encode() + b"\r\n" + body


def signed(body: bytes, timestamp: str | None = None, key: bytes = KEY) -> dict:
    timestamp = timestamp or str(int(time.time()))
    return {"X-CIO-Timestamp": timestamp, "X-CIO-Signature": sign(key, timestamp, body)}


def closed_by_server(client: socket.socket) -> bool:
    """True when the server closed its side (the next read returns EOF)."""
    client.settimeout(5)
    try:
        return client.recv(1) == b""
    except ConnectionResetError:
        return True


def exchange(
    served: Served, raw: bytes
) -> tuple[int, dict[str, str], dict, socket.socket]:
    client = served.connect()
    client.sendall(raw)
    status, headers, body = read_response(client)
    return status, headers, json.loads(body), client


# ------------------------------------------------------------------ accepted
def test_post__a_signed_object_lands_as_received_and_keeps_the_connection(
    served: Served,
):
    status, headers, body, client = exchange(
        served, request("POST", PATH, BODY, signed(BODY))
    )

    assert (status, body) == (200, {"status": "accepted"})
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(b'{"status":"accepted"}'))
    assert headers["server"] == "audiences-serve-webhooks"
    assert "connection" not in headers  # keep-alive: Customer.io reuses connections
    assert served.landed() == [BODY]
    # the same connection serves a second request
    other = b'{"event_id":"02"}'
    client.sendall(request("POST", PATH + "?x=1", other, signed(other)))
    assert read_response(client)[0] == 200
    client.close()
    assert served.landed() == [BODY, other]
    assert served.writer.status()["events"] == 2


def test_post__a_body_with_a_raw_newline_lands_on_one_line(served: Served):
    body = b'{"event_id":"03",\n "metric":"\xc3\xa9"}'

    status, _, _, client = exchange(served, request("POST", PATH, body, signed(body)))
    client.close()

    assert status == 200
    assert served.landed() == ['{"event_id":"03",  "metric":"é"}'.encode()]


def test_post__exactly_the_size_limit_passes_one_byte_more_is_413(served: Served):
    at_limit = b'{"a":"' + b"x" * 92 + b'"}'
    assert len(at_limit) == 100
    status, _, _, client = exchange(
        served, request("POST", PATH, at_limit, signed(at_limit))
    )
    client.close()
    assert status == 200

    over = b'{"a":"' + b"x" * 93 + b'"}'
    status, headers, body, client = exchange(
        served, request("POST", PATH, over, signed(over))
    )
    assert (status, body) == (413, {"error": "body too large"})
    assert headers["connection"] == "close"
    assert closed_by_server(client)
    assert served.landed() == [at_limit]


# ------------------------------------------------------------------ refused
@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 411, "Content-Length required"),
        # RFC 9112, section 6.3: an invalid Content-Length is a 400. int() would have
        # read "+2" and "2_0"; two of them could frame the next request differently
        # in a proxy in front.
        ({"Content-Length": "ten"}, 400, "bad Content-Length"),
        ({"Content-Length": "+2"}, 400, "bad Content-Length"),
        ({"Content-Length": "2_0"}, 400, "bad Content-Length"),
        ({"Content-Length": "٢"}, 400, "bad Content-Length"),
    ],
    ids=["missing", "not-a-number", "plus-sign", "underscore", "arabic-digit"],
)
def test_post__without_a_usable_length_is_refused(
    served: Served, headers, status, error
):
    code, reply_headers, body, client = exchange(
        served, request("POST", PATH, b"", headers, length=False)
    )

    assert (code, body) == (status, {"error": error})
    assert reply_headers["connection"] == "close"
    assert closed_by_server(client)


def test_post__two_content_lengths_are_400(served: Served):
    body = b'{"a":1}'
    twice = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Content-Length: {len(body) + 5}\r\n\r\n"
    ).encode() + body
    status, _headers, reply, client = exchange(served, twice)
    assert (status, reply) == (400, {"error": "bad Content-Length"})
    assert closed_by_server(client)
    assert served.landed() == []


def test_post__chunked_is_411_and_a_negative_length_400(served: Served):
    chunked = request(
        "POST",
        PATH,
        b"5\r\nhello\r\n0\r\n\r\n",
        {"Transfer-Encoding": "chunked"},
        length=False,
    )
    status, headers, body, client = exchange(served, chunked)
    assert (status, body) == (411, {"error": "send a Content-Length body"})
    assert headers["connection"] == "close"
    client.close()

    negative = request("POST", PATH, b"", {"Content-Length": "-1"}, length=False)
    status, headers, body, client = exchange(served, negative)
    assert (status, body) == (400, {"error": "bad Content-Length"})
    assert headers["connection"] == "close"
    client.close()
    assert served.landed() == []


def test_post__a_body_cut_short_gets_no_answer_and_lands_nothing(served: Served):
    client = served.connect()
    client.sendall(request("POST", PATH, BODY, signed(BODY))[:-5])
    client.shutdown(socket.SHUT_WR)

    assert closed_by_server(client)
    assert served.landed() == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed(BODY, key=b"other-key"),
        {**signed(BODY), "X-CIO-Signature": ""},
        signed(b'{"event_id":"other"}'),
        {"X-CIO-Timestamp": str(int(time.time()))},
        {"X-CIO-Signature": signed(BODY)["X-CIO-Signature"]},
    ],
    ids=[
        "unsigned",
        "wrong-key",
        "blank",
        "other-body",
        "no-signature",
        "no-timestamp",
    ],
)
def test_post__a_bad_signature_is_401_and_keeps_the_connection(served: Served, headers):
    status, reply_headers, body, client = exchange(
        served, request("POST", PATH, BODY, headers)
    )

    assert (status, body) == (401, {"error": "missing or invalid signature"})
    assert "connection" not in reply_headers
    client.sendall(request("POST", PATH, BODY, signed(BODY)))
    assert read_response(client)[0] == 200
    client.close()
    assert served.landed() == [BODY]


def test_post__max_skew_applies_when_configured(tmp_path: Path):
    old = str(int(time.time()) - 120)
    for served in _serve(tmp_path, max_skew_seconds=60.0):
        status, _, _, client = exchange(
            served, request("POST", PATH, BODY, signed(BODY, old))
        )
        client.close()
        assert status == 401
    for served in _serve(tmp_path / "wide", max_skew_seconds=600.0):
        status, _, _, client = exchange(
            served, request("POST", PATH, BODY, signed(BODY, old))
        )
        client.close()
        assert status == 200


def test_post__unsigned_accepted_when_no_key_is_configured(tmp_path: Path):
    for served in _serve(tmp_path, signing_key=None):
        status, _, _, client = exchange(served, request("POST", PATH, BODY))
        client.close()
        assert status == 200
        assert served.landed() == [BODY]


@pytest.mark.parametrize("body", [b"[1]", b"nope", b'{"a":NaN}', b"\xff{}", b""])
def test_post__not_one_json_object_is_400(served: Served, body: bytes):
    status, headers, reply, client = exchange(
        served, request("POST", PATH, body, signed(body))
    )
    client.close()

    assert (status, reply) == (400, {"error": "body is not one JSON object"})
    assert "connection" not in headers
    assert served.landed() == []


def test_post__a_closed_writer_is_503_logged_and_closed(served: Served):
    served.writer.close()

    status, headers, body, client = exchange(
        served, request("POST", PATH, BODY, signed(BODY))
    )

    assert (status, body) == (503, {"error": "could not store the event"})
    assert headers["connection"] == "close"
    assert closed_by_server(client)
    assert served.log == ["error: the landing writer is closed"]


# ------------------------------------------------------------------ routes, health
@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", PATH, 405, "POST"),
        ("HEAD", PATH, 405, "POST"),
        ("PUT", PATH, 405, "POST"),
        ("POST", "/healthz", 405, "GET, HEAD"),
        ("DELETE", "/healthz?x", 405, "GET, HEAD"),
        ("GET", "/other", 404, None),
        ("POST", "/other", 404, None),
        ("PATCH", "/other", 404, None),
        ("OPTIONS", "/", 404, None),
    ],
)
def test_routes__wrong_method_or_path(served: Served, method, path, status, allow):
    client = served.connect()
    client.sendall(request(method, path, b"{}"))
    code, headers, body = read_response(client)

    assert code == status
    if method != "HEAD":
        expected = {"error": "method not allowed" if status == 405 else "not found"}
        assert json.loads(body) == expected
    assert headers.get("allow") == allow
    assert headers["connection"] == "close"
    assert closed_by_server(client)


def test_healthz__the_status_body(served: Served):
    status, headers, body, client = exchange(served, request("GET", "/healthz?probe=1"))
    client.close()

    assert status == 200
    assert body.pop("uptime_seconds") >= 0
    assert body == {
        "status": "ok",
        "files": 0,
        "bytes": 0,
        "events": 0,
        "current_file_bytes": 0,
        "refused": {},
    }
    assert "connection" not in headers


# ------------------------------------------------------------------ draining
def test_draining__answers_close_their_connection(served: Served):
    served.server.draining = True

    status, headers, body, client = exchange(served, request("GET", "/healthz"))

    assert (status, body["status"]) == (200, "draining")
    assert headers["connection"] == "close"
    assert closed_by_server(client)


def test_drain__closes_idle_keep_alive_connections_and_waits_for_none(served: Served):
    client = served.connect()
    client.sendall(request("POST", PATH, BODY, signed(BODY)))
    assert read_response(client)[0] == 200  # now idle on a kept-alive connection
    served.server.shutdown()

    assert served.server.drain(timeout=5.0) is True

    assert closed_by_server(client)
    assert served.server.draining is True


def test_drain__closes_a_connection_that_never_sent_a_request(served: Served):
    client = served.connect()
    deadline = time.monotonic() + 5
    while not served.server._connections:  # accepted and set up by its thread
        assert time.monotonic() < deadline, "the connection was never set up"
        time.sleep(0.01)
    served.server.shutdown()

    started = time.monotonic()
    assert served.server.drain(timeout=5.0) is True
    assert time.monotonic() - started < 2  # idle, not waited for as busy
    assert closed_by_server(client)


def test_drain__gives_up_at_the_timeout_on_a_busy_connection(served: Served):
    client = served.connect()
    client.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\n")  # mid-request: busy
    deadline = time.monotonic() + 5
    while not any(served.server._connections.values()):
        assert time.monotonic() < deadline, "the request line was never read"
        time.sleep(0.01)

    started = time.monotonic()
    assert served.server.drain(timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 2
    client.close()


def test_idle_connections_time_out(tmp_path: Path):
    for served in _serve(tmp_path, idle_timeout_seconds=0.2):
        client = served.connect()
        started = time.monotonic()
        assert closed_by_server(client)
        assert time.monotonic() - started < 3
