"""Fixtures for the scheduled tick: a webhook receiver, and the real `audiences run`
command started as its own process (as cron or an orchestrator would start it)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.alerts.webhook_receiver import WebhookReceiver
from tests.conftest import REPO_ROOT

WRITE_KEY = "wk-test-" + secrets.token_hex(8)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Outcome:
    code: int
    output: str
    stderr: str


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh DuckDB file, or a fresh database on the session's PostgreSQL server; list
    it before `tick`, which copies the environment."""
    request.getfixturevalue("duckdb_path")
    if request.param == "postgres":
        request.getfixturevalue("postgres_env")
        monkeypatch.setenv("AUDIENCES_TARGET", "postgres")
    return str(request.param)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


class Tick:
    """`audiences run` in a child process, with its lock and dbt artifacts in tmp_path."""

    def __init__(self, tmp_path: Path, duckdb_path: Path):
        self.tmp_path = tmp_path
        self.target_dir = tmp_path / "target"
        self.target_dir.mkdir()
        self.env = {
            **os.environ,
            "AUDIENCES_DUCKDB_PATH": str(duckdb_path),
            "AUDIENCES_RUN_LOCK": str(tmp_path / "run.lock"),
            "AUDIENCES_DBT_RUN_RESULTS": str(self.target_dir / "run_results.json"),
            "SEGMENT_WRITE_KEY": WRITE_KEY,
            # Nothing may be sent in these tests unless one sets a receiver.
            "SEGMENT_HOST": f"http://127.0.0.1:{closed_port()}",
        }
        self.env.pop("AUDIENCES_ALERT_WEBHOOK_URL", None)

    def run(self, *args: str, cwd: Path = REPO_ROOT) -> Outcome:
        done = subprocess.run(
            [sys.executable, "-m", "scripts", "run", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The tick started and left running, for a test that signals it."""
        return subprocess.Popen(
            [sys.executable, "-m", "scripts", "run", *args],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def dbt_artifacts(self, results: list[tuple[str, str, str]]) -> None:
        """A run_results.json + manifest.json as dbt writes them: (unique_id, status,
        data-health check or '')."""
        nodes = {}
        for unique_id, _, check in results:
            node: dict[str, object] = {
                "resource_type": "test" if unique_id.startswith("test.") else "model",
                "name": unique_id.split(".")[-1],
                "tags": ["data_health"] if check else [],
                "config": {"tags": ["data_health"] if check else []},
            }
            if check:
                node["config"] = {"tags": ["data_health"], "meta": {"check": check}}
            nodes[unique_id] = node
        (self.target_dir / "manifest.json").write_text(json.dumps({"nodes": nodes}))
        (self.target_dir / "run_results.json").write_text(
            json.dumps(
                {
                    "results": [
                        {
                            "unique_id": unique_id,
                            "status": status,
                            "message": f"Got 1 result, configured to fail if != 0 ({status})",
                        }
                        for unique_id, status, _ in results
                    ]
                }
            )
        )


@pytest.fixture
def tick(tmp_path: Path, duckdb_path: Path) -> Tick:
    return Tick(tmp_path, duckdb_path)
