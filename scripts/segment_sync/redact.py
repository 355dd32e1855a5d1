"""Keeping the write key out of everything that leaves a process.

Used by the parent run and by each sending process (workers.py), which has its own
`segment` logger and its own error texts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# Segment's write keys are 32 random letters and digits. A value much shorter is a
# placeholder or a slip (`SEGMENT_WRITE_KEY=x`), never a key: a real run refuses it up
# front (service.py), and redacting it replaced every "x" of the output ("does not
# e***ist"), garbling each message and showing the key to anyone who compared them.
MIN_WRITE_KEY_LENGTH = 12


class Redactor:
    """Replaces the write key wherever text leaves the process (output, logs, tables)."""

    def __init__(self, secret: str | None):
        # Around the key, whitespace pasted with it is not secret: redacting a blank
        # key made every space of the output "***" (such a key is refused anyway).
        secret = (secret or "").strip()
        # Too short to be a key, it is never sent (a dry run needs no key), and text
        # that holds it is not about it.
        self._secret = secret if len(secret) >= MIN_WRITE_KEY_LENGTH else None

    def __call__(self, text: str) -> str:
        if self._secret and self._secret in text:
            return text.replace(self._secret, "***")
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor):
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = ()
        return True


@contextmanager
def library_logging(redact: Redactor) -> Iterator[None]:
    """Keep the library's logger at WARNING (its DEBUG lines hold the request body, write
    key included) and pass everything it says through the redactor."""
    logger = logging.getLogger("segment")
    old_level = logger.level
    filt = _RedactingFilter(redact)
    logger.setLevel(logging.WARNING)
    logger.addFilter(filt)
    try:
        yield
    finally:
        logger.removeFilter(filt)
        logger.setLevel(old_level)
