"""manifest.json agrees with an independent count of what is in the files."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from tests.demo_data.files import (
    file_day,
    malformed_kind,
    parse,
    raw_lines,
    stream_files,
)


def _day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _count_stream(root: Path, folder: str, key, event_day) -> dict:
    seen: dict[str, bytes] = {}
    counts: Counter = Counter()
    events: Counter = Counter()
    per_file = {}
    unsorted_files = []
    for path in stream_files(root, folder):
        lines = raw_lines(path)
        late = 0
        in_day_ts = []
        for line in lines:
            obj = parse(line)
            if obj is None:
                counts[malformed_kind(line)] += 1
                continue
            ident = obj["event_id"] if "event_id" in obj else obj["messageId"]
            day = event_day(obj)
            if day < file_day(path):
                late += 1
            if ident in seen:
                same = seen[ident] == line
                counts["duplicate_identical" if same else "duplicate_conflicting"] += 1
                continue
            seen[ident] = line
            events[key(obj)] += 1
            if day == file_day(path):
                in_day_ts.append(obj["timestamp"])
        if in_day_ts != sorted(in_day_ts):
            unsorted_files.append(f"{folder}/{path.name}")
        per_file[f"{folder}/{path.name}"] = (len(lines), late)
    return {
        "counts": counts,
        "events": events,
        "distinct": len(seen),
        "per_file": per_file,
        "unsorted_files": unsorted_files,
    }


def _check_stream(section: dict, found: dict) -> None:
    assert found["distinct"] == section["distinct_event_ids"]
    for kind in ("duplicate_identical", "duplicate_conflicting"):
        assert found["counts"][kind] == section[kind], kind
    for kind, n in section["malformed"].items():
        assert found["counts"][kind] == n, kind
    assert {
        f["path"]: (f["lines"], f["late_lines"]) for f in section["per_file"]
    } == found["per_file"]
    lines = sum(n for n, _ in found["per_file"].values())
    assert lines == section["lines"]
    # read = loaded + duplicate + rejected, the loader's bookkeeping identity
    assert lines == (
        section["distinct_event_ids"]
        + section["duplicate_identical"]
        + section["duplicate_conflicting"]
        + section["malformed_total"]
    )
    assert sum(late for _, late in found["per_file"].values()) == section["late_events"]
    assert found["unsorted_files"] == section["out_of_order_files"]


def test_manifest__webhook_counts_match_the_files(
    small_run: Path, manifest: dict
) -> None:
    section = manifest["webhooks"]
    found = _count_stream(
        small_run,
        "webhooks",
        key=lambda e: (e["object_type"], e["metric"]),
        event_day=lambda e: _day_of(e["timestamp"]),
    )
    _check_stream(section, found)
    expected = Counter(
        {
            (ot, m): n
            for ot, metrics in section["events"].items()
            for m, n in metrics.items()
        }
    )
    assert found["events"] == expected
    # every kind of dirt is present, at low rates
    for kind in ("duplicate_identical", "duplicate_conflicting", "late_events"):
        assert section[kind] >= 1, kind
    assert all(n >= 1 for n in section["malformed"].values())
    assert section["duplicate_identical"] < 0.01 * section["lines"]
    assert section["out_of_order_files"]
    assert section["gzip_files"] >= 1
    assert manifest["totals"]["webhook_events"] == section["distinct_event_ids"]


def test_manifest__segment_counts_match_the_files(
    small_run: Path, manifest: dict
) -> None:
    section = manifest["segment"]
    found = _count_stream(
        small_run,
        "segment",
        key=lambda e: e["event"],
        event_day=lambda e: e["timestamp"][:10],
    )
    assert found["events"] == Counter(section["events"])
    # ISO-8601 strings of one format sort like the times they name
    _check_stream(section, found)
    assert section["mirrored_in_webhooks"] + section["only_in_segment"] == sum(
        section["events"].values()
    )
    assert section["only_in_segment"] > 0
    assert section["mirrored_in_webhooks"] > section["only_in_segment"]


def test_manifest__order_counts_match_the_files(
    small_run: Path, manifest: dict
) -> None:
    section = manifest["orders"]
    rows = []
    per_file = {}
    for path in stream_files(small_run, "orders"):
        with path.open(newline="") as handle:
            file_rows = list(csv.DictReader(handle))
        per_file[f"orders/{path.name}"] = len(file_rows)
        rows += file_rows
    assert {f["path"]: f["rows"] for f in section["per_file"]} == per_file
    assert len(rows) == section["rows"]
    assert Counter(r["status"] for r in rows) == Counter(section["rows_by_status"])
    assert len({r["order_id"] for r in rows}) == section["orders"]
    assert manifest["totals"]["files"] == (
        manifest["webhooks"]["files"] + manifest["segment"]["files"] + section["files"]
    )
