"""`audiences run --every`: the schedule and how the loop stops (scripts/run/loop.py).

The ticks here are functions that say what a tick ended with; the real ticks run in
tests/dbt/test_storage_vacuum.py."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.run import record
from scripts.run.command import EXIT_PARTIAL, Tick, run
from scripts.run.loop import Stop, TickOutcome, run_every, stopped_by_signals
from scripts.run.steps import run_step
from scripts.warehouse import connect
from tests.conftest import REPO_ROOT


class Ticks:
    """Ticks that end with the given outcomes; `during` runs inside the n-th tick."""

    def __init__(self, *codes: int, during: dict | None = None):
        self.codes = list(codes)
        self.during = during or {}
        self.done = 0

    def __call__(self) -> TickOutcome:
        self.done += 1
        action = self.during.get(self.done)
        if action:
            return action() or TickOutcome(self.codes[self.done - 1], False)
        return TickOutcome(self.codes[self.done - 1], False)


@pytest.fixture
def stop():
    waiter = Stop()
    yield waiter
    waiter.close()


def test_ticks_until_the_count_and_the_last_tick_s_code(stop: Stop) -> None:
    echoed: list[str] = []
    ticks = Ticks(6, 0, 3)
    assert (
        run_every(ticks, 0, ticks=3, echo=echoed.append, stop=stop, error_code=1) == 3
    )
    assert ticks.done == 3
    assert echoed == ["loop: 3 ticks done (--ticks)"]


def test_a_signal_between_ticks_stops_the_loop_after_the_tick(stop: Stop) -> None:
    """SIGTERM while a tick does its own bookkeeping: the tick ends, no further one,
    and the loop exits 0 (a stop a service manager asked for)."""
    echoed: list[str] = []
    ticks = Ticks(0, 5, 0, during={2: lambda: os.kill(os.getpid(), signal.SIGTERM)})
    previous = signal.getsignal(signal.SIGTERM)
    assert (
        run_every(ticks, 0, ticks=None, echo=echoed.append, stop=stop, error_code=1)
        == 0
    )
    assert ticks.done == 2
    assert echoed == ["loop: stopped by a signal (the last tick exited 5)"]
    assert signal.getsignal(signal.SIGTERM) is previous  # put back


def test_a_signal_while_waiting_wakes_the_loop(stop: Stop) -> None:
    """The wait between ticks is an hour here; SIGINT ends it at once."""
    echoed: list[str] = []

    def tick() -> TickOutcome:
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # SIGALRM, once the tick is over
        return TickOutcome(0, False)

    previous = signal.signal(
        signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT)
    )
    try:
        assert (
            run_every(
                tick, 3600, ticks=None, echo=echoed.append, stop=stop, error_code=1
            )
            == 0
        )
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert echoed == ["loop: stopped by a signal (the last tick exited 0)"]


def test_a_tick_stopped_by_a_signal_ends_the_loop(stop: Stop) -> None:
    echoed: list[str] = []
    ticks = Ticks(0, 0, during={1: lambda: TickOutcome(5, True)})
    assert (
        run_every(ticks, 0, ticks=None, echo=echoed.append, stop=stop, error_code=1)
        == 0
    )
    assert ticks.done == 1
    assert echoed == ["loop: stopped by a signal during a tick (it exited 5)"]


def test_a_tick_that_raises_is_reported_and_the_loop_goes_on(stop: Stop) -> None:
    echoed: list[str] = []

    def broken() -> TickOutcome:
        raise OSError(28, "No space left on device")

    ticks = Ticks(9, 0, during={1: broken})
    assert (
        run_every(ticks, 0, ticks=2, echo=echoed.append, stop=stop, error_code=1) == 0
    )
    assert ticks.done == 2
    assert echoed[0].startswith("loop: the tick failed:\nTraceback")
    assert echoed[0].endswith("OSError: [Errno 28] No space left on device")
    assert echoed[1] == "loop: 2 ticks done (--ticks)"


def test_a_tick_longer_than_every_is_followed_at_once() -> None:
    """Starts at 0 and 600 s; the second tick takes 700 s, so the third starts at once
    (at 1,300 s, not 1,200 s), and the fourth waits for 1,900 s."""
    now = [0.0]
    waits: list[float] = []
    lengths = {1: 10.0, 2: 700.0, 3: 5.0}
    done = [0]

    def tick() -> TickOutcome:
        done[0] += 1
        now[0] += lengths.get(done[0], 0.0)
        return TickOutcome(0, False)

    class Waits:  # on the clock above
        def is_set(self) -> bool:
            return False

        def set(self) -> None:
            raise AssertionError("no signal here")

        def wait(self, seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

    echoed: list[str] = []
    run_every(
        tick, 600, ticks=4, echo=echoed.append, clock=lambda: now[0], stop=Waits(),
        error_code=1,
    )  # fmt: skip
    assert waits == [590.0, 0.0, 595.0]
    assert echoed == [
        "loop: the tick ran 100 s past the next start; the next tick starts now",
        "loop: 4 ticks done (--ticks)",
    ]


def test_a_tick_that_raises_counts_as_the_error_code_given() -> None:
    def broken() -> TickOutcome:
        raise RuntimeError("boom")

    class Never:
        def is_set(self) -> bool:
            return False

        def set(self) -> None: ...

        def wait(self, seconds: float) -> None: ...

    echoed: list[str] = []
    assert (
        run_every(broken, 0, ticks=1, echo=echoed.append, stop=Never(), error_code=7)
        == 7
    )


def test_a_tick_exactly_as_long_as_every_is_not_late() -> None:
    """The boundary of "late": a tick that ends at the next start waits 0 s, silently."""
    now = [0.0]
    waits: list[float] = []

    def tick() -> TickOutcome:
        now[0] += 600.0
        return TickOutcome(0, False)

    class Waits:
        def is_set(self) -> bool:
            return False

        def set(self) -> None: ...

        def wait(self, seconds: float) -> None:
            waits.append(seconds)

    echoed: list[str] = []
    run_every(
        tick, 600, ticks=2, echo=echoed.append, clock=lambda: now[0], stop=Waits(),
        error_code=1,
    )  # fmt: skip
    assert waits == [0.0]
    assert echoed == ["loop: 2 ticks done (--ticks)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ticks", "2"], "--ticks counts the ticks of a loop: give --every too"),
        (["--every", "nan"], "nan is not a number of minutes"),
        (["--every", "-1"], "-1.0 is not in the range"),
        (["--every", "0"], "0.0 is not in the range 0.01<=x<=525600"),
        (["--every", "0.00001"], "1e-05 is not in the range 0.01<=x<=525600"),
        (["--every", "0.0099"], "0.0099 is not in the range 0.01<=x<=525600"),
        (["--every", "5", "--ticks", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_loop_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(run, args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_signal_before_a_step_starts_no_further_step(
    duckdb_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a loop, SIGTERM between two steps (the tick's own bookkeeping) ends the tick
    before its next step, recorded as stopped (exit 5), as a signal during a step does."""
    landing = tmp_path / "webhooks"
    landing.mkdir()
    tick = Tick("dev", REPO_ROOT)
    tick.stopping = lambda: True
    code = tick.execute(
        loads=[("webhooks", landing, [])],
        max_reject_pct=1.0,
        build=True,
        sync=True,
        dry_run=True,
    )
    assert code == EXIT_PARTIAL
    assert tick.steps == []  # not even the load started
    assert "stopped by a signal during the tick, before load webhooks" in (
        capsys.readouterr().err
    )
    with connect() as wh:
        assert wh.query(f"select status, exit_code from {record.RUNS}") == [
            ("partial", EXIT_PARTIAL)
        ]


@pytest.mark.timeout(120)
def test_sigterm_during_a_forked_build_stops_the_loop_cleanly(
    duckdb_path: Path, tmp_path: Path
) -> None:
    """The real loop, its real forked `dbt build`: SIGTERM once the build has been
    forked goes on to it (dbt dies of it), the tick records itself as stopped, the loop
    exits 0, and nothing is left holding the lock."""
    lock = tmp_path / "run.lock"
    env = {
        **os.environ,
        "AUDIENCES_DUCKDB_PATH": str(duckdb_path),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "AUDIENCES_RUN_LOCK": str(lock),
    }
    env.pop("AUDIENCES_TARGET", None)
    loop = subprocess.Popen(
        [sys.executable, "-m", "scripts", "run", "--no-sync", "--every", "60"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert loop.stdout is not None
    seen = []
    for line in loop.stdout:
        seen.append(line)
        if line.startswith("dbt build: forked from the loop's process"):
            loop.send_signal(signal.SIGTERM)
            break
    rest = loop.stdout.read()
    assert loop.wait() == 0, "".join(seen) + rest
    assert "loop: stopped by a signal during a tick (it exited 5)" in rest
    assert "stopped by a signal during dbt build; no further step" in rest
    with connect() as wh:
        assert wh.query(f"select status, exit_code from {record.RUNS}") == [
            ("partial", EXIT_PARTIAL)
        ]
    # No step outlived the loop with the lock's descriptor.
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_first_signal_sets_stop_and_gives_the_second_its_default_action(
    stop: Stop,
) -> None:
    """The kernel's default action, not a Python handler: a second signal then ends a
    process that waits inside a call running no Python (tests/alerts/test_alerts.py
    sends it to a real tick)."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stopped_by_signals(stop):
        assert not stop.is_set()
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_one_shot_tick_signalled_before_its_first_step_starts_none(
    duckdb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audiences run` without --every: SIGTERM while the tick records its start (outside
    any step) ends it before its first step, recorded as stopped (exit 5)."""
    landing = tmp_path / "webhooks"
    landing.mkdir()
    real_start = record.start

    def start_then_a_signal(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real_start(*args, **kwargs)

    monkeypatch.setattr(record, "start", start_then_a_signal)
    monkeypatch.setenv("AUDIENCES_RUN_LOCK", str(tmp_path / "run.lock"))
    before = signal.getsignal(signal.SIGTERM)

    result = CliRunner().invoke(run, ["--webhooks", str(landing), "--no-build"])

    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "stopped by a signal during the tick, before load webhooks" in result.output
    assert signal.getsignal(signal.SIGTERM) is before  # the tick's handlers are gone
    with connect() as wh:
        assert wh.query(f"select status, exit_code, steps from {record.RUNS}") == [
            ("partial", EXIT_PARTIAL, "[]")
        ]


# A step that says it is ready, then dies of the first SIGINT or SIGTERM it gets. Not
# `signal.pause()` after the print: a signal arriving between the two was handled
# before pause() began, which then waited forever (a test hung 300 s under load). The
# signals are blocked before the print and taken by sigwait, which has no such gap;
# their default action is set first (an ignored signal is discarded even when blocked:
# a test run started in the background ignores SIGINT).
WAITS_FOR_A_SIGNAL = """
import os, signal
stops = {signal.SIGINT, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, stops)
for sig in stops:
    signal.signal(sig, signal.SIG_DFL)
print("ready", flush=True)
sig = signal.sigwait(stops)
signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
os.kill(os.getpid(), sig)
"""


def test_a_signal_passed_on_to_a_step_also_stops_the_tick(
    stop: Stop, tmp_path: Path
) -> None:
    """SIGTERM during a step goes to the step; the tick's own handler hears of it once
    the step has ended, so the tick is stopping and a second signal ends it at once."""
    waits = [sys.executable, "-c", WAITS_FOR_A_SIGNAL]

    def echo(line: str) -> None:
        if line == "ready":  # the step is running, its signals passed on
            os.kill(os.getpid(), signal.SIGTERM)

    with stopped_by_signals(stop):
        result = run_step("wait", waits, display="wait", cwd=tmp_path, echo=echo)
        assert result.interrupted
        assert result.exit_code == -signal.SIGTERM
        assert stop.is_set()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_step_s_signal_leaves_any_other_handler_alone(tmp_path: Path) -> None:
    """Outside a tick (no handler of stopped_by_signals), the handler run_step found is
    not called for a signal it passed on: Python's own SIGINT handler would raise."""
    waits = [sys.executable, "-c", WAITS_FOR_A_SIGNAL]

    def echo(line: str) -> None:
        if line == "ready":
            os.kill(os.getpid(), signal.SIGINT)

    result = run_step("wait", waits, display="wait", cwd=tmp_path, echo=echo)
    assert result.interrupted  # and no KeyboardInterrupt here


# A step that answers SIGINT as dbt does: a KeyboardInterrupt, whose traceback Python
# prints as the process ends (dbt prints its own, about 40 lines, after cancelling).
RAISES_ON_SIGINT = """
import signal, threading
signal.signal(signal.SIGINT, signal.default_int_handler)
def wait_for_ever():
    threading.Event().wait()
print("ready", flush=True)
wait_for_ever()
"""


def test_a_step_s_traceback_after_a_signal_passed_on_is_one_line(
    tmp_path: Path,
) -> None:
    """Ctrl-C during a build: dbt cancels its queries, then prints its KeyboardInterrupt
    traceback, which was the end of the tick's output and of its alert's last lines.
    It is one line now; the lines before it are kept."""
    shown: list[str] = []

    def echo(line: str) -> None:
        shown.append(line)
        if line == "ready":
            os.kill(os.getpid(), signal.SIGINT)

    command = [sys.executable, "-c", RAISES_ON_SIGINT]
    result = run_step("build", command, display="dbt build", cwd=tmp_path, echo=echo)

    assert result.interrupted
    assert shown == [
        "==> build: dbt build",
        "ready",
        "build: KeyboardInterrupt after the stop signal passed on to it (its "
        "traceback is left out here)",
    ]
    assert result.output == shown[1:]


def test_a_step_s_traceback_without_a_signal_is_shown_whole(tmp_path: Path) -> None:
    """A traceback no signal caused is a fault: every line of it is shown and kept."""
    shown: list[str] = []
    command = [sys.executable, "-c", "def fails():\n    raise ValueError('x')\nfails()"]
    result = run_step(
        "build", command, display="dbt build", cwd=tmp_path, echo=shown.append
    )

    assert not result.interrupted
    assert shown[1] == "Traceback (most recent call last):"
    assert shown[-1] == "ValueError: x"
    assert sum(line.startswith('  File "<string>"') for line in shown) == 2
