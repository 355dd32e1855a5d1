"""A real, throwaway PostgreSQL server for the tests (Debian's postgresql package).

`.ci/run` installs the package; this module starts one private cluster per test session on
127.0.0.1 and a free port, and stops it at the end. Tests that need it take the
`postgres_env` fixture (a fresh database), or a copy of a built one (`small_postgres_copy`
in tests/dbt/conftest.py); both yield the libpq variables the `postgres` target reads.

With AUDIENCES_TEST_POSTGRES_PORT set, the sessions share the server already listening on
that port of 127.0.0.1 instead (`make mutate` starts one for an area whose mutants would
otherwise each pay a server's start-up); each test still gets its own database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root, so root runs the server as the postgres user."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


SHARED_PORT_VARIABLE = "AUDIENCES_TEST_POSTGRES_PORT"


def _server_env(port: int) -> dict[str, str]:
    return {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGUSER": "postgres",
        "PGPASSWORD": "",
        "PGDATABASE": "postgres",
    }


@contextlib.contextmanager
def running_server() -> Iterator[dict[str, str]]:
    shared_port = os.environ.get(SHARED_PORT_VARIABLE)
    if shared_port:
        yield _server_env(int(shared_port))
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "install Debian's postgresql package (.ci/run does)"
        )
    base = Path(tempfile.mkdtemp(prefix="audiences-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-o",
                opts,
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield _server_env(port)
    finally:
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_database(
    env: dict[str, str], name: str, template: str | None = None
) -> dict[str, str]:
    """A fresh database on the server (a copy of `template`, if given: PostgreSQL copies
    a built database in well under a second, where building it takes a minute); returns
    the env that points at it."""
    import psycopg2

    conn = psycopg2.connect(
        host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{name}"')
        copy_of = f' template "{template}"' if template else ""
        cur.execute(f'create database "{name}"{copy_of}')
    conn.close()
    return {**env, "PGDATABASE": name}
