"""Wrong method or path: the exact answer, so a client (or a load balancer) can tell why.

405 names the method that would work in `Allow`; 404 has none; both carry a JSON error and
close the connection (nothing after a refused request is read as a next request).
"""

from __future__ import annotations

import requests

from tests.receiver.conftest import WEBHOOK_PATH

METHOD_NOT_ALLOWED = {"error": "method not allowed"}
NOT_FOUND = {"error": "not found"}


CASES = [
    ("GET", WEBHOOK_PATH, 405, METHOD_NOT_ALLOWED, "POST"),
    ("PUT", WEBHOOK_PATH, 405, METHOD_NOT_ALLOWED, "POST"),
    ("DELETE", WEBHOOK_PATH, 405, METHOD_NOT_ALLOWED, "POST"),
    ("POST", "/healthz", 405, METHOD_NOT_ALLOWED, "GET, HEAD"),
    ("PATCH", "/healthz", 405, METHOD_NOT_ALLOWED, "GET, HEAD"),
    ("GET", "/other", 404, NOT_FOUND, None),
    ("POST", "/other", 404, NOT_FOUND, None),
    ("OPTIONS", "/other", 404, NOT_FOUND, None),
]


def test_serve_webhooks__wrong_method_or_path(make_receiver):
    # One receiver for every case: each refusal closes its connection, not the server.
    receiver = make_receiver()
    for method, path, status, body, allow in CASES:
        response = requests.request(
            method, receiver.base_url + path, data=b"{}", timeout=5
        )
        case = (method, path)
        assert response.status_code == status, case
        assert response.json() == body, case
        assert response.headers.get("Allow") == allow, case
        assert response.headers["Connection"] == "close", case
    # Some load balancers probe with HEAD: GET's status, no body.
    response = requests.head(receiver.base_url + "/healthz", timeout=5)
    assert (response.status_code, response.content) == (200, b"")
    assert receiver.stop() == 0
    assert receiver.landed_lines() == []
