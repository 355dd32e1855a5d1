"""The signals that ask our long-running commands to stop, and how they are caught.

`audiences run` (one tick or a loop of them), `audiences sync segment` and
`audiences receive webhooks` stop cleanly on each of these: they finish or stop the
piece of work in hand, record it, and exit.

- SIGTERM: a scheduler or service manager (cron's `timeout`, systemd) or `kill`.
- SIGINT: Ctrl-C in the terminal.
- SIGHUP: the terminal is gone (an ssh session dropped, a terminal window closed).
  Nobody reads it any more, and each write to it fails (EIO), which would break the
  very recording the stop is for. So on SIGHUP, standard output and standard error,
  where they are a terminal, are first pointed at /dev/null. A process started with
  SIGHUP ignored (`nohup`, or `setsid` with no terminal) keeps it ignored: `nohup
  audiences run --every 60` goes on after the session ends, as nohup promises.

The handlers are the process's: a caller off the main thread (an embedding program)
installs none.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

Handler = Callable[[int, Any], None]


def install(handler: Handler) -> dict[int, Any]:
    """Make `handler` the handler of each of SIGNALS that the process does not ignore
    (on SIGHUP, after leaving the terminal); returns the handlers it replaced, for
    `restore`. Nothing is installed off the main thread."""

    def caught(signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            leave_the_terminal()
        handler(signum, frame)

    # Attributes a caller marks its handler with (scripts/run/steps.py reads one).
    caught.__dict__.update(getattr(handler, "__dict__", {}))
    previous: dict[int, Any] = {}
    for sig in SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave them alone
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue  # nohup's promise
            previous[sig] = signal.signal(sig, caught)
    return previous


@contextlib.contextmanager
def first_asks_second_ends(
    on_stop: Callable[[int], None], **marks: object
) -> Iterator[None]:
    """While inside, the first stop signal calls `on_stop(signum)` instead of ending
    the process, and gives every one of SIGNALS back its default action: a second one
    ends the process at once, as it would without a handler. The default action is the
    kernel's, so it works even while the process waits in a call that runs no Python
    (a warehouse query waiting on a lock), where no Python handler can run. `marks` are
    set on the handler, for code that looks for it (scripts/run/steps.py)."""
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: object) -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_DFL)
        on_stop(signum)

    handler.__dict__.update(marks)
    previous.update(install(handler))
    try:
        yield
    finally:
        restore(previous)


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers `install` replaced."""
    for sig, old in previous.items():
        signal.signal(sig, old)


def leave_the_terminal() -> None:
    """Point standard output and error at /dev/null where they are a character device
    (a terminal; once hung up, isatty() can no longer tell). Files, pipes and sockets (a
    log file, a service manager's journal) are left as they are."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):  # closed: nothing to leave
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
    finally:
        os.close(null)
