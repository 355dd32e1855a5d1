"""The HTTP side of the receiver: stdlib ThreadingHTTPServer, one thread per connection.

Order of checks per POST: path and method (404/405), Content-Length (411/413, before
reading a byte), signature over the raw bytes (401), one JSON object (400), durable
append (200 only after fsync; 503 when the disk refuses, so Customer.io retries).
Anything the payload itself lacks (no `event_id`, unknown metric …) is the loader's
business: refusing it here would only make Customer.io retry it for 7 days and hold back
every later event behind it.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from scripts.receiver.landing import LandingError, LandingWriter
from scripts.receiver.signature import verify

HEALTH_PATH = "/healthz"
# What each refusal means, for the summary line (say_refused).
REFUSAL_MEANINGS = {
    400: "not one JSON object, or a bad Content-Length",
    401: "missing or invalid signature: is the signing key the webhook's?",
    404: "not the webhook's path",
    405: "wrong method",
    411: "no Content-Length",
    413: "body over --max-body-bytes",
    503: "over --max-connections at once",
}


@dataclass(frozen=True)
class ReceiverConfig:
    signing_key: bytes | None  # None only with --insecure-no-signature
    path: str
    max_body_bytes: int
    max_skew_seconds: float | None = None
    idle_timeout_seconds: float = 30.0
    # A client that dribbles its request (slowloris) kept a thread for ever: every byte
    # reset the idle timeout. A request must arrive whole within this many seconds of
    # its first byte, and at most this many connections are served at once (each has a
    # thread); the others get 503 at once, which Customer.io retries.
    max_request_seconds: float = 120.0
    max_connections: int = 128


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _number_as_text(text: str) -> str:
    return text


def parse_event(body: bytes) -> dict | None:
    """The body as one JSON object, or None (non-UTF-8, not JSON, or not an object).

    Numbers are kept as their text: only the shape is checked here, and a valid JSON
    number Python would refuse to convert (an integer of more than 4,300 digits) is
    the loader's to judge, not a reason for 400 (which Customer.io retries for 7 days,
    holding back every later event). NaN and Infinity are not JSON (RFC 8259, section
    6) and stay refused."""
    try:
        value = json.loads(
            body.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_int=_number_as_text,
            parse_float=_number_as_text,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def landing_line(body: bytes) -> bytes:
    """The body as received, its raw line breaks made spaces: NDJSON holds one event per
    line. In a body that parsed as JSON a raw CR or LF can only be whitespace between
    tokens (inside a string it must be escaped), so nothing else changes. (Re-encoding
    the parsed body instead failed on a lone surrogate escape, `"\\ud800"`, and the
    request got no answer at all.)"""
    return body.replace(b"\r", b" ").replace(b"\n", b" ")


# What a connection over --max-connections gets, written before it is closed.
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
    b"Connection: close\r\nRetry-After: 5\r\n\r\n"
)


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, each read bounded by the idle timeout and by what is left
    of the current request's time (WebhookHandler.request_deadline, set when the first
    byte of a request arrives)."""

    def __init__(self, handler: WebhookHandler):
        self.handler = handler
        self.sock: socket.socket = handler.connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        handler = self.handler
        config = handler.server.config
        timeout = config.idle_timeout_seconds
        if handler.request_deadline is not None:
            left = handler.request_deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request took longer than --max-request-seconds")
            timeout = min(timeout, left)
        self.sock.settimeout(timeout)
        count = self.sock.recv_into(buffer)
        if count and handler.request_deadline is None:
            handler.request_deadline = time.monotonic() + config.max_request_seconds
        return count


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        config: ReceiverConfig,
        writer: LandingWriter,
        log=lambda message: None,
    ):
        self.config = config
        self.writer = writer
        self.log = log
        self.started_at = time.monotonic()
        self.draining = False
        self._connections: dict[socket.socket, bool] = {}  # socket -> busy
        self._connections_lock = threading.Lock()
        # Requests answered 4xx, by status: since the start (/healthz) and since the
        # last summary line (say_refused). No access log is kept, so without these a
        # wrong signing key (every request 401) went unseen while Customer.io held the
        # backlog back for days.
        self.refused_total: Counter[int] = Counter()
        self._refused_since: Counter[int] = Counter()
        self._slots = threading.BoundedSemaphore(config.max_connections)
        super().__init__(address, WebhookHandler)

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        """A thread per connection, up to max_connections; past that, 503 at once."""
        if not self._slots.acquire(blocking=False):
            self.count_refused(503)
            with contextlib.suppress(OSError):
                request.setblocking(False)  # a fresh socket's buffer takes it whole
                request.send(_TOO_MANY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def count_refused(self, status: int) -> None:
        with self._connections_lock:
            self.refused_total[status] += 1
            self._refused_since[status] += 1

    def say_refused(self) -> None:
        """One log line for the requests refused since the last call, if any."""
        with self._connections_lock:
            since, self._refused_since = self._refused_since, Counter()
        if since:
            counts = ", ".join(
                f"{status} x{count} ({REFUSAL_MEANINGS.get(status, 'refused')})"
                for status, count in sorted(since.items())
            )
            self.log(
                f"refused {sum(since.values())} request(s) since the last line: {counts}"
            )

    # Connection bookkeeping: a shutdown waits for busy connections, closes idle ones.
    def connection_state(self, sock: socket.socket, busy: bool | None) -> None:
        with self._connections_lock:
            if busy is None:
                self._connections.pop(sock, None)
            else:
                self._connections[sock] = busy

    def drain(self, timeout: float) -> bool:
        """After shutdown(): let busy requests finish; close idle keep-alive ones.

        SHUT_RD, not SHUT_RDWR: a request whose line was read just before we looked
        can still write its answer, so no event lands without its 200 being sent.
        """
        self.draining = True
        deadline = time.monotonic() + timeout
        while True:
            with self._connections_lock:
                idle = [sock for sock, busy in self._connections.items() if not busy]
                remaining = len(self._connections)
            for sock in idle:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            if remaining == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def handle_error(self, request: object, client_address: tuple) -> None:
        """One line per failed connection, never a traceback.

        Anyone can open a connection and drop it without a signature, and socketserver's
        default prints ~30 traceback lines each time: enough to drown the log.
        """
        exc = sys.exc_info()[1]
        client = ":".join(str(part) for part in client_address[:2])
        if isinstance(exc, ConnectionError | TimeoutError):
            self.log(f"client {client} dropped the connection ({type(exc).__name__})")
            return
        where = ""
        trace = traceback.extract_tb(exc.__traceback__) if exc is not None else []
        if trace:
            where = f" at {Path(trace[-1].filename).name}:{trace[-1].lineno}"
        self.log(
            f"error: request from {client} failed: {type(exc).__name__}: {exc}{where}"
        )

    def status(self) -> tuple[int, dict[str, object]]:
        """HTTP status and body of /healthz: 503 with the reason when writes fail."""
        problem = self.writer.health_problem()
        if problem is not None:
            state, code = "unhealthy", 503
        elif self.draining:
            state, code = "draining", 200
        else:
            state, code = "ok", 200
        body: dict[str, object] = {"status": state}
        if problem is not None:
            body["reason"] = problem
        body.update(self.writer.status())
        with self._connections_lock:
            body["refused"] = {str(k): v for k, v in sorted(self.refused_total.items())}
        body["uptime_seconds"] = round(time.monotonic() - self.started_at, 1)
        return code, body


class WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Customer.io reuses connections
    disable_nagle_algorithm = True
    server_version = "audiences-serve-webhooks"
    sys_version = ""
    server: ReceiverServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.config.idle_timeout_seconds)
        self.request_deadline: float | None = None
        self.rfile.close()  # the stdlib's reader: ours bounds each request's time
        self.rfile = io.BufferedReader(_DeadlineReader(self), io.DEFAULT_BUFFER_SIZE)
        self.server.connection_state(self.connection, busy=False)

    def finish(self) -> None:
        self.server.connection_state(self.connection, busy=None)
        super().finish()

    def parse_request(self) -> bool:
        self.server.connection_state(self.connection, busy=True)
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.request_deadline = None  # the next request's clock starts on its byte
            if self.server.draining:
                self.close_connection = True
            self.server.connection_state(self.connection, busy=False)

    def log_message(self, format: str, *args: object) -> None:
        # No access log: per-request lines would drown the rotation log.
        return

    # ----------------------------------------------------------------- responses
    def _reply(
        self,
        status: int,
        payload: dict,
        *,
        close: bool = False,
        allow: str | None = None,
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        if 400 <= status < 500:
            self.server.count_refused(status)
        if self.server.draining:
            close = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> str:
        return urlsplit(self.path).path

    def _not_allowed(self) -> None:
        route = self._route()
        if route == HEALTH_PATH:
            self._reply(
                405, {"error": "method not allowed"}, allow="GET, HEAD", close=True
            )
        elif route == self.server.config.path:
            self._reply(405, {"error": "method not allowed"}, allow="POST", close=True)
        else:
            self._reply(404, {"error": "not found"}, close=True)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815 (stdlib names)

    def do_HEAD(self) -> None:
        # Some load balancers probe with HEAD: the status of GET, without a body.
        if self._route() == HEALTH_PATH:
            status, _payload = self.server.status()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._not_allowed()

    def do_GET(self) -> None:
        if self._route() == HEALTH_PATH:
            self._reply(*self.server.status())
        else:
            self._not_allowed()

    def do_POST(self) -> None:
        config = self.server.config
        if self._route() != config.path:
            self._not_allowed()
            return
        if self.headers.get("Transfer-Encoding"):
            self._reply(411, {"error": "send a Content-Length body"}, close=True)
            return
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self._reply(411, {"error": "Content-Length required"}, close=True)
            return
        if (
            len(lengths) > 1
            or not lengths[0].strip().isascii()
            or not (lengths[0].strip().isdigit())
        ):
            # Exactly one, all digits (RFC 9110, section 8.6): int() also reads "+259"
            # and "25_9", and two headers could be read differently by a proxy in
            # front, which would then frame the next request otherwise.
            self._reply(400, {"error": "bad Content-Length"}, close=True)
            return
        length = int(lengths[0])
        if length > config.max_body_bytes:
            # Close without reading: the unread body must not parse as a next request.
            self._reply(413, {"error": "body too large"}, close=True)
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return
        if config.signing_key is not None and not verify(
            config.signing_key,
            self.headers.get("X-CIO-Timestamp"),
            self.headers.get("X-CIO-Signature"),
            body,
            max_skew_seconds=config.max_skew_seconds,
        ):
            self._reply(401, {"error": "missing or invalid signature"})
            return
        event = parse_event(body)
        if event is None:
            self._reply(400, {"error": "body is not one JSON object"})
            return
        try:
            self.server.writer.append(landing_line(body))
        except LandingError as exc:
            self.server.log(f"error: {exc}")
            self._reply(503, {"error": "could not store the event"}, close=True)
            return
        self._reply(200, {"status": "accepted"})
