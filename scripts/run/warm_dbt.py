"""`audiences run --every`: dbt imported once, each tick's `dbt build` in a forked child.

Every `dbt` command first spends 1.5-2 s importing dbt and its adapter (about 15 % of a
daily tick at a brand's size, measured in benchmarks/results.md), before it reads a
file. A loop that keeps running between ticks imports dbt once, then builds each tick in
a child forked from itself: the child starts with dbt already imported, and everything
else is as the `dbt` command does it. It parses the project (partially, as dbt always
does: edits to the SQL between ticks are built), opens the warehouse itself, and exits
when the build ends, so nothing a build leaves in memory reaches the next tick, and no
process holds the DuckDB file between ticks (a loader or `audiences sync` may run then).

The child is what scripts/run/steps.py expects of a step's process: its own process
group, the step's environment and working directory, only the descriptors it is meant
to inherit (the tick's lock), stdout and stderr on one pipe, and SIGTERM, SIGINT and
SIGHUP handled as a fresh Python process handles them.

Forking is safe only from a process with a single thread: a lock held by another thread
at the fork would stay held forever in the child (DuckDB's own worker threads, if a
connection were left open, included). So `launch` forks only when the process has one
thread, and otherwise starts the `dbt` command as a one-shot tick does, saying why.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

from scripts import settings, stop_signals
from scripts.run import dbt_macro_templates, dbt_serializers
from scripts.run.steps import Launch

# What a `dbt build` imports before it reads a file: dbt's command line (which brings
# the parser, the graph and the runners) and the target's adapter.
PRELOADED = (
    "dbt.cli.main",
    "dbt.task.build",
    "dbt.task.test",
    "dbt.task.seed",
    "dbt_common.clients.agate_helper",
)


# The classes whose JSON schema a dbt command builds to validate what it reads. dbt builds
# each once per process and caches it (`dbtClassMixin.json_schema`, an lru_cache on the
# class); built here, every child inherits them. A schema is a function of the class
# alone; a name this dbt does not have is skipped (the child builds what it needs, as
# before), and tests/run/test_warm_dbt.py lists the names missing. Found by logging which
# schemas `dbt parse`, `dbt run` and `dbt build` build.
VALIDATED_CLASSES = (
    # Every command, before its first node: dbt_project.yml, the profile, selectors, the
    # hooks, a data test's result row (0.3-0.5 s of every forked build on 2 cores).
    "dbt.contracts.project:Project",
    "dbt.contracts.project:ProjectFlags",
    "dbt.contracts.project:ProfileConfig",
    "dbt.contracts.project:PackageConfig",
    "dbt.contracts.project:Configuration",
    "dbt.contracts.selection:SelectorFile",
    "dbt.artifacts.resources.v1.config:Hook",
    "dbt.task.test:TestResultData",
    # Parsing the project's files: every file on a full parse (a new target folder, or
    # other --vars or profile than the last parse there: each replay of an as_of), the
    # changed ones on a partial parse. 1.2 s of a forked full parse's 4.8 s, measured.
    # The node kinds this project has, and those a user's may add (snapshots, analyses,
    # singular tests).
    "dbt.contracts.graph.unparsed:UnparsedModelUpdate",
    "dbt.contracts.graph.unparsed:UnparsedNodeUpdate",
    "dbt.contracts.graph.unparsed:UnparsedMacroUpdate",
    "dbt.contracts.graph.unparsed:UnparsedSourceDefinition",
    "dbt.contracts.graph.unparsed:UnparsedExposure",
    "dbt.contracts.graph.unparsed:UnparsedUnitTest",
    "dbt.contracts.graph.unparsed:UnparsedAnalysisUpdate",
    "dbt.contracts.graph.nodes:ModelNode",
    "dbt.contracts.graph.nodes:SeedNode",
    "dbt.contracts.graph.nodes:HookNode",
    "dbt.contracts.graph.nodes:GenericTestNode",
    "dbt.contracts.graph.nodes:SingularTestNode",
    "dbt.contracts.graph.nodes:SnapshotNode",
    "dbt.contracts.graph.nodes:AnalysisNode",
    "dbt.artifacts.resources.v1.config:NodeConfig",
    "dbt.artifacts.resources.v1.config:TestConfig",
    "dbt.artifacts.resources.v1.model:ModelConfig",
    "dbt.artifacts.resources.v1.seed:SeedConfig",
    "dbt.artifacts.resources.v1.snapshot:SnapshotConfig",
    "dbt.artifacts.resources.v1.source_definition:SourceConfig",
    "dbt.artifacts.resources.v1.exposure:ExposureConfig",
    "dbt.artifacts.resources.v1.unit_test_definition:UnitTestConfig",
    "dbt.artifacts.resources.v1.components:Contract",
)


def preload(adapter_type: str) -> float:
    """Import dbt and the target's adapter in this process, build the JSON schemas
    every command validates with (VALIDATED_CLASSES and the adapter's credentials) and
    compile dbt's (de)serializers (scripts/run/dbt_serializers.py); returns the seconds
    taken.

    An adapter that is not installed is left to the build, which says so itself."""
    started = time.perf_counter()
    for module in PRELOADED:
        importlib.import_module(module)
    classes = [_class(name) for name in VALIDATED_CLASSES]
    with contextlib.suppress(ImportError):
        adapter = importlib.import_module(f"dbt.adapters.{adapter_type}")
        classes.append(getattr(getattr(adapter, "Plugin", None), "credentials", None))
    for cls in classes:
        if cls is not None:
            with contextlib.suppress(Exception):  # the child builds it, as before
                cls.json_schema()
    dbt_serializers.compile_all()
    return time.perf_counter() - started


def _class(name: str) -> type | None:
    module, _, attribute = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return None


def missing_validated_classes() -> list[str]:
    """The VALIDATED_CLASSES this dbt does not have (after an upgrade of dbt)."""
    return [name for name in VALIDATED_CLASSES if _class(name) is None]


def fork_blocker() -> str | None:
    """Why this process must not fork now, or None."""
    if not hasattr(os, "fork"):
        return "this platform cannot fork"
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        threads = threading.active_count()
    if threads != 1:
        return f"this process runs {threads} threads"
    return None


class ForkedProcess:
    """The part of subprocess.Popen that a tick's step uses, for a forked child."""

    def __init__(self, pid: int, stdout: IO[str]):
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self.rusage: object = None  # the child's resource usage, once it has ended
        self._ended = False  # it has exited (reaped, or about to be)

    def wait(self) -> int:
        if self.returncode is None:
            # Wait for the end without reaping it: until reaped, the pid stays this
            # child's, so a signal the tick forwards meanwhile reaches no one else.
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            # It has ended: from here on send_signal sends nothing, so a handler that
            # runs between the reap and the return code below (a signal forwarded by
            # the tick) cannot reach a pid the system may have given to another process.
            self._ended = True
            _, status, self.rusage = os.wait4(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
            self.stdout.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None and not self._ended:
            os.kill(self.pid, signum)


def start_forked(
    main: Callable[[], int | None],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ForkedProcess:
    """Run `main()` in a forked child set up as subprocess.Popen would set up a step
    (see the module docstring); its return value, or SystemExit's code, is the exit
    code."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would print the parent's pending output again
    read_end, write_end = os.pipe()
    # SIGTERM, SIGINT and SIGHUP wait until each side has its own handlers: one arriving
    # between the fork and the child's reset would otherwise run the parent's handler in
    # the child, and be lost.
    stopping = set(stop_signals.SIGNALS)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    unfreeze = freeze_heap()
    try:
        pid = os.fork()
    except OSError:  # no memory or process left: the step reports it
        if unfreeze:
            gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: never returns
        code = 1
        try:
            _own_exit_handlers()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # nohup's stays
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.setpgid(0, 0)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            _close_fds_but(pass_fds)
            # Python's streams on the new descriptors (the parent's may have been
            # replaced, as a test runner's capture does), line by line as the step
            # reads, in UTF-8 as the parent reads them whatever the locale.
            sys.stdout, sys.stderr = (_line_stream(fd) for fd in (1, 2))
            os.chdir(cwd)
            if env:
                os.environ.update(env)
            code = _exit_code(main)
        except BaseException:  # the child reports anything, then exits
            traceback.print_exc()
        finally:
            # The interpreter's exit, but for unwinding the parent's stack (its
            # `finally` blocks are the parent's business): the exit handlers run, as
            # in the `dbt` executable. dbt-duckdb closes its database, which
            # checkpoints it, in one of them; multiprocessing unregisters the
            # semaphores of dbt's thread pool in another (without it, the resource
            # tracker warns that they leaked).
            with contextlib.suppress(BaseException):
                atexit._run_exitfuncs()
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    if unfreeze:
        gc.unfreeze()  # the parent's own collections go on as before; the child's stay
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_end)
    return ForkedProcess(pid, os.fdopen(read_end, encoding="utf-8", errors="replace"))


def freeze_heap() -> bool:
    """Before a fork: move every object alive to the collector's permanent generation
    (gc.freeze), which a forked child inherits. Otherwise each of the child's full
    collections walks all of imported dbt again, and writing to those objects' headers
    copies the pages the child shares with its parent: 0.4-0.6 s of a small forked dbt
    command on a 2-core machine, measured (`gc.freeze` is meant for this: Python's gc
    docs). Returns whether the parent is to unfreeze after the fork: not when objects were
    frozen before (gc.unfreeze would undo that freeze too, which is not ours to undo)."""
    ours = gc.get_freeze_count() == 0
    gc.collect()
    gc.freeze()
    return ours


def _line_stream(fd: int) -> TextIO:
    return open(  # the process's own stream, never closed
        fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )


# In the child: the parent's objects that must never be destroyed there (see below).
_PARENTS = []


def _own_exit_handlers() -> None:
    """In the child: drop the exit handlers and finalizers inherited from the parent,
    which are about the parent's objects, and keep the handlers a fresh `dbt` process
    has from its imports (those the build registers come after).

    A DuckDB database the parent holds open (one dbt-duckdb ran in the parent process,
    as a test runner may have) must not be closed in the child: its worker threads are
    the parent's, and closing it there crashed the child with SIGSEGV. The child keeps a
    reference to it, so that it is never destroyed before os._exit, and dbt-duckdb
    starts the child's build with none. The loop itself never opens one (its ticks
    record themselves through connections they close)."""
    atexit._clear()
    logging = sys.modules.get("logging")
    if logging is not None:
        atexit.register(logging.shutdown)
    process_util = sys.modules.get("multiprocessing.util")
    if process_util is not None:
        process_util._finalizer_registry.clear()  # as multiprocessing's forked children
        atexit.register(process_util._exit_function)
    duckdb_connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if duckdb_connections is not None:
        manager = duckdb_connections.DuckDBConnectionManager
        if manager._ENV is not None:
            _PARENTS.append(manager._ENV)
            manager._ENV = None
        atexit.register(manager.close_all_connections)


def _exit_code(main: Callable[[], int | None]) -> int:
    """main's exit code, as the interpreter would make it: SystemExit's code, a message
    in its place printed, with 1."""
    try:
        result = main()
    except SystemExit as exit_:
        result = exit_.code
        if result is not None and not isinstance(result, int):
            print(result, file=sys.stderr)
            return 1
    return 0 if result is None else result


def _close_fds_but(keep: tuple[int, ...]) -> None:
    """Close every descriptor above stderr but `keep`, as subprocess's close_fds does."""
    low = 3
    for fd in sorted(k for k in keep if k >= low):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def run_dbt_cli(args: list[str]) -> int:
    """Run dbt's command line in this process as the `dbt` executable does (click's
    standalone mode); its exit code."""
    from dbt.cli.main import cli

    sys.argv = ["dbt", *args]  # dbt records its command line from argv
    return _exit_code(lambda: cli.main(args=list(args), prog_name="dbt"))


def warm_macros(command: list[str], cwd: Path, env: Mapping[str, str] | None) -> None:
    """Compile here the macros of the manifest the last build wrote, so that the build
    forked next compiles only those edited since (dbt_macro_templates).

    The manifest is where this build's dbt writes: its `--project-dir` (else its working
    directory) and $DBT_TARGET_PATH of its environment, the loop's own with the step's
    variables on top. Under dbt's macro debugging (`DBT_MACRO_DEBUGGING`,
    `--macro-debugging`) nothing is warmed: dbt then compiles each macro with the
    debugging hooks on, which a template compiled here would lack. A speed-up only:
    whatever fails here leaves the build to compile its macros itself."""
    environ = {**os.environ, **(env or {})}
    if environ.get("DBT_MACRO_DEBUGGING") or "--macro-debugging" in command:
        return
    project = cwd / (dbt_option(command, "--project-dir") or ".")
    with contextlib.suppress(Exception):
        dbt_macro_templates.warm(
            settings.dbt_target_dir(project, environ) / "manifest.json"
        )


def dbt_option(args: Sequence[str], name: str) -> str | None:
    """The value of `name VALUE` or `name=VALUE` in a dbt command line, if given."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def launcher(echo: Callable[[str], None]) -> Launch:
    """A step launcher for the dbt command: forked when it can be, else started as a
    process of its own (with the reason echoed)."""

    def launch(
        command: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None,
        pass_fds: tuple[int, ...],
        popen: Callable[..., object],
    ) -> object:
        blocker = fork_blocker()
        if blocker is None:
            echo("dbt build: forked from the loop's process (dbt already imported)")
            warm_macros(command, cwd, env)
            args = command[1:]
            return start_forked(
                lambda: run_dbt_cli(args), cwd=cwd, env=env, pass_fds=pass_fds
            )
        echo(f"dbt build: started as a new process, not forked ({blocker})")
        return popen()

    return launch
