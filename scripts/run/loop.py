"""`audiences run --every MINUTES`: ticks on a schedule, in one long-running process.

A tick starts every `every` from the loop's start (a tick that takes longer than that
is followed at once by the next, and the missed starts are not made up). Each tick is the
one-shot `audiences run` tick, with its own lock, run id, record and alerts, so a tick
that fails or finds the lock held is reported and the loop goes on to the next; only
its builds differ (scripts/run/warm_dbt.py: dbt stays imported, each build is forked).

SIGTERM or SIGINT (Ctrl-C) stops the loop: between ticks at once; during a step, the
step gets the signal (as in a one-shot tick) and the loop ends after that tick records
itself; between two steps of a tick, the tick starts no further step (it reads `stop`),
records itself, and the loop ends. The exit code is the last
tick's (`audiences run --help`), so a scheduler that restarts the loop sees how it
ended.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class TickOutcome:
    exit_code: int
    interrupted: bool  # a signal stopped one of its steps


def run_every(
    tick: Callable[[], TickOutcome],
    every_seconds: float,
    *,
    ticks: int | None,
    echo: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> int:
    """Run `tick` every `every_seconds` until a signal, or `ticks` ticks; returns the
    last tick's exit code (0 if stopped before the first).

    `stop`: waited on between ticks, set by SIGTERM and SIGINT (`clock` and `stop` are
    given by tests, to run the schedule on a clock of their own)."""
    stop = stop or threading.Event()
    code = 0
    done = 0
    with _stopped_by_signals(stop):
        next_start = clock()
        while not stop.is_set():
            outcome = tick()
            code, done = outcome.exit_code, done + 1
            if outcome.interrupted:
                echo("loop: stopped by a signal during the tick")
                break
            if ticks is not None and done >= ticks:
                echo(f"loop: {done} tick{'s' if done > 1 else ''} done (--ticks)")
                break
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
        else:
            echo("loop: stopped by a signal")
    return code


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
