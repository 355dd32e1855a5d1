"""A step forked from a warm process is set up as subprocess.Popen sets up a step
(scripts/run/warm_dbt.py): output on one pipe, exit codes, environment, working directory,
only the descriptors passed, signals as a fresh process takes them, a process group of its
own; and a process with more than one thread is not forked.

The children here run small Python functions, not dbt (tests/dbt/test_storage_vacuum.py
runs real builds through the loop)."""

from __future__ import annotations

import atexit
import gc
import json
import locale
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts.run import warm_dbt
from scripts.run.steps import run_step
from tests.conftest import REPO_ROOT


def _run(main, **kwargs) -> tuple[int, list[str]]:
    child = warm_dbt.start_forked(main, cwd=kwargs.pop("cwd", Path.cwd()), **kwargs)
    lines = [line.rstrip("\n") for line in child.stdout]
    return child.wait(), lines


def test_output_exit_code_environment_and_directory(tmp_path: Path) -> None:
    def main() -> int:
        print("to stdout", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        print(f"cwd={os.getcwd()} x={os.environ.get('WARM_TEST_X')}", flush=True)
        print(f"own group={os.getpgid(0) == os.getpid()}", flush=True)
        return 3

    code, lines = _run(main, cwd=tmp_path, env={"WARM_TEST_X": "set"})
    assert code == 3
    assert lines == [
        "to stdout",
        "to stderr",
        f"cwd={tmp_path} x=set",
        "own group=True",
    ]
    assert "WARM_TEST_X" not in os.environ  # the parent's own is untouched


@pytest.mark.parametrize(
    ("ending", "code", "said"),
    [
        (lambda: None, 0, None),
        (lambda: sys.exit(4), 4, None),
        (lambda: sys.exit("a message"), 1, "a message"),
        (lambda: 1 / 0, 1, "ZeroDivisionError: division by zero"),
    ],
)
def test_exit_codes_as_the_interpreter_makes_them(ending, code, said) -> None:
    got, lines = _run(ending)
    assert got == code
    if said:
        assert said in lines
    else:
        assert lines == []


def test_only_the_descriptors_passed_stay_open(tmp_path: Path) -> None:
    kept = os.open(tmp_path / "kept", os.O_WRONLY | os.O_CREAT)
    other = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT)
    try:

        def main() -> None:
            os.write(kept, b"written by the child")
            try:
                os.fstat(other)
            except OSError:
                print("other closed")

        code, lines = _run(main, pass_fds=(kept,))
    finally:
        os.close(kept)
        os.close(other)
    assert (code, lines) == (0, ["other closed"])
    assert (tmp_path / "kept").read_bytes() == b"written by the child"


def test_sigterm_ends_the_child_whatever_the_parent_handles() -> None:
    """The parent's handler (a tick's, which passes signals on) is not the child's."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _: received.append(signum))
    try:

        def main() -> None:
            print("ready", flush=True)
            signal.pause()
            print("not reached")

        child = warm_dbt.start_forked(main, cwd=Path.cwd())
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGTERM)
        assert child.wait() == -signal.SIGTERM
        child.send_signal(signal.SIGTERM)  # ended: nothing to signal, no error
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == []


def test_a_signal_while_the_child_is_reaped_is_not_sent_to_its_old_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tick forwards SIGTERM to its step (steps._passed_on). One that arrives just as
    the ended child is reaped, before its return code is noted, must not be sent to the
    pid, which the system may already have given to another process."""
    child = warm_dbt.start_forked(lambda: 0, cwd=Path.cwd())
    handled: list[int | None] = []
    sent_to_child: list[int] = []
    real_kill, real_wait4 = os.kill, os.wait4

    def forward(_signum: int, _frame: object) -> None:  # as steps._passed_on does
        handled.append(child.returncode)
        child.send_signal(signal.SIGTERM)

    def kill(pid: int, signum: int) -> None:
        if pid == child.pid:
            sent_to_child.append(signum)
        real_kill(pid, signum)

    def wait4_then_a_signal(pid: int, options: int):
        reaped = real_wait4(pid, options)
        real_kill(os.getpid(), signal.SIGTERM)  # its handler runs before wait4 returns
        return reaped

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(os, "wait4", wait4_then_a_signal)
    previous = signal.signal(signal.SIGTERM, forward)
    try:
        assert child.wait() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert handled == [None]  # it ran in the window, before the return code
    assert sent_to_child == []


def test_sigint_is_a_keyboard_interrupt_in_the_child_even_if_the_parent_ignores_it() -> (
    None
):
    """As in a fresh Python (and the `dbt` command, which stops its queries on it)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:

        def main() -> None:
            print("ready", flush=True)
            # Not signal.pause(): a SIGINT handled between the print and pause() left
            # pause() waiting forever. Each short sleep ends in Python's check for it.
            while True:
                time.sleep(0.05)

        child = warm_dbt.start_forked(main, cwd=Path.cwd())
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGINT)
        rest = child.stdout.read()
        assert child.wait() == 1
    finally:
        signal.signal(signal.SIGINT, previous)
    assert rest.rstrip().endswith("KeyboardInterrupt")


def test_the_parent_s_exit_handlers_stay_the_parent_s(tmp_path: Path) -> None:
    """They are about the parent's objects (a DuckDB instance the test runner had open
    crashed the child with SIGSEGV); the child runs its own."""
    ran = tmp_path / "ran"

    def parents() -> None:
        with ran.open("a") as out:
            out.write(f"parent's handler in {os.getpid()}\n")

    atexit.register(parents)
    try:

        def main() -> None:
            atexit.register(lambda: print("the child's own handler ran", flush=True))

        code, lines = _run(main)
    finally:
        atexit.unregister(parents)
    assert (code, lines) == (0, ["the child's own handler ran"])
    assert not ran.exists()


def test_the_child_closes_dbt_duckdb_s_database_at_exit(tmp_path: Path) -> None:
    """dbt-duckdb closes (and so checkpoints) its database in an exit handler registered
    when it is imported, in the loop: the child must run it, or the build's last writes
    stay in the write-ahead log (a copy of the file would lose them)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    closed = tmp_path / "closed"

    class Database:  # stands for dbt-duckdb's environment, which holds the database
        def __del__(self) -> None:
            closed.write_text("closed")

    def main() -> None:
        DuckDBConnectionManager._ENV = Database()

    assert _run(main) == (0, [])
    assert closed.read_text() == "closed"


def test_a_database_the_parent_holds_open_is_left_alone(tmp_path: Path) -> None:
    """A dbt-duckdb database open in the parent (a test runner that ran dbt in-process
    first) has its worker threads in the parent: closing it in the child crashed the
    child with SIGSEGV, in CI."""
    import duckdb
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    class Environment:  # dbt-duckdb's, holding a database whose threads have worked
        def __init__(self) -> None:
            self.conn = duckdb.connect(str(tmp_path / "parent.duckdb"))
            self.conn.execute("create table t as select * from range(3000000)")
            self.conn.execute("select sum(range) from t").fetchall()

    previous = DuckDBConnectionManager._ENV
    DuckDBConnectionManager._ENV = Environment()
    try:
        code, lines = _run(lambda: print(DuckDBConnectionManager._ENV))
        # The parent's database is untouched by the child's exit.
        assert DuckDBConnectionManager._ENV.conn.execute(
            "select count(*) from t"
        ).fetchone() == (3000000,)
    finally:
        DuckDBConnectionManager._ENV.conn.close()
        DuckDBConnectionManager._ENV = previous
    assert (code, lines) == (0, ["None"])  # the child's build starts with none


def test_output_is_utf_8_whatever_the_locale() -> None:
    """The parent reads UTF-8; the child writes it even under the C locale's ASCII."""
    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode makes every stream UTF-8")

    def main() -> None:
        print("café → ✓")

    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getpreferredencoding(False) != "UTF-8"
        assert _run(main) == (0, ["café → ✓"])
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


def test_a_step_whose_output_cannot_be_passed_on_is_stopped_and_reaped(
    tmp_path: Path,
) -> None:
    """An echo that raises (the tick's own stdout gone) must not leave the step
    running, blocked on a full pipe with the lock, nor a zombie."""
    started: list[warm_dbt.ForkedProcess] = []

    def launch(command, *, cwd, env, pass_fds, popen):
        def main() -> None:
            print("one line", flush=True)
            signal.pause()

        started.append(warm_dbt.start_forked(main, cwd=cwd))
        return started[0]

    def echo(line: str) -> None:
        if line == "one line":
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        run_step(
            "dbt build", ["dbt"], display="dbt", cwd=tmp_path, echo=echo, launch=launch
        )
    assert started[0].returncode == -signal.SIGTERM  # stopped, and waited for


def test_a_step_forked_through_run_step(tmp_path: Path) -> None:
    """run_step reads a forked step as it reads a process: its lines and its code."""
    echoed: list[str] = []

    def launch(command, *, cwd, env, pass_fds, popen):
        return warm_dbt.start_forked(
            lambda: print(f"{command[1]} in {os.getcwd()}") or 6, cwd=cwd, env=env
        )

    result = run_step(
        "dbt build", ["dbt", "build"], display="dbt build", cwd=tmp_path,
        echo=echoed.append, launch=launch,
    )  # fmt: skip
    assert (result.exit_code, result.output) == (6, [f"build in {tmp_path}"])
    assert echoed == ["==> dbt build: dbt build", f"build in {tmp_path}"]


def test_a_process_with_threads_is_not_forked() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    echoed: list[str] = []
    try:
        assert warm_dbt.fork_blocker() is not None
        started = warm_dbt.launcher(echoed.append)(
            ["dbt", "build"], cwd=Path.cwd(), env=None, pass_fds=(),
            popen=lambda: "started as a process",
        )  # fmt: skip
    finally:
        release.set()
        thread.join()
    assert started == "started as a process"
    assert len(echoed) == 1
    assert echoed[0].startswith("dbt build: started as a new process, not forked (")
    assert "threads)" in echoed[0]


def test_the_child_inherits_a_frozen_heap_and_the_parent_collects_as_before() -> None:
    """The objects alive at the fork are frozen for the child's collector (its full
    collections skip imported dbt); the parent's freeze is undone once it has forked."""
    assert gc.get_freeze_count() == 0
    assert _run(lambda: print(gc.get_freeze_count() > 0)) == (0, ["True"])
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_before_the_fork_is_kept_in_the_parent() -> None:
    """Objects the parent had frozen itself stay frozen after the fork (unfreezing would
    undo that freeze too)."""
    gc.freeze()
    try:
        # (Counts only: a frozen object freed since leaves the count.)
        assert _run(lambda: print(gc.get_freeze_count() > 0)) == (0, ["True"])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_preload_builds_every_schema_dbt_validates_with_so_a_child_does_not() -> None:
    """After preload, the schemas of VALIDATED_CLASSES and of the adapter's credentials
    come from dbt's cache: building one more raises here. In a fresh interpreter, so
    that no earlier test of this process built them."""
    script = (
        "import dbt_common.dataclass_schema as schemas\n"
        "from scripts.run import warm_dbt\n"
        "warm_dbt.preload('duckdb')\n"
        "def built_again(cls, *args, **kwargs):\n"
        "    raise AssertionError(f'{cls.__name__} schema built again')\n"
        "schemas.build_json_schema = built_again\n"
        "import dbt.adapters.duckdb as duckdb_adapter\n"
        "classes = [warm_dbt._class(name) for name in warm_dbt.VALIDATED_CLASSES]\n"
        "for cls in [*classes, duckdb_adapter.Plugin.credentials]:\n"
        "    assert cls.json_schema()['type'] == 'object', cls\n"
        "print(len(classes) + 1, 'cached')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(len(warm_dbt.VALIDATED_CLASSES) + 1), "cached"]
    # An upgrade of dbt that renames one leaves a child to build it: say which.
    assert warm_dbt.missing_validated_classes() == []


# For the scripts below: `dbt ARGS` in a child forked from the script's process, as the
# loop forks its builds; returns what `seen()` (a set) gained in the child during the
# command, sorted.
_FORKED_DBT = (
    "import json\n"
    "def forked_dbt(*args, seen):\n"
    "    def main():\n"
    "        before = seen()\n"
    "        code = warm_dbt.run_dbt_cli([*args, '--no-use-colors'])\n"
    "        print(json.dumps(sorted(seen() - before)), flush=True)\n"
    "        return code\n"
    "    child = warm_dbt.start_forked(main, cwd=Path.cwd())\n"
    "    lines = list(child.stdout)\n"
    "    assert child.wait() == 0, ''.join(lines[-40:])\n"
    "    return json.loads(lines[-1])\n"
)


def _fresh_interpreter(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`script` run by a new Python (nothing of dbt imported or cached yet), with its own
    warehouse, target and log folders under tmp_path, on this project's DuckDB target."""
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    env.pop("AUDIENCES_TARGET", None)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, check=False, timeout=300,
    )  # fmt: skip


def test_after_preload_a_full_parse_of_this_project_builds_no_schema(tmp_path) -> None:
    """A full parse (a new target folder: what every replay with another as_of, and
    every test's first dbt command, does) validates each kind of file the project has;
    after preload, it builds none of their schemas (1.2 s of a forked full parse's 4.8 s
    on 2 cores). A dbt upgrade that validates with a class not in VALIDATED_CLASSES
    fails here, naming it."""
    script = (
        "import sys\n"
        "import dbt_common.dataclass_schema as schemas\n"
        "from scripts.run import warm_dbt\n"
        "warm_dbt.preload('duckdb')\n"
        "def built_again(cls, *args, **kwargs):\n"
        "    print(f'built during the parse: {cls.__module__}:{cls.__qualname__}')\n"
        "    raise AssertionError(cls)\n"
        "schemas.build_json_schema = built_again\n"
        "sys.exit(warm_dbt.run_dbt_cli(['parse', '--no-use-colors']))\n"
    )
    run = _fresh_interpreter(script, tmp_path)
    assert "built during the parse" not in run.stdout, run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "target" / "manifest.json").is_file()


def test_after_preload_dbt_commands_compile_no_serializer(tmp_path) -> None:
    """dbt's dataclasses compile their from_dict/to_dict on first use (mashumaro's lazy
    compilation): some 250 of them in every small command, 0.3-0.6 s of it. After
    preload, a forked full parse and a forked run that reads the saved parse, runs a
    model and writes every artifact compile none (scripts/run/dbt_serializers.py). The
    counter is shown to see a lazy compile: a class made after preload compiles at its
    first use, once."""
    script = (
        "import dataclasses, sys\n"
        "from pathlib import Path\n"
        "from mashumaro.core.meta.code import builder\n"
        "from scripts.run import warm_dbt\n"
        "warm_dbt.preload('duckdb')\n"
        "compiled = []\n"
        "for name in ('add_unpack_method', 'add_pack_method'):\n"
        "    def counted(self, *args, _compile=getattr(builder.CodeBuilder, name),\n"
        "                **kwargs):\n"
        "        compiled.append(f'{self.cls.__qualname__} ({self.format_name})')\n"
        "        return _compile(self, *args, **kwargs)\n"
        "    setattr(builder.CodeBuilder, name, counted)\n"
    )
    script += _FORKED_DBT
    script += (
        "for args in [('parse',), ('run', '--select', 'stg_shop__orders')]:\n"
        "    new = forked_dbt(*args, seen=lambda: set(compiled))\n"
        "    print(f'compiled in {args[0]}: {new}')\n"
        "from dbt_common.dataclass_schema import dbtClassMixin\n"
        "@dataclasses.dataclass\n"
        "class MadeAfterPreload(dbtClassMixin):\n"
        "    name: str\n"
        "defined = len(compiled)\n"
        "assert MadeAfterPreload.from_dict({'name': 'x'}).name == 'x'\n"
        "first_use = len(compiled)\n"
        "MadeAfterPreload.from_dict({'name': 'y'})\n"
        "print(f'compiled at first use: {compiled[defined:first_use]}')\n"
        "print(f'compiled at second use: {compiled[first_use:]}')\n"
    )
    run = _fresh_interpreter(script, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.splitlines() == [
        "compiled in parse: []",
        "compiled in run: []",
        "compiled at first use: ['MadeAfterPreload (dict)']",
        "compiled at second use: []",
    ], run.stdout[-3000:]
    assert (tmp_path / "target" / "run_results.json").is_file()


def test_after_warming_a_forked_dbt_command_compiles_no_macro(tmp_path) -> None:
    """dbt compiles each macro it calls on first use, in every process (dbt_common's
    template cache): a forked command of this project compiled some 200, about 1 s of
    Python. Warmed from the last manifest in the parent (as the loop does before each
    build), a forked `dbt run` that runs a model and its materialization compiles none
    (scripts/run/dbt_macro_templates.py). Without the warming, the same run compiles
    them: the counter sees what it counts."""
    script = (
        "from pathlib import Path\n"
        "from dbt_common.clients.jinja import template_cache\n"
        "from scripts.run import dbt_macro_templates, warm_dbt\n"
        "from scripts.settings import dbt_target_dir\n"
        "warm_dbt.preload('duckdb')\n"
    )
    script += _FORKED_DBT
    script += (
        "def compiled(*args):\n"
        "    return len(forked_dbt(*args, seen=lambda: set(template_cache.file_cache)))\n"
        "run = ('run', '--select', 'stg_shop__orders')\n"
        "compiled('parse')\n"
        "cold = compiled(*run)\n"
        "warmed = dbt_macro_templates.warm(dbt_target_dir() / 'manifest.json')\n"
        "print(cold, warmed, compiled(*run))\n"
    )
    run = _fresh_interpreter(script, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cold, warmed, warm = map(int, run.stdout.splitlines()[-1].split())
    # The run's model, its materialization and what they call: 45 macros here; the
    # manifest lists every macro of dbt, the adapter and the project (575 here).
    assert (cold > 30, warmed > 400, warm) == (True, True, 0), run.stdout[-3000:]


def test_the_loop_s_launcher_warms_from_the_step_s_target(tmp_path: Path) -> None:
    """Before it forks a build, the loop's launcher compiles the macros of the
    manifest where that build's dbt writes: $DBT_TARGET_PATH of the step's environment,
    relative to its working directory (scripts/settings.py dbt_target_dir). In a fresh
    interpreter: a pytest worker runs threads, and the launcher forks no process that
    does."""
    macro = "{% macro from_the_step_s_target() %}1{% endmacro %}"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "manifest.json").write_text(
        json.dumps({"macros": {"m": {"name": "m", "macro_sql": macro}}})
    )
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from dbt_common.clients.jinja import template_cache\n"
        "from scripts.run import warm_dbt\n"
        "def popen():\n"
        "    raise SystemExit('not forked')\n"
        "child = warm_dbt.launcher(print)(\n"
        f"    ['dbt', '--version'], cwd=Path({str(tmp_path)!r}),\n"
        "    env={**os.environ, 'DBT_TARGET_PATH': 'elsewhere'}, pass_fds=(),\n"
        "    popen=popen)\n"
        "print('warmed:', sorted(template_cache.file_cache))\n"
        "child.stdout.read()\n"
        "assert child.wait() == 0\n"
    )
    run = _fresh_interpreter(script, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"warmed: {[macro]}" in run.stdout.splitlines(), run.stdout[-3000:]


def test_the_loop_s_launcher_warms_where_the_build_writes_and_never_stops_it(
    tmp_path: Path,
) -> None:
    """The manifest the launcher warms from is where the forked build's dbt writes:
    under the command's --project-dir, whatever the working directory, at the loop's
    own $DBT_TARGET_PATH when the step sets none. Under DBT_MACRO_DEBUGGING it warms
    nothing (dbt compiles each macro with debugging hooks then). And a manifest it
    cannot read (here nested deeper than the JSON parser recurses) still forks the
    build: warming is a speed-up, never a reason for a tick to fail. (Red team,
    2026-12-07: the launcher read <cwd>/target and ignored the loop's environment, and
    a RecursionError from that file ended every tick before its build.)"""
    macro = "{% macro from_the_project_s_target() %}1{% endmacro %}"
    project = tmp_path / "project"
    (project / "loop_target").mkdir(parents=True)
    manifest = project / "loop_target" / "manifest.json"
    manifest.write_text(
        json.dumps({"macros": {"m": {"name": "m", "macro_sql": macro}}})
    )
    (tmp_path / "elsewhere").mkdir()
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from dbt_common.clients.jinja import template_cache\n"
        "from scripts.run import warm_dbt\n"
        "os.environ['DBT_TARGET_PATH'] = 'loop_target'\n"
        "def popen():\n"
        "    raise SystemExit('not forked')\n"
        "def build(step_env):\n"
        "    template_cache.file_cache.clear()\n"
        "    child = warm_dbt.launcher(lambda line: None)(\n"
        f"        ['dbt', 'debug', '--project-dir', {str(project)!r}, '--config-dir'],\n"
        f"        cwd=Path({str(tmp_path / 'elsewhere')!r}), env=step_env,\n"
        "        pass_fds=(), popen=popen)\n"
        "    child.stdout.read()\n"
        "    print(child.wait(), sorted(template_cache.file_cache))\n"
        "build({'AUDIENCES_KEYS_VERIFIED_BEFORE': ''})\n"
        "build({'DBT_MACRO_DEBUGGING': '1'})\n"
        f"Path({str(manifest)!r}).write_text("
        "'{\"macros\": ' + '[' * 200000 + ']' * 200000 + '}')\n"
        "build(None)\n"
    )
    run = _fresh_interpreter(script, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.splitlines() == [
        f"0 {[macro]}",
        "0 []",
        "0 []",
    ], run.stdout[-3000:]
