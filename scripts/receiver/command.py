"""`audiences serve-webhooks`: run the signed Customer.io reporting-webhook receiver."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from scripts import stop_signals
from scripts.cli_options import fail, finite_seconds
from scripts.receiver.landing import (
    LandingBusyError,
    LandingWriter,
    describe_os_error,
)
from scripts.receiver.server import HEALTH_PATH, ReceiverConfig, ReceiverServer

KEY_ENV = "CIO_WEBHOOK_SIGNING_KEY"


_LOG_LOCK = threading.Lock()


def _log(message: str) -> None:
    # Request threads log concurrently; print() writes text and newline separately, so
    # without the lock two lines can fuse into one.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _LOG_LOCK:
        sys.stderr.write(f"{stamp} serve-webhooks: {message}\n")
        sys.stderr.flush()


@click.command(
    "serve-webhooks",
    epilog=f"""\b
Examples:
  export {KEY_ENV}=...   # the key on Customer.io's reporting-webhook page
  audiences serve-webhooks --landing-dir landing/webhooks --port 8088
  audiences load webhooks landing/webhooks      # later, or on a schedule
\b
Local demo without a key (never in production):
  audiences serve-webhooks --landing-dir /tmp/landing --insecure-no-signature
  curl -s localhost:8088/healthz
\b
Behaviour: a POST to --path answers 200 only after the body is fsync'd to
DIR/.incoming/*.ndjson.part; files move into DIR when they reach --rotate-bytes
or --rotate-seconds, so loaders never see a half-written file. 401 = bad or
missing X-CIO-Signature, 400 = not one JSON object, 413 = too large, 503 = disk
error (Customer.io retries). Replays are accepted: the loader dedupes on
event_id. SIGTERM, SIGINT or SIGHUP (the terminal gone): stop accepting, finish
in-flight requests, rotate, exit 0.
GET /healthz answers 200, or 503 with a "reason" when a write would fail now
(read-only or full disk: it writes and syncs a probe file, at most once a second
while healthy) or the last one failed.
A --landing-dir that cannot be written at start: one error line, exit 2.
""",
)
@click.option(
    "--landing-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory that receives finished NDJSON files (the loader's input).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8088,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 = any free port).",
)
@click.option(
    "--path",
    "webhook_path",
    default="/webhooks/customerio",
    show_default=True,
    help="URL path Customer.io posts to.",
)
@click.option(
    "--max-body-bytes",
    default=8 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Larger bodies get 413 (generous: a 413 makes Customer.io retry for 7 days).",
)
@click.option(
    "--rotate-bytes",
    default=64 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Finish a landing file once it reaches this size.",
)
@click.option(
    "--rotate-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    callback=finite_seconds,
    help="Finish a non-empty landing file once it is this old.",
)
@click.option(
    "--max-skew",
    default=None,
    type=click.FloatRange(min=1),
    callback=finite_seconds,
    help="Reject X-CIO-Timestamp further than this many seconds from now (default off: "
    "Customer.io retries for 7 days and may resend an old timestamp).",
)
@click.option(
    "--max-connections",
    default=128,
    show_default=True,
    type=click.IntRange(min=1, max=10_000),
    help="Connections served at once, a thread each; the others get 503 at once "
    "(Customer.io retries), so idle or dribbling clients cannot exhaust threads.",
)
@click.option(
    "--max-request-seconds",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    callback=finite_seconds,
    help="A request (headers and body) must arrive whole within this long of its "
    "first byte; a client that dribbles it (slowloris) is cut off.",
)
@click.option(
    "--insecure-no-signature",
    is_flag=True,
    help=f"Accept unsigned requests when {KEY_ENV} is unset (local demos only).",
)
def serve_webhooks(
    landing_dir: Path,
    host: str,
    port: int,
    webhook_path: str,
    max_body_bytes: int,
    rotate_bytes: int,
    rotate_seconds: float,
    max_skew: float | None,
    max_connections: int,
    max_request_seconds: float,
    insecure_no_signature: bool,
) -> None:
    """Receive Customer.io reporting webhooks and land them durably as NDJSON."""
    # The bytes as set: a key that is not UTF-8 is no reason for a traceback here, and
    # it would fail every signature anyway (Customer.io's keys are hex).
    key = os.environb.get(KEY_ENV.encode(), b"")
    if not key and not insecure_no_signature:
        fail(
            f"{KEY_ENV} is not set: the receiver verifies every request's "
            "X-CIO-Signature with it. Copy the signing key from Customer.io's "
            "reporting-webhook page, or "
            "pass --insecure-no-signature for a local demo."
        )
    if (
        not webhook_path.startswith("/")
        or webhook_path == HEALTH_PATH
        or any(mark in webhook_path for mark in "?#")
    ):
        # A request's query string is not part of the path it is routed by, so a
        # --path holding "?" would never match one.
        fail(f"--path must start with /, differ from {HEALTH_PATH} and hold no ? or #")
    if not key:
        _log("WARNING: signatures are NOT verified (--insecure-no-signature)")
    elif key != key.strip():
        _log(
            f"WARNING: {KEY_ENV} starts or ends with whitespace, which Customer.io's "
            "signing keys do not: if it was pasted with it, every request gets 401"
        )

    writer = _open_landing(landing_dir, rotate_bytes, rotate_seconds)
    config = ReceiverConfig(
        signing_key=key or None,
        path=webhook_path,
        max_body_bytes=max_body_bytes,
        max_skew_seconds=max_skew,
        max_connections=max_connections,
        max_request_seconds=max_request_seconds,
    )
    try:
        server = ReceiverServer((host, port), config, writer, log=_log)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")

    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    stop_signals.install(request_stop)

    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http"
    )
    serving.start()
    tick = min(1.0, rotate_seconds / 4)
    ticker = threading.Thread(
        target=_rotate_periodically,
        args=(writer, stop, tick, server.say_refused),
        name="rotate",
        daemon=True,
    )
    ticker.start()
    bound_host, bound_port = server.socket.getsockname()[:2]
    _log(
        f"listening on http://{bound_host}:{bound_port}{webhook_path} "
        f"(landing {landing_dir}, health {HEALTH_PATH})"
    )

    while not stop.wait(0.5):
        pass
    _log("stopping: no new connections, finishing in-flight requests")
    server.shutdown()
    server.server_close()
    if not server.drain(timeout=10.0):
        _log("error: some connections were still busy after 10 s; closing anyway")
    serving.join()
    server.say_refused()  # what was refused since the last line, requests all done
    writer.close()
    status = writer.status()
    _log(
        f"stopped: {status['events']} events, {status['bytes']} bytes, "
        f"{status['files']} files"
    )


def _open_landing(
    landing_dir: Path, rotate_bytes: int, rotate_seconds: float
) -> LandingWriter:
    """The writer, once the directory is proven writable; else one line and exit 2.

    Checked before listening, so a bad --landing-dir never answers a single request.
    """
    try:
        writer = LandingWriter(
            landing_dir,
            rotate_bytes=rotate_bytes,
            rotate_seconds=rotate_seconds,
            log=_log,
        )
        writer.claim()
        problem = writer.probe()
        if problem is None:
            writer.recover()
    except LandingBusyError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"cannot prepare it: {describe_os_error(exc)}"
    if problem is not None:
        fail(f"--landing-dir {landing_dir}: {problem}")
    return writer


# How often the refused requests are summed up in the log (when there were any).
REFUSED_SUMMARY_SECONDS = 60.0


def _rotate_periodically(
    writer: LandingWriter,
    stop: threading.Event,
    tick: float,
    say_refused=lambda: None,
) -> None:
    """Age-based rotation also when no request arrives to trigger it; and, once a
    minute, a line for the requests refused since the last one."""
    said_at = time.monotonic()
    while not stop.wait(tick):
        try:
            writer.rotate_if_due()
        except OSError as exc:
            _log(f"error: rotation failed: {exc}")
        if time.monotonic() - said_at >= REFUSED_SUMMARY_SECONDS:
            said_at = time.monotonic()
            say_refused()
