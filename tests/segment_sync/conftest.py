"""Fixtures for the Segment sync: a real receiver on 127.0.0.1, a warehouse per engine,
and a runner for the real `sync segment` command (in-process or as a subprocess)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.fakes.segment_receiver import SegmentReceiver
from scripts.segment_sync.command import sync
from scripts.warehouse import Warehouse, connect
from tests.conftest import REPO_ROOT
from tests.segment_sync import inputs

# Made per test session: no key literal in the repo, and leak checks search for it.
WRITE_KEY = "wk-test-" + secrets.token_hex(8)
# Fast failure paths: the library's first retry is immediate, then 0.5 s, 1 s, ...
FAST = ["--max-retries", "4", "--timeout", "5", "--max-rate-limit-seconds", "30"]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def receiver() -> Iterator[SegmentReceiver]:
    with SegmentReceiver(WRITE_KEY) as rec:
        yield rec


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each core test runs on a fresh DuckDB file and on a fresh PostgreSQL database."""
    request.getfixturevalue("duckdb_path")
    if request.param == "postgres":
        request.getfixturevalue("postgres_env")
        monkeypatch.setenv("AUDIENCES_TARGET", "postgres")
    return str(request.param)


@pytest.fixture
def duck(duckdb_path: Path) -> str:
    """DuckDB only: engine-independent behaviour (guardrails, options) runs once."""
    return "duckdb"


@pytest.fixture(autouse=True)
def _no_project_run_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repo's own target/run_results.json must not leak into these tests."""
    monkeypatch.setenv(
        "AUDIENCES_DBT_RUN_RESULTS", str(tmp_path / "no-run-results.json")
    )


class Sync:
    """Runs the real command against the receiver, and opens the warehouse between runs."""

    def __init__(self, receiver: SegmentReceiver, tmp_path: Path):
        self.receiver = receiver
        self.tmp_path = tmp_path

    def env(self, write_key: str | None = WRITE_KEY) -> dict[str, str]:
        env = {"SEGMENT_HOST": self.receiver.url, "SEGMENT_WRITE_KEY": write_key or ""}
        return env

    def run(self, *args: str, write_key: str | None = WRITE_KEY) -> Outcome:
        result = CliRunner().invoke(
            sync,
            ["segment", *FAST, *args],
            env=self.env(write_key),
            catch_exceptions=False,
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def popen(self, *args: str, write_key: str | None = WRITE_KEY) -> subprocess.Popen:
        env = {**os.environ, **self.env(write_key)}
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.segment_sync", "segment", *FAST, *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wh(self) -> Warehouse:
        return connect()

    def members(self, members: list[tuple[str, str]], **kwargs: object) -> None:
        with self.wh() as wh:
            inputs.set_members(wh, members, **kwargs)  # type: ignore[arg-type]
            if not wh.table_exists("analytics", "sync_segment__audience_exits"):
                inputs.set_exits(wh, [])

    def exits(self, exits: list[tuple[str, str, str]]) -> None:
        with self.wh() as wh:
            inputs.set_exits(wh, exits)

    def state(self) -> set[tuple[str, str]]:
        """(audience_key, user_id) that Segment currently holds as members."""
        with self.wh() as wh:
            return {
                (k, u)
                for k, u in wh.query(
                    "select audience_key, user_id from segment_sync.audience_state "
                    "where is_member"
                )
            }

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.wh() as wh:
            return wh.query(sql, params)


@pytest.fixture
def sync_cli(receiver: SegmentReceiver, tmp_path: Path) -> Sync:
    return Sync(receiver, tmp_path)


def transitions(receiver: SegmentReceiver) -> list[tuple[str, str, str, object]]:
    """What Segment saw, one tuple per distinct message: (type, user, audience, value)."""
    seen = []
    for message in receiver.messages().values():
        if message["type"] == "identify":
            ((key, value),) = message["traits"].items()
            seen.append(("identify", message["userId"], key, value))
        else:
            props = message["properties"]
            seen.append(
                (
                    message["event"],
                    message["userId"],
                    props["audience_key"],
                    props.get("exit_reason"),
                )
            )
    return sorted(seen, key=repr)


def expected_enters(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str, object]]:
    out = []
    for key, user in pairs:
        out.append(("identify", user, key, True))
        out.append(("Audience Entered", user, key, None))
    return sorted(out, key=repr)
