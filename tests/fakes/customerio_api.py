"""A local stand-in for the Customer.io App API `/v1/messages` (docs/customerio-app-api.md).

It follows the documented behaviour: Bearer auth (401 otherwise), `limit` (default 50,
at most 1000), opaque `start`/`next` cursors (`next` is "" on the last page), `type`,
and `start_ts`/`end_ts` over the delivery creation time, refusing windows longer than 6
months with 400. Both window ends are inclusive here, so a loader must tolerate the
overlap.

Faults for tests: `faults[n]` makes the n-th `/v1/messages` request (1-based) answer 429
(with or without `Retry-After`), 500, a 400, or reset the connection. Every request is
recorded with its arrival time so tests can measure the rate ceiling and the backoff.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SIX_MONTHS_SECONDS = 184 * 86400  # the longest 6 calendar months
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@dataclass
class Recorded:
    at: float
    params: dict[str, str]
    status: int
    fault: str | None
    served: list[Any] = field(default_factory=list)  # delivery ids in the answer


def _token(offset: int, query: tuple) -> str:
    raw = json.dumps({"offset": offset, "query": list(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _untoken(token: str) -> tuple[int, list]:
    data = json.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["offset"]), list(data["query"])


class FakeAppApi:
    """Serve `messages` (dicts with `id`, `created`, `type`) on 127.0.0.1."""

    def __init__(self, messages: list[dict], api_key: str, now: int | None = None):
        self.messages = sorted(messages, key=lambda m: (m["created"], m["id"]))
        self.api_key = api_key
        self.now = now or int(time.time())
        self.faults: dict[int, str] = {}
        self.extra_first_page: list[Any] = []  # raw objects added to the first answer
        self.delay_seconds = 0.0
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAppApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ behaviour
    def answer(
        self, params: dict[str, str], auth: str | None
    ) -> tuple[int, dict, dict]:
        """Status, extra headers and JSON body for one GET /v1/messages."""
        if auth != f"Bearer {self.api_key}":
            return 401, {}, {"meta": {"error": "Unauthorized request"}}
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
            end_ts = int(params["end_ts"]) if "end_ts" in params else self.now
            start_ts = (
                int(params["start_ts"])
                if "start_ts" in params and "end_ts" in params
                else end_ts - SIX_MONTHS_SECONDS
            )
        except ValueError:
            return 400, {}, {"meta": {"error": "invalid parameter"}}
        if not 1 <= limit <= MAX_LIMIT:
            return 400, {}, {"meta": {"error": "limit must be between 1 and 1000"}}
        if end_ts - start_ts > SIX_MONTHS_SECONDS:
            return 400, {}, {"meta": {"error": "time range can't exceed 6 months"}}
        query = (start_ts, end_ts, params.get("type"))
        offset = 0
        if params.get("start"):
            try:
                offset, token_query = _untoken(params["start"])
            except (ValueError, KeyError):
                return 400, {}, {"meta": {"error": "invalid start cursor"}}
            if token_query != list(query):
                return 400, {}, {"meta": {"error": "cursor does not match the query"}}
        selected = [
            message
            for message in self.messages
            if start_ts <= message["created"] <= end_ts
            and (query[2] is None or message["type"] == query[2])
        ]
        page = selected[offset : offset + limit]
        has_more = offset + limit < len(selected)
        body: dict[str, Any] = {
            "messages": list(page),
            "next": _token(offset + limit, query) if has_more else "",
        }
        with self._lock:
            if self.extra_first_page:
                body["messages"] = body["messages"] + self.extra_first_page
                self.extra_first_page = []
        return 200, {}, body

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _send(self, status: int, headers: dict, body: dict) -> None:
                self._send_raw(status, json.dumps(body).encode(), headers)

            def _send_raw(
                self, status: int, data: bytes, headers: dict | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/v1/loop":  # a proxy's redirect that never ends
                    self.send_response(302)
                    self.send_header("Location", "/v1/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path != "/v1/messages":
                    self._send(404, {}, {"meta": {"error": "not found"}})
                    return
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with fake._lock:
                    number = len(fake.requests) + 1
                    fault = fake.faults.get(number)
                    record = Recorded(time.monotonic(), params, 0, fault)
                    fake.requests.append(record)
                if fake.delay_seconds:
                    time.sleep(fake.delay_seconds)
                if fault == "reset":
                    record.status = -1
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, linger
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault in ("400-echo", "400-echo-upper"):
                    # A gateway that quotes the request back, headers and all (one
                    # that upper-cases what it quotes, too).
                    record.status = 400
                    header = self.headers.get("Authorization") or ""
                    if fault == "400-echo-upper":
                        header = header.upper()
                    echoed = {"Authorization": header}
                    self._send(400, {}, {"error": "bad request", "request": echoed})
                    return
                if fault == "redirect-loop":
                    record.status = 302
                    self.send_response(302)
                    self.send_header("Location", "/v1/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "deep":
                    # Valid JSON, nested deeper than a recursive parser can follow.
                    record.status = 200
                    depth = 100_000
                    self._send_raw(
                        200, b'{"messages":[' + b"[" * depth + b"]" * depth + b"]}"
                    )
                    return
                if fault is not None:
                    status = {
                        "429": 429,
                        "429-retry-after": 429,
                        "500": 500,
                        "400": 400,
                    }
                    record.status = status[fault]
                    headers = {"Retry-After": "1"} if fault == "429-retry-after" else {}
                    self._send(record.status, headers, {"meta": {"error": fault}})
                    return
                status, headers, body = fake.answer(
                    params, self.headers.get("Authorization")
                )
                record.status = status
                if status == 200:
                    record.served = [
                        m.get("id") for m in body["messages"] if isinstance(m, dict)
                    ]
                self._send(status, headers, body)

        return Handler

    # ------------------------------------------------------------ assertions
    def ok_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.status == 200]


def make_messages(template: list[dict], start: int, end: int, count: int) -> list[dict]:
    """`count` deliveries shaped like `template`, created evenly over [start, end)."""
    step = (end - start) / count
    messages = []
    for index in range(count):
        base = dict(template[index % len(template)])
        created = start + int(index * step)
        base["id"] = f"dlv-{index:06d}-{base['id'][:8]}"
        base["deduplicate_id"] = f"{base['id']}:{created}"
        base["created"] = created
        base["metrics"] = {"sent": created + 5, "delivered": created + 9}
        messages.append(base)
    return messages
