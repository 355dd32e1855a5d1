"""A Slack-compatible incoming-webhook receiver on 127.0.0.1: records every POST body."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Answers `status` (Slack answers 200 "ok") and keeps the JSON bodies it got;
    `on_post`, if set, runs on each POST before the answer (the poster waits for it)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.on_post: Callable[[], None] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(raw))
                if receiver.on_post is not None:
                    receiver.on_post()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

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
        self._server.shutdown()
        self._server.server_close()

    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]
