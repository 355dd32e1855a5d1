"""What the receiver logs when a connection fails: one line, naming client and cause.

`ReceiverServer.handle_error` replaces socketserver's ~30-line traceback per failed
connection. test_operations.py proves the dropped-connection line end to end; here both
branches are pinned to the exact line, in-process, with a real server bound to 127.0.0.1.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingWriter
from scripts.receiver.server import ReceiverConfig, ReceiverServer, parse_event

CLIENT = ("192.0.2.7", 40123)


@pytest.fixture
def server(tmp_path: Path):
    lines: list[str] = []
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=60
    )
    config = ReceiverConfig(signing_key=b"k", path="/webhooks", max_body_bytes=1024)
    receiver = ReceiverServer(("127.0.0.1", 0), config, writer, log=lines.append)
    try:
        yield receiver, lines
    finally:
        receiver.server_close()
        writer.close()


@pytest.mark.parametrize("error", [ConnectionResetError, BrokenPipeError, TimeoutError])
def test_handle_error__a_dropped_connection_is_one_line(server, error):
    receiver, lines = server
    try:
        raise error("gone")
    except error:
        receiver.handle_error(None, CLIENT)
    assert lines == [
        f"client 192.0.2.7:40123 dropped the connection ({error.__name__})"
    ]


def test_handle_error__any_other_failure_names_type_message_and_where(server):
    receiver, lines = server
    try:
        {}["event_id"]
    except KeyError as raised:
        line = traceback.extract_tb(raised.__traceback__)[-1].lineno
        receiver.handle_error(None, CLIENT)
    assert lines == [
        "error: request from 192.0.2.7:40123 failed: KeyError: 'event_id' "
        f"at {Path(__file__).name}:{line}"
    ]


def test_handle_error__the_innermost_frame_is_named(server):
    receiver, lines = server

    def inner():
        raise ValueError("deep")

    try:
        inner()
    except ValueError as raised:
        frames = traceback.extract_tb(raised.__traceback__)
        receiver.handle_error(None, CLIENT)
    assert frames[-1].lineno != frames[0].lineno
    assert lines[0].endswith(f"at {Path(__file__).name}:{frames[-1].lineno}")


def test_handle_error__outside_an_exception_still_one_line(server):
    receiver, lines = server
    receiver.handle_error(None, ("::1", 8080, 0, 0))
    assert lines == ["error: request from ::1:8080 failed: NoneType: None"]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_parse_event__non_json_constants_are_refused(constant):
    assert parse_event(b'{"event_id":"a","x":' + constant + b"}") is None
