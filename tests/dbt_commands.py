"""The tests' dbt commands: dbt as its executable runs it, minus two fixed costs that a
few hundred commands in one `make test` pay again and again.

**Partial parsing across tests.** A dbt command parses the project first. With the
`partial_parse.msgpack` of an earlier parse in its target folder it re-reads only the files
that changed (`dbt parse` 2.9 s in all on a 2-core machine); without one, or when the
earlier parse had other `--vars` or another profile, it parses every file (6.8 s). Each
test has its own target folder and warehouse file, so every test's first dbt command, and
each change of `as_of`, used to parse everything: about 100 full parses in one `make test`.
`run` keeps the latest parse file of each (project, target, vars) in a cache of the test
process and puts it in the command's target folder first. For the profile to hash the same
across tests, dbt runs in the warehouse file's folder and is given the file's name
(`AUDIENCES_DUCKDB_PATH=warehouse.duckdb`): the profile keeps the path as written, and dbt
discards a parse made under another path. The project and profiles folders are passed
explicitly, since the working directory is no longer the repository. This changes
nothing dbt decides: a parse file is dbt's own, dbt checks every file's hash against it,
and re-parses what differs (a test that edits a copy of the project, or an environment
variable a macro reads); a parse file of another profile is simply not used. Only the
DuckDB target is rewritten: the PostgreSQL target's database name differs per test, so
its parse is never shared.

**dbt imported once.** Importing dbt takes 1.4 s of CPU. tests/dbt_fork_server.py imports
it once per pytest worker and forks a child per command, which runs `dbt.cli.main.cli` as
the `dbt` executable does, with the command's arguments, environment, working directory
and exit code, and exits (see that file). Commands with other options than
capture_output/text/check, or another dbt than this environment's, run as a subprocess.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scripts.run.warm_dbt import dbt_option
from tests.conftest import REPO_ROOT

PARSE_FILE = "partial_parse.msgpack"
DBT = Path(sys.executable).parent / "dbt"
_cache: Path | None = None


def _cache_dir() -> Path:
    """This process's cache. (One shared by both pytest-xdist workers was measured too:
    pytest took 10 min 19 s either way, since each worker meets its own vars first.)"""
    global _cache
    if _cache is None:
        _cache = Path(tempfile.mkdtemp(prefix="dbt-partial-parse-"))
        atexit.register(shutil.rmtree, _cache, True)
    return _cache


class _ForkServer:
    """This worker's tests/dbt_fork_server.py, started at its first command."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self.outputs = Path(tempfile.mkdtemp(prefix="dbt-fork-output-"))
        atexit.register(self.stop)

    def run(
        self, args: list[str], env: dict[str, str], cwd: Path, text: bool
    ) -> subprocess.CompletedProcess:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tests.dbt_fork_server"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    cwd=REPO_ROOT,
                )  # fmt: skip
            assert self.process.stdin
            assert self.process.stdout
            stdout, stderr = self.outputs / "stdout", self.outputs / "stderr"
            request = {"args": args[1:], "env": env, "cwd": str(cwd),
                       "stdout": str(stdout), "stderr": str(stderr)}  # fmt: skip
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
            if not reply:
                raise RuntimeError("tests/dbt_fork_server.py stopped")
            returncode = json.loads(reply)["returncode"]
            if text:
                out, err = stdout.read_text(), stderr.read_text()
            else:
                out, err = stdout.read_bytes(), stderr.read_bytes()
        return subprocess.CompletedProcess(args, returncode, out, err)

    def stop(self) -> None:
        if self.process is not None and self.process.stdin:
            self.process.stdin.close()
            self.process.wait()
        shutil.rmtree(self.outputs, ignore_errors=True)


_server: _ForkServer | None = None


def _run(
    args: list[str], env: dict[str, str], cwd: Path, kwargs: dict[str, Any]
) -> subprocess.CompletedProcess:
    """The command through the fork server when it can run it, else a subprocess."""
    global _server
    options = set(kwargs) - {"capture_output", "text", "check"}
    if options or not kwargs.get("capture_output"):
        return subprocess.run(args, env=env, cwd=cwd, **kwargs)
    if _server is None:
        _server = _ForkServer()
    result = _server.run(args, env, cwd, bool(kwargs.get("text")))
    if kwargs.get("check"):
        result.check_returncode()
    return result


def run(
    args: Sequence[str], env: Mapping[str, str], **kwargs: Any
) -> subprocess.CompletedProcess:
    """`subprocess.run(args, env=env, cwd=cwd or REPO_ROOT, **kwargs)` for a test's
    command; a dbt command is run as the module's doc says."""
    args, env = list(args), dict(env)
    cwd = Path(kwargs.pop("cwd", None) or REPO_ROOT)
    if not args or Path(args[0]) != DBT:  # not this environment's dbt
        return subprocess.run(args, env=env, cwd=cwd, **kwargs)
    target_dir = env.get("DBT_TARGET_PATH")
    target = dbt_option(args, "--target") or env.get("AUDIENCES_TARGET") or "dev"
    database = env.get("AUDIENCES_DUCKDB_PATH")
    if not (target_dir and target == "dev" and database):
        return _run(args, env, cwd, kwargs)
    project = (
        dbt_option(args, "--project-dir") or env.get("DBT_PROJECT_DIR") or REPO_ROOT
    )
    if dbt_option(args, "--project-dir") is None:
        args += ["--project-dir", str(project)]
    if dbt_option(args, "--profiles-dir") is None and not env.get("DBT_PROFILES_DIR"):
        args += ["--profiles-dir", str(REPO_ROOT)]
    database_path = Path(database)
    if not database_path.is_absolute():
        database_path = cwd / database_path
    env["AUDIENCES_DUCKDB_PATH"] = database_path.name
    key = hashlib.sha256(
        "\0".join(
            [str(Path(project).resolve()), target, dbt_option(args, "--vars") or "",
             database_path.name, env.get("DBT_PROFILES_DIR", "")]
        ).encode()
    ).hexdigest()  # fmt: skip
    parse_file = Path(target_dir) / PARSE_FILE
    cached = _cache_dir() / key
    if cached.is_file():
        parse_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, parse_file)
    result = _run(args, env, database_path.parent, kwargs)
    if parse_file.is_file():
        shutil.copyfile(parse_file, cached)
    return result
