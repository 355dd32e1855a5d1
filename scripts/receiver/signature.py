"""Customer.io reporting-webhook signatures (docs/customerio-webhooks.md, "Signing").

The signed string is `v0:<X-CIO-Timestamp>:<raw body>`, HMAC-SHA256 with the webhook
signing key, sent as lowercase hex in `X-CIO-Signature`. The raw bytes are signed, so
verification must happen before any parsing or re-serialisation.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The hex signature Customer.io would send for this body (tests, demos)."""
    message = b"v0:" + timestamp.encode("ascii") + b":" + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    max_skew_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """True when the signature matches (constant-time); false for malformed headers."""
    if not timestamp or not signature:
        return False
    timestamp = timestamp.strip()
    try:
        timestamp.encode("ascii")
        supplied = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = sign(key, timestamp, body).encode("ascii")
    if not hmac.compare_digest(expected, supplied):
        return False
    if max_skew_seconds is None:
        return True
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    return abs(current - sent_at) <= max_skew_seconds
