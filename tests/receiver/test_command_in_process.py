"""`serve-webhooks` run in this process (click's runner, the test's main thread, so its
SIGTERM handler is installed for real): the start-up refusals, the log lines, age-based
rotation by the ticker, and a SIGTERM that drains, rotates and exits 0.

test_receiver.py and test_operations.py run the same command as a subprocess (a second
or more each); this file judges scripts/receiver/command.py for `make mutate` in a few
seconds (scripts/mutation/areas.py)."""

from __future__ import annotations

import calendar
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scripts import stop_signals
from scripts.receiver import command
from scripts.receiver.command import KEY_ENV, serve_webhooks
from scripts.receiver.landing import LOCK_NAME, LandingWriter
from scripts.receiver.signature import sign
from tests.receiver.test_landing_partial_write import file_size_limit

KEY = "command-key"
PATH = "/webhooks/customerio"
BODY = b'{"event_id":"01CMD","metric":"sent"}'
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ serve-webhooks: "


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    """The command installs its stop handlers in this (pytest's) process."""
    saved = {sig: signal.getsignal(sig) for sig in stop_signals.SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(raw)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, body = data.split(b"\r\n\r\n", 1)
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                if len(body) >= length:
                    return int(head.split()[1]), body
    raise AssertionError("no complete answer")


def post(
    port: int, body: bytes, *, key: str | None = KEY, timestamp: str | None = None
) -> int:
    timestamp = timestamp or str(int(time.time()))
    headers = f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    if key is not None:
        headers += f"X-CIO-Timestamp: {timestamp}\r\n"
        headers += f"X-CIO-Signature: {sign(key.encode(), timestamp, body)}\r\n"
    return http(
        port, f"POST {PATH} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode() + body
    )[0]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def healthy(port: int) -> bool:
    try:
        return (
            http(
                port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )[0]
            == 200
        )
    except OSError:
        return False


def run(
    args: list[str],
    *,
    key: str | None = KEY,
    during: Callable[[int], None] | None = None,
) -> Result:
    """Invoke the command; once /healthz answers, `during(port)` runs on a thread and
    a SIGTERM to this process follows it."""
    port = free_port()
    errors: list[BaseException] = []

    def drive() -> None:
        listening = False
        try:
            wait_until(lambda: healthy(port), "the receiver to listen")
            listening = True  # its SIGTERM handler is installed: signalling is safe
            if during is not None:
                during(port)
        except BaseException as exc:  # reported by the test, not lost on the thread
            errors.append(exc)
        finally:
            if listening:
                os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    result = CliRunner().invoke(
        serve_webhooks, [*args, "--port", str(port)], env={KEY_ENV: key or ""}
    )
    driver.join(30)
    if errors:
        raise errors[0]
    result.port = port  # type: ignore[attr-defined]
    return result


def log_lines(result: Result) -> list[str]:
    lines = result.stderr.splitlines()
    for line in lines:
        assert re.match(STAMP, line), line
    return [re.sub(STAMP, "", line) for line in lines]


def test_serve__lands_rotates_by_age_and_stops_on_sigterm(tmp_path: Path):
    landing = tmp_path / "landing"
    seen: dict[str, object] = {}

    def during(port: int) -> None:
        seen["accepted"] = post(port, BODY)
        seen["old"] = post(port, BODY, timestamp=str(int(time.time()) - 600))
        # the ticker finalises the file once it is 0.2 s old, without further traffic
        wait_until(lambda: list(landing.glob("*.ndjson")), "age-based rotation")

    result = run(
        ["--landing-dir", str(landing), "--rotate-seconds", "0.2", "--max-skew", "60"],
        during=during,
    )

    assert result.exit_code == 0, result.output
    assert (seen["accepted"], seen["old"]) == (200, 401)
    (landed,) = landing.glob("*.ndjson")
    assert landed.read_bytes() == BODY + b"\n"
    lines = log_lines(result)
    assert lines[0] == (
        f"listening on http://127.0.0.1:{result.port}{PATH} (landing {landing}, "
        "health /healthz)"
    )
    # The ticker's line may follow the SIGTERM's: the file was renamed before it logged.
    assert sorted(lines[1:3]) == [
        f"rotated {landed.name} ({len(BODY) + 1} bytes, 1 events)",
        "stopping: no new connections, finishing in-flight requests",
    ]
    # The old timestamp's 401 is summed up once the requests are done (no access log):
    # a wrong key's every-request 401 shows in the log, not only at Customer.io.
    assert lines[3:] == [
        "refused 1 request(s) since the last line: 401 x1 (missing or invalid "
        "signature: is the signing key the webhook's?)",
        f"stopped: 1 events, {len(BODY) + 1} bytes, 1 files",
    ]
    # Only the lock file stays (never removed: another receiver may be opening it).
    assert [p.name for p in (landing / ".incoming").iterdir()] == [LOCK_NAME]


def test_serve__sigterm_rotates_the_open_file_and_recovers_at_start(tmp_path: Path):
    landing = tmp_path / "landing"
    (landing / ".incoming").mkdir(parents=True)
    (landing / ".incoming" / "old.ndjson.part").write_bytes(b'{"a":1}\n{"torn')

    result = run(
        ["--landing-dir", str(landing), "--path", "/hook"], during=lambda port: None
    )

    assert result.exit_code == 0, result.output
    lines = log_lines(result)
    assert lines[:2] == [
        "recovery: cut a torn last line of 6 bytes from old.ndjson.part",
        "recovery: finalized old.ndjson (8 bytes)",
    ]
    assert lines[2].startswith(f"listening on http://127.0.0.1:{result.port}/hook ")
    assert lines[-1] == "stopped: 0 events, 0 bytes, 0 files"
    assert (landing / "old.ndjson").read_bytes() == b'{"a":1}\n'


def test_serve__insecure_mode_warns_and_accepts_unsigned(tmp_path: Path):
    codes: list[int] = []
    result = run(
        [
            "--landing-dir",
            str(tmp_path / "l"),
            "--insecure-no-signature",
            "--rotate-bytes",
            "1",
        ],
        key=None,
        during=lambda port: codes.append(post(port, BODY, key=None)),
    )

    assert result.exit_code == 0, result.output
    assert codes == [200]
    lines = log_lines(result)
    assert lines[0] == "WARNING: signatures are NOT verified (--insecure-no-signature)"
    assert lines[-1] == f"stopped: 1 events, {len(BODY) + 1} bytes, 1 files"


# ------------------------------------------------------------------ refusals
def refused(args: list[str], key: str | None = KEY) -> str:
    result = CliRunner().invoke(serve_webhooks, args, env={KEY_ENV: key or ""})
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.strip()


def test_refuses__without_a_key(tmp_path: Path):
    assert refused(["--landing-dir", str(tmp_path)], key=None) == (
        f"error: {KEY_ENV} is not set: the receiver verifies every request's "
        "X-CIO-Signature with it. Copy the signing key from Customer.io's "
        "reporting-webhook page, or pass --insecure-no-signature for a local demo."
    )
    assert not (tmp_path / ".incoming").exists()


@pytest.mark.parametrize("path", ["webhooks", "/healthz", "/hooks?token=1", "/a#b"])
def test_refuses__a_relative_or_health_path(tmp_path: Path, path: str):
    """A path holding "?" or "#" could never match a request (its query string is not
    part of the path it is routed by)."""
    assert refused(["--landing-dir", str(tmp_path), "--path", path]) == (
        "error: --path must start with /, differ from /healthz and hold no ? or #"
    )


@pytest.mark.parametrize(
    "option",
    [
        ["--port", "70000"],
        ["--port", "-1"],
        ["--rotate-seconds", "nan"],
        ["--max-skew", "nan"],
        ["--max-skew", "inf"],
    ],
)
def test_refuses__an_option_value_out_of_range_in_one_line(tmp_path: Path, option):
    """--port 70000 was an OverflowError traceback; --max-skew nan made every request
    401 and --rotate-seconds nan rotated every second."""
    result = CliRunner().invoke(
        serve_webhooks,
        ["--landing-dir", str(tmp_path), *option],
        env={KEY_ENV: "k"},
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert option[0] in result.output
    assert not (tmp_path / ".incoming").exists()


def test_refuses__a_landing_dir_under_a_file(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    landing = tmp_path / "a-file" / "landing"

    assert refused(["--landing-dir", str(landing)]) == (
        f"error: --landing-dir {landing}: cannot prepare it: ENOTDIR Not a directory"
    )


def test_refuses__a_landing_dir_that_cannot_be_written(tmp_path: Path):
    landing = tmp_path / "landing"
    (landing / ".incoming").mkdir(parents=True)
    (landing / ".incoming" / "old.ndjson.part").write_bytes(b'{"a":1}\n')
    with file_size_limit(0):
        message = refused(["--landing-dir", str(landing)])

    assert message == (
        f"error: --landing-dir {landing}: cannot write to the landing directory: "
        "EFBIG File too large"
    )
    # no recovery either: the part file is left for a receiver that can write
    assert (landing / ".incoming" / "old.ndjson.part").exists()


def test_refuses__a_port_in_use(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = refused(["--landing-dir", str(tmp_path), "--port", str(port)])

    assert message == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


# ------------------------------------------------------------------ the ticker
def test_rotate_periodically__logs_a_failed_rotation_and_keeps_going(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    writer = LandingWriter(
        tmp_path / "landing",
        rotate_bytes=1 << 20,
        rotate_seconds=3600,
        log=command._log,
    )
    writer.append(BODY)
    writer.rotate_seconds = 0  # due now, and only from the ticker
    # The landing directory is moved away and a file takes its name: the rename of the
    # open file into it fails.
    writer.landing_dir.rename(tmp_path / "elsewhere")
    writer.landing_dir.write_text("")
    stop = threading.Event()
    ticker = threading.Thread(
        target=command._rotate_periodically, args=(writer, stop, 0.01), daemon=True
    )
    ticker.start()
    logged: list[str] = []

    def failure_logged() -> bool:
        logged.extend(capsys.readouterr().err.splitlines())
        return bool(logged)

    try:
        wait_until(failure_logged, "the failed rotation's log line")
        assert ticker.is_alive()  # one failure does not end the ticker
    finally:
        stop.set()
        ticker.join(5)
    assert not ticker.is_alive()
    assert len(logged) == 1
    # The open file's folder went with the landing directory: the writer says so once
    # and forgets it (its lines stay where they were moved), rather than fail forever.
    assert re.fullmatch(
        STAMP + r"error: webhooks-\S+\.ndjson\.part is no longer at \S+/\.incoming",
        logged[0],
    )


def test_log__one_stamped_line_per_message_in_utc(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a machine whose local time is not UTC
    time.tzset()
    try:
        command._log("hello")
        command._log("world")
    finally:
        monkeypatch.undo()
        time.tzset()

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2
    assert err.endswith("\n")
    assert re.fullmatch(STAMP + "hello", lines[0])
    assert re.fullmatch(STAMP + "world", lines[1])
    logged = calendar.timegm(time.strptime(lines[0][:20], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(logged - time.time()) < 60  # UTC, not local time
