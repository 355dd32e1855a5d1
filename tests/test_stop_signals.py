"""The stop signals (scripts/stop_signals.py): which are caught, nohup's promise, and
leaving a terminal that has hung up. The commands' own stops are tested with them:
tests/run/test_hangup.py (a tick whose terminal goes away), tests/receiver and
tests/segment_sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from scripts import stop_signals
from scripts.segment_sync import service
from tests.conftest import REPO_ROOT


@pytest.fixture(autouse=True)
def _handlers_put_back() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in stop_signals.SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def terminal_left(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A SIGHUP raised in this process must not send pytest's own terminal output to
    /dev/null: here, leaving the terminal is only noted (it runs for real in a child
    process below)."""
    left: list[bool] = []
    monkeypatch.setattr(stop_signals, "leave_the_terminal", lambda: left.append(True))
    return left


def test_each_stop_signal_reaches_the_handler_and_restore_puts_them_back(
    terminal_left: list[bool],
) -> None:
    before = {sig: signal.getsignal(sig) for sig in stop_signals.SIGNALS}
    heard: list[int] = []
    previous = stop_signals.install(lambda signum, _frame: heard.append(signum))
    assert set(previous) == {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.raise_signal(sig)
    assert heard == [signal.SIGTERM, signal.SIGINT]
    assert terminal_left == []  # the terminal is still there
    signal.raise_signal(signal.SIGHUP)
    assert heard[-1] == signal.SIGHUP
    assert terminal_left == [True]
    stop_signals.restore(previous)
    assert {sig: signal.getsignal(sig) for sig in stop_signals.SIGNALS} == before


def test_an_ignored_sighup_stays_ignored() -> None:
    """nohup starts the process with SIGHUP ignored: it must outlive the session."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    previous = stop_signals.install(lambda _signum, _frame: None)
    assert signal.SIGHUP not in previous
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)


def test_a_marked_handler_keeps_its_marks() -> None:
    """scripts/run/steps.py finds the tick's handler by its mark."""

    def handler(_signum: int, _frame: object) -> None: ...

    handler.stops_the_tick = True  # type: ignore[attr-defined]
    stop_signals.install(handler)
    assert getattr(signal.getsignal(signal.SIGTERM), "stops_the_tick", False)


LEAVES = textwrap.dedent(
    """
    import os, sys
    from scripts import stop_signals
    stop_signals.leave_the_terminal()
    null = os.stat(os.devnull).st_rdev
    report = [os.fstat(fd).st_rdev == null for fd in (1, 2)]
    os.write(int(sys.argv[1]), repr(report).encode())
    print("to the null device")
    """
)


def test_leaving_the_terminal_keeps_pipes_and_files(tmp_path) -> None:
    """On SIGHUP, stdout on a terminal goes to /dev/null; stderr, a file here, is left
    as it is (a log file, a service manager's journal)."""
    main, terminal = os.openpty()
    report_read, report_write = os.pipe()
    log = tmp_path / "log"
    try:
        with log.open("w") as stderr:
            subprocess.run(
                [sys.executable, "-c", LEAVES, str(report_write)],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=terminal,
                stderr=stderr,
                pass_fds=(report_write,),
                check=True,
                timeout=30,
            )
    finally:
        os.close(terminal)
        os.close(report_write)
    report = os.read(report_read, 100).decode()
    os.close(report_read)
    os.close(main)
    assert report == "[True, False]"
    assert log.read_text() == ""


@pytest.mark.parametrize("sig", stop_signals.SIGNALS, ids=lambda s: s.name)
def test_the_sync_finishes_its_group_on_each_stop_signal(
    sig: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audiences sync segment` reads the flag after each group (SIGHUP: its terminal
    gone; before, SIGHUP killed it mid-group)."""
    flag = {"stop": False}
    with service._stop_on_signals(flag):
        signal.raise_signal(sig)
    assert flag["stop"]
    assert f"received signal {int(sig)}: finishing the current group" in (
        capsys.readouterr().err
    )
