"""`audiences run --every MINUTES`: ticks on a schedule, in one long-running process.

A tick starts every `every` from the loop's start (a tick that takes longer than that
is followed at once by the next, and the missed starts are not made up). Each tick is the
one-shot `audiences run` tick, with its own lock, run id, record and alerts, so a tick
that fails, finds the lock held, or raises is reported and the loop goes on to the next;
only its builds differ (scripts/run/warm_dbt.py: dbt stays imported, each build is
forked).

SIGTERM, SIGINT (Ctrl-C) or SIGHUP (its terminal gone; scripts/stop_signals.py) stops
the loop: between ticks at once; during a step, the step gets the signal (as in a
one-shot tick) and the loop ends after that tick records itself; between two steps of a
tick, the tick starts no further step (it reads `stop`), records itself, and the loop
ends (a second signal outside a step ends it at once). A loop stopped by a signal exits
0, as a service manager expects of a stop it asked for (the stopped tick's own outcome
is in its `audiences_ops.runs` row); one that ran its `--ticks` exits with the last
tick's code.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scripts import stop_signals


@dataclass
class TickOutcome:
    exit_code: int
    interrupted: bool  # a signal stopped one of its steps


class Waiter(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def wait(self, seconds: float) -> None: ...


class Stop:
    """Set by a signal handler, waited on between ticks.

    Not a threading.Event: its set() takes a lock, and a handler that runs while the
    same thread holds that lock (entering or leaving a wait) would wait for itself
    forever. Here set() is a flag and a byte written to a pipe, and wait() a select() on
    the pipe, which the byte wakes."""

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(BlockingIOError):  # the pipe is full: already woken
            os.write(self._write, b"x")

    def wait(self, seconds: float) -> None:
        if not self._set and seconds > 0:
            select.select([self._read], [], [], seconds)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def run_every(
    tick: Callable[[], TickOutcome],
    every_seconds: float,
    *,
    ticks: int | None,
    echo: Callable[[str], None],
    stop: Waiter,
    error_code: int,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run `tick` every `every_seconds` until a signal sets `stop` (SIGTERM, SIGINT
    and SIGHUP do, while this runs), or `ticks` ticks; returns the exit code (module
    docstring). A tick that raises counts as `error_code` (the command's exit codes are
    its own).

    `clock` and `stop` may be a test's own, to run the schedule on its clock."""
    code = 0
    done = 0
    with stopped_by_signals(stop):
        next_start = clock()
        while not stop.is_set():
            try:
                outcome = tick()
            except Exception:  # reported; the next tick may succeed
                echo("loop: the tick failed:\n" + traceback.format_exc().rstrip())
                outcome = TickOutcome(error_code, False)
            code, done = outcome.exit_code, done + 1
            if outcome.interrupted:
                echo(f"loop: stopped by a signal during a tick (it exited {code})")
                return 0
            if ticks is not None and done >= ticks:
                echo(f"loop: {done} tick{'s' if done > 1 else ''} done (--ticks)")
                return code
            next_start += every_seconds
            now = clock()
            if next_start < now:
                if every_seconds > 0:  # 0 (tests): back to back, never late
                    echo(
                        f"loop: the tick ran {now - next_start:.0f} s past the next "
                        "start; the next tick starts now"
                    )
                next_start = now
            stop.wait(next_start - now)
    echo(f"loop: stopped by a signal (the last tick exited {code})")
    return 0


def stopped_by_signals(stop: Waiter) -> contextlib.AbstractContextManager[None]:
    """While inside, SIGTERM, SIGINT and SIGHUP (scripts/stop_signals.py) set `stop`
    instead of ending the process: the loop, or a one-shot tick, reads it and stops at
    its next step (a running step gets the signal from run_step's own handlers, which
    replace these while it runs). Asked once, the process winds down; a second signal
    outside a step ends it at once (stop_signals.first_asks_second_ends)."""
    # run_step, having passed a signal on to its step, calls the handler marked so.
    return stop_signals.first_asks_second_ends(
        lambda _signum: stop.set(), stops_the_tick=True
    )
