"""Helpers for the loader tests: run `audiences load …` for real and read what landed."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from scripts.cli import main
from scripts.warehouse import connect

SUMMARY = re.compile(
    r"^(?P<loader>[\w-]+): read (?P<read>\d+) = loaded (?P<loaded>\d+) \+ duplicate "
    r"(?P<duplicate>\d+) \+ rejected (?P<rejected>\d+) \(files: (?P<files_loaded>\d+) "
    r"loaded, (?P<files_skipped>\d+) skipped unchanged\) in [\d.]+s"
)


@dataclass
class LoadResult:
    exit_code: int
    output: str
    counts: dict[str, int]


@pytest.fixture(params=["dev", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, duckdb_path: Path) -> str:
    """Each core test runs on the DuckDB file and on the real PostgreSQL server."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_env")
    return request.param


def run_load(
    loader: str, paths: Sequence[Path | str], target: str, *extra: str
) -> LoadResult:
    result = CliRunner().invoke(
        main,
        ["load", loader, *map(str, paths), "--target", target, *extra],
        catch_exceptions=False,
    )
    output = result.stdout + (result.stderr or "")
    lines = [line for line in result.stdout.splitlines() if SUMMARY.match(line)]
    counts = {}
    if lines:
        match = SUMMARY.match(lines[-1])
        counts = {k: int(v) for k, v in match.groupdict().items() if k != "loader"}
    return LoadResult(result.exit_code, output, counts)


def query(target: str, sql: str, params: Sequence[object] | None = None) -> list[tuple]:
    wh = connect(target)
    try:
        return wh.query(sql, params)
    finally:
        wh.close()


def event(event_id: str = "01J9ZK3M4Q8R2T6V0W1X2Y3Z4A", **overrides: object) -> dict:
    """A reporting-webhook email click shaped like docs/customerio-webhooks.md §1."""
    body: dict = {
        "event_id": event_id,
        "object_type": "email",
        "metric": "clicked",
        "timestamp": 1727712000,
        "data": {
            "campaign_id": 12,
            "action_id": 87,
            "delivery_id": "RAEC9gFXk2v1abcDEF-ghiJK==",
            "identifiers": {"id": "u_1001", "email": "ana@example.org", "cio_id": "a1"},
            "recipient": "ana@example.org",
            "href": "https://example.org/deals",
            "link_id": 4,
            "machine": False,
        },
    }
    body.update(overrides)
    return body


def ndjson(*records: object) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def write(path: Path, content: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


# Set by .ci/run where a tmpfs can be mounted: then a test that cannot mount fails.
REQUIRE_TMPFS_ENV = "AUDIENCES_REQUIRE_TMPFS"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mounts a tmpfs of the given size (e.g. "64k") and returns its folder.

    `owner` (a user name) gets the disk, in a folder that user can reach: the
    PostgreSQL server runs as `postgres` and cannot enter pytest's private tmp_path.
    """
    mounted: list[Path] = []

    def mount(size: str, owner: str | None = None) -> Path:
        if owner is None:
            folder = tmp_path / f"disk-{len(mounted)}"
            folder.mkdir()
        else:
            folder = Path(tempfile.mkdtemp(prefix="audiences-disk-"))
            folder.chmod(0o755)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
            if os.environ.get(REQUIRE_TMPFS_ENV):
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(folder)
        if owner is not None:
            shutil.chown(folder, owner, owner)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)
        if not folder.is_relative_to(tmp_path):
            with contextlib.suppress(OSError):
                folder.rmdir()
