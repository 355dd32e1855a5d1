"""`serve-webhooks` with every fsync/fdatasync recorded, for tests that must see the sync.

Reading a landing file back only reads the OS page cache, which holds the bytes whether or
not they were ever synced. So the receiver's test process runs through this launcher: each
sync appends `<call> <file size> <path>` to $RECEIVER_SYNC_LOG after the real call returns,
which is before the receiver answers the request whose line it made durable.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from scripts.receiver.command import serve_webhooks

SYNC_LOG_ENV = "RECEIVER_SYNC_LOG"


def _recording(name: str, real: Callable[[int], None], log_path: str):
    def sync(fd: int) -> None:
        real(fd)
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = "?"
        entry = f"{name}\t{os.fstat(fd).st_size}\t{path}\n".encode()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(log_fd, entry)
        finally:
            os.close(log_fd)

    return sync


def main() -> None:
    log_path = os.environ[SYNC_LOG_ENV]
    os.fsync = _recording("fsync", os.fsync, log_path)
    if hasattr(os, "fdatasync"):
        os.fdatasync = _recording("fdatasync", os.fdatasync, log_path)
    serve_webhooks(prog_name="serve-webhooks")


if __name__ == "__main__":
    main()
