"""Landing file names and modes: `webhooks-<UTC second>-<pid>-<sequence>.ndjson`, never
reusing a name (a taken `.part` name moves on to the next sequence; a taken final name
gets `-1`, `-2`, ...), and readable by the loader's user (0644)."""

from __future__ import annotations

import calendar
import os
import re
import time
from pathlib import Path

import pytest

from scripts.receiver.landing import INCOMING, LandingWriter

NAME = re.compile(r"webhooks-(\d{8}T\d{6})-(\d+)-(\d{6})\.ndjson")


def _writer(tmp_path: Path) -> LandingWriter:
    return LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=3600
    )


def test_names__utc_second_pid_and_a_growing_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a machine whose local time is not UTC
    time.tzset()
    try:
        writer = _writer(tmp_path)
        for number in range(2):
            writer.append(b'{"n":%d}' % number)
            writer.rotate_if_due(force=True)
    finally:
        monkeypatch.undo()
        time.tzset()
    landed = sorted(p.name for p in (tmp_path / "landing").glob("*.ndjson"))

    matches = [NAME.fullmatch(name) for name in landed]
    assert all(matches), landed
    assert [m.group(2) for m in matches] == [str(os.getpid())] * 2
    assert [m.group(3) for m in matches] == ["000001", "000002"]
    stamp = calendar.timegm(time.strptime(matches[0].group(1), "%Y%m%dT%H%M%S"))
    assert abs(stamp - time.time()) < 60
    for path in (tmp_path / "landing").glob("*.ndjson"):
        assert path.stat().st_mode & 0o777 == 0o644


def test_names__a_taken_part_name_moves_to_the_next_sequence(tmp_path: Path):
    writer = _writer(tmp_path)
    incoming = tmp_path / "landing" / INCOMING
    now = time.time()
    # the first name this writer would take, for this second and the next
    for moment in (now, now + 1):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(moment))
        taken = incoming / f"webhooks-{stamp}-{os.getpid()}-000001.ndjson.part"
        taken.write_bytes(b"someone else's\n")

    writer.append(b'{"n":1}')
    writer.close()

    (landed,) = (tmp_path / "landing").glob("*.ndjson")
    assert landed.name.endswith("-000002.ndjson")
    assert landed.read_bytes() == b'{"n":1}\n'
    assert (
        sorted(p.read_bytes() for p in incoming.glob("*.part"))
        == [b"someone else's\n"] * 2
    )


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        (["webhooks-x-000001"], "webhooks-x-000001-1"),
        (["webhooks-x-000001", "webhooks-x-000001-1"], "webhooks-x-000001-2"),
    ],
)
def test_names__a_taken_final_name_gets_the_next_free_counter(
    tmp_path: Path, taken: list[str], expected: str
):
    landing = tmp_path / "landing"
    (landing / INCOMING).mkdir(parents=True)
    for stem in taken:
        (landing / f"{stem}.ndjson").write_bytes(stem.encode() + b"\n")
    (landing / INCOMING / "webhooks-x-000001.ndjson.part").write_bytes(b"new\n")

    (final,) = _writer(tmp_path).recover()

    assert final.name == f"{expected}.ndjson"
    assert final.read_bytes() == b"new\n"
    for stem in taken:  # never overwritten
        assert (landing / f"{stem}.ndjson").read_bytes() == stem.encode() + b"\n"
