"""A real receiver process per test, on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.receiver.signature import sign
from tests.receiver.sync_recording_launcher import SYNC_LOG_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
# Made per test session: no key literal in the repo.
SIGNING_KEY = "test-signing-" + secrets.token_hex(8)
WEBHOOK_PATH = "/webhooks/customerio"
_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class Receiver:
    """One `serve-webhooks` subprocess; stderr is collected on a thread.

    It runs through `sync_recording_launcher`, so `data_syncs()` shows which landing
    bytes were fsync'd, which reading the files back cannot (they come from the page cache).
    """

    def __init__(self, landing_dir: Path, args: list[str], env: dict[str, str]):
        self.landing_dir = landing_dir
        self.args = args
        self.sync_log = landing_dir.parent / f"{landing_dir.name}-syncs.log"
        self.env = {**env, SYNC_LOG_ENV: str(self.sync_log)}
        self.stderr_lines: list[str] = []
        self.base_url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> Receiver:
        self.stderr_lines = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.receiver.sync_recording_launcher",
                "--landing-dir",
                str(self.landing_dir),
                "--port",
                "0",
                *self.args,
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = self._reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr_lines):
                match = _LISTENING.search(line)
                if match:
                    self.base_url = match.group(1)
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"receiver did not start: {self.stderr}")

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    @property
    def url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stop it and wait for it to end; its last stderr lines are read by then (the
        reader thread ends at the pipe's end), so a test may assert on them at once."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def data_syncs(self) -> list[tuple[int, str]]:
        """(file size at the sync, file name) of every sync of a `.part` landing file."""
        if not self.sync_log.exists():
            return []
        syncs = []
        for entry in self.sync_log.read_text().splitlines():
            _call, size, path = entry.split("\t", 2)
            if path.endswith(".part"):
                syncs.append((int(size), Path(path).name))
        return syncs

    def finalized_files(self) -> list[Path]:
        return sorted(self.landing_dir.glob("*.ndjson"))

    def part_files(self) -> list[Path]:
        return sorted((self.landing_dir / ".incoming").glob("*.part"))

    def landed_lines(self, include_parts: bool = False) -> list[bytes]:
        files = self.finalized_files() + (self.part_files() if include_parts else [])
        lines: list[bytes] = []
        for path in files:
            data = path.read_bytes()
            assert data.endswith(b"\n"), f"{path.name} ends with a torn line"
            lines.extend(data.splitlines())
        return lines


def signed_headers(body: bytes, key: str = SIGNING_KEY, ts: str | None = None) -> dict:
    timestamp = ts or str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-CIO-Timestamp": timestamp,
        "X-CIO-Signature": sign(key.encode(), timestamp, body),
    }


def post_signed(
    session: requests.Session | None, url: str, body: bytes, **kwargs
) -> requests.Response:
    sender = session or requests
    return sender.post(
        url, data=body, headers=signed_headers(body), timeout=10, **kwargs
    )


@pytest.fixture
def receiver_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CIO_WEBHOOK_SIGNING_KEY"}
    env["CIO_WEBHOOK_SIGNING_KEY"] = SIGNING_KEY
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def make_receiver(tmp_path: Path, receiver_env: dict[str, str]) -> Iterator:
    started: list[Receiver] = []

    def factory(*args: str, landing_dir: Path | None = None, env=None) -> Receiver:
        receiver = Receiver(
            landing_dir or tmp_path / "landing", list(args), env or receiver_env
        )
        started.append(receiver)
        return receiver.start()

    yield factory
    for receiver in started:
        if receiver.process is not None and receiver.process.poll() is None:
            receiver.kill()
