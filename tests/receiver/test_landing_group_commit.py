"""Group commit and size rotation in the landing writer, in-process.

Appends that arrive while another is syncing share the next write and sync: their lines
must land whole and in order, and the counters (bytes, events, syncs, lines in the file)
must add the batch up. The first append is held inside its sync by a gate on
`os.fdatasync`/`os.fsync` (as test_durability.py does), so the batch forms for certain.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.receiver.landing import LandingWriter

A, B, C = b'{"n":"a"}', b'{"n":"bb"}', b'{"n":"ccc"}'


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_append__waiting_lines_share_one_write_and_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    lines: list[str] = []
    writer = LandingWriter(
        tmp_path / "landing",
        rotate_bytes=1 << 20,
        rotate_seconds=3600,
        log=lines.append,
    )
    synced: list[bytes] = []
    entered, release = threading.Event(), threading.Event()

    def gated(real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.endswith(".part"):
                synced.append(Path(path).read_bytes())
                entered.set()
                assert release.wait(10), "the test never released the sync"
            real(fd)

        return sync

    for name in ("fsync", "fdatasync"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, gated(getattr(os, name)))

    def queued() -> int:
        with writer._cond:
            return len(writer._queue)

    first = threading.Thread(target=writer.append, args=(A,))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=writer.append, args=(B,))
    second.start()
    _wait_until(lambda: queued() == 1, "B to wait")
    third = threading.Thread(target=writer.append, args=(C,))
    third.start()
    _wait_until(lambda: queued() == 2, "C to wait")
    release.set()
    for thread in (first, second, third):
        thread.join(10)

    everything = A + b"\n" + B + b"\n" + C + b"\n"
    assert synced == [A + b"\n", everything]  # two syncs, the second holding B and C
    assert writer.fsyncs == 2
    assert writer.status() == {
        "files": 0,
        "bytes": len(everything),
        "events": 3,
        "current_file_bytes": len(everything),
    }
    writer.close()
    (landed,) = (tmp_path / "landing").glob("*.ndjson")
    assert landed.read_bytes() == everything
    assert lines == [f"rotated {landed.name} ({len(everything)} bytes, 3 events)"]


@pytest.mark.parametrize(("extra", "rotated"), [(-1, True), (0, True), (1, False)])
def test_append__rotates_once_the_file_reaches_the_size_limit(
    tmp_path: Path, extra: int, rotated: bool
):
    """The limit is `rotate_bytes`: a file that reaches it exactly is finished."""
    two_lines = len(A) + 1 + len(B) + 1
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=two_lines + extra, rotate_seconds=3600
    )
    writer.append(A)
    writer.append(B)

    finished = list((tmp_path / "landing").glob("*.ndjson"))
    assert len(finished) == int(rotated)
    assert writer.status()["current_file_bytes"] == (0 if rotated else two_lines)
    writer.close()


def test_rotate_if_due__keeps_a_young_file_unless_forced(tmp_path: Path):
    """The ticker calls it every tick: without `force` only an old file is finished."""
    writer = LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )
    writer.append(A)

    writer.rotate_if_due()
    assert list((tmp_path / "landing").glob("*.ndjson")) == []
    writer.rotate_if_due(force=True)
    assert len(list((tmp_path / "landing").glob("*.ndjson"))) == 1
    writer.close()
