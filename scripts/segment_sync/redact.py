"""Keeping the write key out of everything that leaves a process.

Used by the parent run and by each sending process (workers.py), which has its own
`segment` logger and its own error texts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Redactor:
    """Replaces the write key wherever text leaves the process (output, logs, tables)."""

    def __init__(self, secret: str | None):
        # Around the key, whitespace pasted with it is not secret: redacting a blank
        # key made every space of the output "***" (such a key is refused anyway).
        self._secret = (secret or "").strip() or None

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
