"""A Slack-compatible incoming-webhook receiver on 127.0.0.1: records every POST body."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Answers `status` (Slack answers 200 "ok") and keeps the JSON bodies it got;
    `on_post`, if set, runs on each POST before the answer (the poster waits for it).
    A 3xx status redirects to /elsewhere, whose GETs are kept in `gets`. With
    `drip_seconds`, the answer never ends: one header line every `drip_seconds`, until
    the receiver stops (each socket read of the poster gets a byte in time)."""

    def __init__(self, status: int = 200, drip_seconds: float | None = None):
        self.status = status
        self.drip_seconds = drip_seconds
        self.on_post: Callable[[], None] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.gets: list[str] = []
        self._stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(raw))
                if receiver.on_post is not None:
                    receiver.on_post()
                if receiver.drip_seconds is not None:
                    self._drip(receiver.drip_seconds)
                    return
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:
                receiver.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def _drip(self, every: float) -> None:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                while not receiver._stopping.wait(every):
                    self.wfile.write(b"X-Drip: 1\r\n")
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        # The path stands in for the secret part of a real Slack webhook URL.
        return f"http://{host}:{port}/services/T0/B0/secret-webhook-token"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]
