"""The tick's steps, each the real command in its own process.

A child process per step keeps each command's own exit codes, output and signal handling,
and lets DuckDB's single writer pass from one step to the next: no step holds the file
while another runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts import stop_signals

KEPT_OUTPUT_LINES = 200

# Starts a step's process in place of subprocess.Popen (run_step's `launch`).
Launch = Callable[..., Any]


@dataclass
class StepResult:
    name: str
    command: list[str]
    exit_code: int
    seconds: float
    output: list[str] = field(default_factory=list, repr=False)
    interrupted: bool = False  # a stop signal arrived while it ran (and was passed on)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.name,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 1),
        }


def audiences_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "scripts", *args]


def dbt_command(*args: str) -> list[str]:
    beside = Path(sys.executable).parent / "dbt"
    executable = str(beside) if beside.is_file() else (shutil.which("dbt") or "dbt")
    return [executable, *args]


def run_step(
    name: str,
    command: list[str],
    *,
    display: str,
    cwd: Path,
    echo: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    keep_fds: tuple[int, ...] = (),
    launch: Launch | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> StepResult:
    """Run one command, passing its output through line by line and keeping the tail.

    `display` is the command as an operator would type it (`audiences load …`), for the
    log and the alerts. `env`: variables set for this step on top of the tick's own.
    `keep_fds`: descriptors the step inherits (the tick's lock, so that a step left
    running by a killed tick still holds it). `launch`: starts the step's process
    instead of subprocess.Popen, given the same command, cwd, env, pass_fds and a
    `popen` that starts it the usual way (scripts/run/warm_dbt.py: a forked dbt).
    `stopping`: whether a signal reached the tick before it could pass signals on (while
    the step was being started); if so, the step gets SIGTERM as soon as it runs."""
    started = time.monotonic()
    echo(f"==> {name}: {display}")
    kept: deque[str] = deque(maxlen=KEPT_OUTPUT_LINES)

    def popen() -> subprocess.Popen[str]:
        # Its own process group: a Ctrl-C in the terminal reaches only the tick, which
        # passes it on once (below), instead of the step seeing it twice.
        return subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            process_group=0,
            env={**os.environ, **env} if env else None,
            pass_fds=keep_fds,
        )

    try:
        if launch is None:
            process = popen()
        else:
            process = launch(command, cwd=cwd, env=env, pass_fds=keep_fds, popen=popen)
    except OSError as exc:
        echo(f"{name}: cannot start {command[0]}: {exc}")
        return StepResult(name, command, 127, time.monotonic() - started, [str(exc)])
    assert process.stdout is not None
    signals: list[int] = []
    with _passed_on(process, signals):
        if stopping():
            signals.append(signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        signal_traceback = _SignalTraceback(name, signals)
        try:
            for line in process.stdout:
                line = signal_traceback.shown(line.rstrip("\n"))
                if line is None:
                    continue
                echo(line)
                kept.append(line)
        except BaseException:
            # Our own output failed (a closed terminal, a full disk): stop the step and
            # reap it, rather than leave it blocked on a full pipe, holding the lock.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            process.wait()
            raise
        code = process.wait()
    return StepResult(
        name, command, code, time.monotonic() - started, list(kept), bool(signals)
    )


class _SignalTraceback:
    """Leaves out the Python traceback a step prints after a stop signal was passed on
    to it, in one line instead. dbt answers Ctrl-C by cancelling its queries, which is
    the stop wanted, and then prints about 40 lines of its own KeyboardInterrupt
    traceback (dbt's log file keeps it): that was the end of the tick's output and of
    its alert, where the operator looks for what happened. A traceback before any
    signal is a fault, and is shown whole."""

    START = "Traceback (most recent call last):"
    # What Python prints between the tracebacks of chained exceptions.
    CHAINED = (
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    )

    def __init__(self, step: str, signals: list[int]):
        self.step = step
        self.signals = signals
        self.inside = False  # between a traceback's first line and its last
        self.after = False  # just after one: a chained traceback may follow

    def shown(self, line: str) -> str | None:
        """The line to show, or None to leave it out."""
        if not self.signals:
            return line
        if line.endswith(self.START):  # dbt puts its timestamp before it
            self.inside, self.after = True, False
            return None
        if self.inside:
            if line[:1] in (" ", "\t") or not line:
                return None
            self.inside, self.after = False, True
            return (
                f"{self.step}: {line.strip()} after the stop signal passed on to it "
                "(its traceback is left out here)"
            )
        if self.after and (not line.strip() or line.strip() in self.CHAINED):
            return None
        self.after = False
        return line


@contextlib.contextmanager
def _passed_on(process: Any, received: list[int]) -> Iterator[None]:
    """SIGTERM/SIGINT to the tick go to the running step, which stops the way it always
    does (the sync finishes and records its current group); the tick then records itself
    and runs no further step. SIGHUP (the tick's terminal gone) goes on as SIGTERM: the
    step's output is the tick's pipe, not the terminal, and SIGTERM is the stop every
    step handles."""

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = stop_signals.install(forward)
    try:
        yield
    finally:
        stop_signals.restore(previous)
        # The tick's own handler (scripts/run/loop.py, stopped_by_signals, which marks
        # it) hears of the first signal too, as if it had come now: the tick is then
        # stopping, and a second signal after this step ends it at once, not a third.
        # Any other handler (a caller's, Python's KeyboardInterrupt) is left alone.
        handler = previous.get(received[0]) if received else None
        if getattr(handler, "stops_the_tick", False):
            handler(received[0], None)  # type: ignore[misc]
