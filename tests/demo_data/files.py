"""Reading the generator's output the plain way (json + gzip), independent of its code."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    assert data.endswith(b"\n"), f"{path} does not end with a newline"
    return data[:-1].split(b"\n")


def parse(line: bytes) -> dict | None:
    """The JSON object on a line, or None for a line a loader must reject."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def malformed_kind(line: bytes) -> str:
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "garbage_bytes"
    except json.JSONDecodeError:
        return "garbage_bytes" if line.startswith(b"\x00") else "truncated_json"
    assert isinstance(value, list), line[:80]
    return "json_array"


def stream_files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).iterdir())


def file_day(path: Path) -> str:
    """'2025-06-14' from 'webhooks/2025-06-14_s00.ndjson[.gz]'."""
    return path.name.split("_", 1)[0]
