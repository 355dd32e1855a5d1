"""Reading one HTTP/1.1 response off a raw socket, for tests that speak to the receiver
byte by byte (no client library between the test and what the server sends)."""

from __future__ import annotations

import socket


def read_response(client: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response; the receiver always
    sends a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        assert chunk, "connection closed before a response"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, value in (line.split(":", 1) for line in header_lines)
    }
    while len(body) < int(headers["content-length"]):
        chunk = client.recv(4096)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(status_line.split()[1]), headers, body
