"""`audiences run` in a terminal that goes away (an ssh session dropped): the kernel
sends the tick SIGHUP, and from then on every write to the terminal fails. The tick
stops as on SIGTERM, records its row and exits with its code, its output sent to
/dev/null (scripts/stop_signals.py). Before, SIGHUP killed it outright: its row stayed
`running`, and a step it had started ran on alone, holding the lock.

The tick runs as the session leader of a pseudo-terminal that is its controlling
terminal, as a login shell's job is; closing the terminal's other end is the hangup."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.run import record
from scripts.run.command import EXIT_PARTIAL
from scripts.warehouse import connect
from tests.conftest import REPO_ROOT
from tests.dbt.small_warehouse import environment

# The pseudo-terminal becomes the controlling terminal of a new session, then the
# command runs in that session leader's place.
IN_A_SESSION = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class InATerminal:
    """`audiences …` with a terminal for stdin, stdout and stderr."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.main, terminal = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", IN_A_SESSION, "-m", "scripts", *args],
            cwd=REPO_ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
        )  # fmt: skip
        os.close(terminal)
        self.output = ""

    def read_until(self, text: str) -> None:
        while text not in self.output:
            try:
                chunk = os.read(self.main, 4096)
            except OSError:  # the command ended and closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"ended before {text!r}:\n{self.output}")
            self.output += chunk.decode(errors="replace")

    def hang_up(self) -> int:
        os.close(self.main)
        return self.process.wait(timeout=120)


@pytest.fixture
def tick_env(duckdb_path: Path, tmp_path: Path) -> dict[str, str]:
    env = {**environment(tmp_path), "AUDIENCES_RUN_LOCK": str(tmp_path / "run.lock")}
    assert env["AUDIENCES_DUCKDB_PATH"] == str(duckdb_path)  # what connect() opens
    env.pop("AUDIENCES_ALERT_WEBHOOK_URL", None)
    return env


@pytest.mark.timeout(180)
def test_a_hangup_during_the_build_stops_the_tick_recorded(
    tick_env: dict[str, str], tmp_path: Path
) -> None:
    """The build gets SIGTERM (its output is the tick's pipe, not the terminal); the
    tick records itself as stopped and exits 5, writing to the terminal no more."""
    landing = tmp_path / "webhooks"
    landing.mkdir()
    tick = InATerminal(["run", "--webhooks", str(landing), "--no-sync"], tick_env)
    tick.read_until("==> dbt build")
    assert tick.hang_up() == EXIT_PARTIAL
    with connect() as wh:
        ((status, exit_code, steps),) = wh.query(
            f"select status, exit_code, steps from {record.RUNS}"
        )
    assert (status, exit_code) == ("partial", EXIT_PARTIAL)
    assert '"dbt build"' in steps
    # No step outlived the tick with the lock's descriptor.
    with (tmp_path / "run.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.timeout(120)
def test_a_hangup_between_ticks_stops_the_loop_with_exit_0(
    tick_env: dict[str, str], tmp_path: Path
) -> None:
    """Waiting for its next tick, the loop stops at once and exits 0, as on SIGTERM;
    before, the hangup killed it, and with SIGHUP caught but the terminal kept, its
    last line ("loop: stopped by a signal") failed to print and it exited 1."""
    landing = tmp_path / "webhooks"
    landing.mkdir()
    args = ["run", "--webhooks", str(landing), "--no-build", "--no-sync"]
    loop = InATerminal([*args, "--every", "60"], tick_env)
    loop.read_until("(exit 0); load webhooks 0")
    assert loop.hang_up() == 0
    with connect() as wh:
        assert wh.query(f"select status from {record.RUNS}") == [("ok",)]
