"""The writer's counters behind /healthz: one more finalised file per rotation."""

from __future__ import annotations

from pathlib import Path

from scripts.receiver.landing import LandingWriter


def test_status__files_counts_every_rotation(tmp_path: Path):
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )
    try:
        for number in range(3):
            writer.append(b'{"n":%d}' % number)
            writer.rotate_if_due(force=True)
        writer.rotate_if_due(force=True)  # nothing written since: no empty file
        status = writer.status()
    finally:
        writer.close()
    assert status == {"files": 3, "bytes": 24, "events": 3, "current_file_bytes": 0}
    assert len(list((tmp_path / "landing").glob("*.ndjson"))) == 3
