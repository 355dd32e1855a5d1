"""/healthz probes the disk (a file created, synced, removed) at most once a second while
it is healthy: the endpoint is unauthenticated, and a flood of health checks was a flood
of synced writes. A failed probe is not kept, so recovery shows at once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from scripts.receiver.landing import INCOMING, PROBE_EVERY_SECONDS, LandingWriter


def _writer(tmp_path: Path, every: float) -> LandingWriter:
    return LandingWriter(
        tmp_path / "landing", rotate_bytes=1 << 20, rotate_seconds=60,
        probe_every_seconds=every,
    )  # fmt: skip


def test_a_healthy_probe_answers_the_calls_after_it_without_touching_the_disk(
    tmp_path: Path,
) -> None:
    assert PROBE_EVERY_SECONDS <= 5  # a load balancer still sees a disk fail in seconds
    writer = _writer(tmp_path, every=3600)
    assert writer.health_problem() is None
    # The folder a probe writes in is gone: only a probe that ran would see it.
    shutil.rmtree(tmp_path / "landing" / INCOMING)
    answers: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: answers.append(writer.health_problem()))
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [None] * 50


def test_without_the_interval_every_call_probes_and_a_failure_is_not_kept(
    tmp_path: Path,
) -> None:
    writer = _writer(tmp_path, every=0)
    assert writer.health_problem() is None
    incoming = tmp_path / "landing" / INCOMING
    shutil.rmtree(incoming)
    problem = writer.health_problem()
    assert problem is not None
    assert problem.startswith("cannot write to the landing directory: ENOENT")
    # A failed probe is probed again at the next call, even with a long interval.
    writer.probe_every_seconds = 3600
    assert writer.health_problem() is not None
    incoming.mkdir()
    assert writer.health_problem() is None
