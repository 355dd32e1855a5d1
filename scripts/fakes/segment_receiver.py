"""A local Segment-compatible `/v1/batch` receiver with fault injection.

It follows Segment's documented contract (docs/segment-http-api.md, with its sources), not
RudderStack's: Basic auth or a body `writeKey`, optional gzip bodies, 400 for a batch over
500 KB or an event over 32 KB, a 200 that silently drops every event of a batch over 2500
events, events without a user id / event name / valid messageId dropped, and dedupe on
`messageId`: it keeps the set of distinct ids *and* counts every delivery, so tests can tell
"sent twice, deduped" from "sent once".

Fault injection (constructor, `set_faults()`, or `POST /control/faults` from another
process): a share of 5xx, 429 bursts with `Retry-After`, a 400 for any batch containing a
chosen messageId, connection resets, slow answers, and a *hold* that parks every request
after the k-th accepted batch until released, so a test can kill the sender at an exact
point without sleeping.

Run it for the demo or the benchmark:

    python -m scripts.fakes.segment_receiver --port 8765
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import signal
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

# "500 KB" read strictly: Segment does not say KB or KiB (docs/segment-http-api.md, Limits)
MAX_BATCH_BYTES = 500_000
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID_CHARS = 100
HOLD_LIMIT_SECONDS = 120.0  # a held request never outlives a forgotten release


@dataclass
class Faults:
    """What the receiver does wrong, on purpose."""

    error_rate: float = 0.0  # share of batch requests answered with error_status
    error_status: int = 500
    rate_limit_next: int = 0  # the next N batch requests get 429 + Retry-After
    retry_after: int = 1
    # 400 for any batch containing one of these messageIds
    reject_message_ids: list[str] = field(default_factory=list)
    reset_rate: float = 0.0  # share of requests whose connection is reset, no answer
    reset_next: int = 0
    delay_seconds: float = 0.0  # answer slowly (after accepting the batch)
    delay_next: int = 0  # ... only the next N requests (0 = every request)
    hold_after_batches: int | None = None  # park requests once this many were accepted
    hold_accepts: bool = False  # accept the parked batch before holding its answer
    seed: int = 0


@dataclass
class Stats:
    requests: int = 0  # POST /v1/batch requests, whatever their fate
    accepted_batches: int = 0
    deliveries: int = 0  # events accepted, duplicates included
    duplicates: int = 0
    dropped: int = 0  # events answered 200 but not accepted (Segment's silent drops)
    rejected_batches: dict[str, int] = field(default_factory=dict)  # status -> count
    resets: int = 0
    held: int = 0
    unauthorized: int = 0
    # What the distinct accepted events carry, so a demo run shows the Engage fields.
    fields: dict[str, int] = field(default_factory=dict)


class SegmentReceiver:
    """The receiver's state and control surface; `start()` serves it on 127.0.0.1."""

    def __init__(
        self,
        write_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_messages: bool = True,
        faults: Faults | None = None,
    ):
        self.write_key = write_key
        self._host = host
        self._port = port
        self.keep_messages = keep_messages
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._stats = Stats()
        self._ids: set[str] = set()
        self._messages: dict[str, dict[str, Any]] = {}
        self._request_times: list[float] = []
        self._holding = threading.Event()
        self._release = threading.Event()
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SegmentReceiver:
        handler = type("BoundHandler", (_Handler,), {"receiver": self})
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="segment-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> SegmentReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the receiver first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ control
    def set_faults(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self._faults, key):
                    raise ValueError(f"unknown fault {key!r}")
                setattr(self._faults, key, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            if "hold_after_batches" in changes:
                self._holding.clear()
                self._release.clear()

    def release(self) -> None:
        """Let held requests go on, and stop holding new ones."""
        with self._lock:
            self._faults.hold_after_batches = None
        self._release.set()

    def reset(self) -> None:
        """Forget everything received and every fault."""
        with self._lock:
            self._faults = Faults()
            self._rng = random.Random(0)
            self._stats = Stats()
            self._ids.clear()
            self._messages.clear()
            self._request_times.clear()
        self._holding.clear()
        self._release.set()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out = asdict(self._stats)
            out["distinct_ids"] = len(self._ids)
            out["holding"] = self._holding.is_set()
            return out

    def message_ids(self) -> set[str]:
        with self._lock:
            return set(self._ids)

    def messages(self) -> dict[str, dict[str, Any]]:
        """First delivery of every distinct messageId (needs keep_messages)."""
        with self._lock:
            return dict(self._messages)

    def request_times(self) -> list[float]:
        with self._lock:
            return list(self._request_times)

    def wait_until(self, predicate: Any, timeout: float = 30.0) -> bool:
        """Poll `predicate(stats)` until it holds or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.stats()):
                return True
            self._stopped.wait(0.005)
        return False

    def wait_holding(self, timeout: float = 30.0) -> bool:
        return self._holding.wait(timeout)

    # ------------------------------------------------------------------ handling
    def _authorized(self, header: str | None, body_key: Any) -> bool:
        presented = body_key if isinstance(body_key, str) else None
        if header and header.startswith("Basic "):
            try:
                user = base64.b64decode(header[6:]).decode("utf-8").split(":", 1)[0]
            except ValueError:
                return False
            presented = user
        if not presented:
            return False
        return self.write_key is None or presented == self.write_key

    def _decide_fault(self, batch_ids: set[str]) -> tuple[str, Any] | None:
        """Pick this request's fault, under the lock; None means 'behave'."""
        f = self._faults
        self._stats.requests += 1
        self._request_times.append(time.monotonic())
        if f.reset_next > 0:
            f.reset_next -= 1
            return ("reset", None)
        if f.reset_rate and self._rng.random() < f.reset_rate:
            return ("reset", None)
        if f.rate_limit_next > 0:
            f.rate_limit_next -= 1
            return ("status", (429, "rate_limited", f.retry_after))
        if f.error_rate and self._rng.random() < f.error_rate:
            return ("status", (f.error_status, "server_error", None))
        if f.reject_message_ids and batch_ids.intersection(f.reject_message_ids):
            return ("status", (400, "invalid_request", None))
        if (
            f.hold_after_batches is not None
            and self._stats.accepted_batches >= f.hold_after_batches
        ):
            return ("hold", f.hold_accepts)
        return None

    def _accept(self, events: list[Any]) -> None:
        """Record a batch Segment would answer 200 (caller holds the lock)."""
        self._stats.accepted_batches += 1
        if len(events) > MAX_BATCH_EVENTS:
            self._stats.dropped += len(events)
            return
        for event in events:
            if not _valid_event(event):
                self._stats.dropped += 1
                continue
            message_id = event["messageId"]
            self._stats.deliveries += 1
            if message_id in self._ids:
                self._stats.duplicates += 1
                continue
            self._ids.add(message_id)
            _tally_fields(self._stats.fields, event)
            if self.keep_messages:
                self._messages[message_id] = event

    def handle_batch(self, handler: _Handler, raw: bytes) -> None:
        if handler.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                handler.reply(400, {"code": "invalid_request", "message": "bad gzip"})
                return
        if len(raw) > MAX_BATCH_BYTES:
            self._count_rejection(400)
            handler.reply(400, {"code": "invalid_request", "message": "batch > 500KB"})
            return
        try:
            body = orjson.loads(raw)
            events = body["batch"]
            assert isinstance(events, list)
        except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
            self._count_rejection(400)
            handler.reply(400, {"code": "invalid_request", "message": "invalid JSON"})
            return
        if not self._authorized(
            handler.headers.get("Authorization"), body.get("writeKey")
        ):
            with self._lock:
                self._stats.unauthorized += 1
            handler.reply(401, {"code": "unauthorized", "message": "invalid write key"})
            return
        if len(raw) > MAX_EVENT_BYTES and any(
            isinstance(e, dict) and len(orjson.dumps(e)) > MAX_EVENT_BYTES
            for e in events
        ):
            self._count_rejection(400)
            handler.reply(400, {"code": "invalid_request", "message": "event > 32KB"})
            return
        ids = {e.get("messageId") for e in events if isinstance(e, dict)}
        with self._lock:
            fault = self._decide_fault(ids)
            if fault is None:
                self._accept(events)
                delay = self._take_delay()
        if fault is None:
            if delay:
                self._stopped.wait(delay)
            handler.reply(200, {"success": True})
            return
        kind, detail = fault
        if kind == "reset":
            with self._lock:
                self._stats.resets += 1
            handler.reset_connection()
        elif kind == "status":
            status, code, retry_after = detail
            self._count_rejection(status)
            headers = {"Retry-After": str(retry_after)} if retry_after else {}
            handler.reply(status, {"code": code, "message": "injected"}, headers)
        else:  # hold: park until released, optionally after accepting
            with self._lock:
                self._stats.held += 1
                if detail:
                    self._accept(events)
            self._holding.set()
            self._release.wait(HOLD_LIMIT_SECONDS)
            if detail:
                handler.reply(200, {"success": True})
            else:
                handler.reset_connection()

    def _take_delay(self) -> float:
        f = self._faults
        if not f.delay_seconds:
            return 0.0
        if f.delay_next > 0:
            f.delay_next -= 1
            if f.delay_next == 0:
                delay, f.delay_seconds = f.delay_seconds, 0.0
                return delay
        return f.delay_seconds

    def _count_rejection(self, status: int) -> None:
        with self._lock:
            key = str(status)
            self._stats.rejected_batches[key] = (
                self._stats.rejected_batches.get(key, 0) + 1
            )

    def handle_control(self, handler: _Handler, path: str, raw: bytes) -> None:
        if path == "/control/stats":
            handler.reply(200, self.stats())
        elif path == "/control/message_ids":
            handler.reply(200, sorted(self.message_ids()))
        elif path == "/control/messages":
            handler.reply(200, self.messages())
        elif path == "/control/faults":
            self.set_faults(**(orjson.loads(raw) if raw else {}))
            handler.reply(200, asdict(self._faults))
        elif path == "/control/release":
            self.release()
            handler.reply(200, {"released": True})
        elif path == "/control/reset":
            self.reset()
            handler.reply(200, {"reset": True})
        else:
            handler.reply(404, {"code": "not_found", "message": path})


def _tally_fields(tally: dict[str, int], event: dict[str, Any]) -> None:
    """Count the identifiers and Engage fields an accepted event carries."""
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    personas = (
        context.get("personas") if isinstance(context.get("personas"), dict) else {}
    )
    traits = event.get("traits") if isinstance(event.get("traits"), dict) else {}
    context_traits = (
        context.get("traits") if isinstance(context.get("traits"), dict) else {}
    )
    present = {
        "userId": bool(event.get("userId")),
        "anonymousId": bool(event.get("anonymousId")),
        "traits.email": "email" in traits,
        "context.traits.email": "email" in context_traits,
        **{f"personas.{name}": name in personas for name in (
            "computation_class", "computation_id", "computation_key", "space_id",
            "namespace",
        )},
    }  # fmt: skip
    for name, is_present in present.items():
        if is_present:
            tally[name] = tally.get(name, 0) + 1


def _valid_event(event: Any) -> bool:
    if not isinstance(event, dict) or not event.get("type"):
        return False
    message_id = event.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return False
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        return False
    if not (event.get("userId") or event.get("anonymousId")):
        return False
    return not (event["type"] == "track" and not event.get("event"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    receiver: SegmentReceiver
    # keep-alive, as the client's requests.Session expects
    protocol_version = "HTTP/1.1"
    # Without this, Nagle + delayed ACK stall every keep-alive answer by ~40 ms
    # (Python's http.server `disable_nagle_algorithm`; RFC 1122 §4.2.3.2 on delayed ACKs).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark posts thousands of batches."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self.receiver.handle_control(self, self.path, b"")

    def do_POST(self) -> None:
        raw = self._body()
        if self.path.rstrip("/") == "/v1/batch":
            self.receiver.handle_batch(self, raw)
        else:
            self.receiver.handle_control(self, self.path, raw)

    def reply(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = orjson.dumps(payload)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away (e.g. it was killed)

    def reset_connection(self) -> None:
        """Close with RST and no answer, as a dropped connection looks to a client."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.fakes.segment_receiver",
        description="Serve a local Segment-compatible /v1/batch endpoint on 127.0.0.1.",
        epilog="The write key to accept is read from SEGMENT_WRITE_KEY (any key if unset).",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--no-keep-messages", action="store_true", help="ids only (bench)"
    )
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    receiver = SegmentReceiver(
        os.environ.get("SEGMENT_WRITE_KEY") or None,
        port=args.port,
        keep_messages=not args.no_keep_messages,
        faults=Faults(error_rate=args.error_rate, seed=args.seed),
    )
    receiver.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"segment receiver listening on {receiver.url}", flush=True)
    stop.wait()
    print(json.dumps(receiver.stats()), flush=True)
    receiver.stop()


if __name__ == "__main__":
    main()
