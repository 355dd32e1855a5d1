"""The file where one-shot ticks that could not reach the warehouse keep their open alerts
(scripts/run/unreached_alerts.py); the ticks themselves are tested end to end in
tests/alerts/test_alert_repeats.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scripts.alerts.repeats import OpenAlert
from scripts.run import unreached_alerts

SINCE = datetime(2026, 12, 6, 3, 0)


def test_kept_alerts_read_back_and_none_left_removes_the_file(tmp_path: Path) -> None:
    path = unreached_alerts.path_beside(tmp_path / "run.lock", "dev")
    assert path == tmp_path / "run.lock.dev.open-alerts.json"
    assert unreached_alerts.read(path) == {}  # none yet
    alerts = {"run_error": OpenAlert(SINCE, SINCE)}
    unreached_alerts.keep(path, alerts)
    assert unreached_alerts.read(path) == alerts
    unreached_alerts.keep(path, {})
    assert not path.exists()


def test_each_target_has_its_own_file(tmp_path: Path) -> None:
    # The ticks of every target share the project's lock: one target's outage must
    # neither hold nor resolve another's run_error.
    lock = tmp_path / "run.lock"
    paths = {unreached_alerts.path_beside(lock, t) for t in ("dev", "postgres", "a/b")}
    assert len(paths) == 3
    assert all(path.parent == tmp_path for path in paths)
    # A target's name is kept as written where a file name allows it.
    named = unreached_alerts.path_beside(lock, "Prod-EU.2 (old)")
    assert named.name == "run.lock.Prod-EU.2__old_.open-alerts.json"


def test_a_damaged_file_reads_as_no_open_alert_so_the_alert_is_posted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.lock.open-alerts.json"
    for damaged in (b"{not json", b"\xff\xfe", b'{"run_error": {"since": "x"}}'):
        path.write_bytes(damaged)
        assert unreached_alerts.read(path) == {}, damaged


def test_a_file_it_cannot_write_is_a_warning_not_a_failed_tick(
    tmp_path: Path, capsys
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    path = blocked / "run.lock.open-alerts.json"  # its folder is a file
    unreached_alerts.keep(path, {"run_error": OpenAlert(SINCE)})
    assert "warning: cannot keep the open alerts in" in capsys.readouterr().err


def test_forgetting_a_file_that_is_not_there_says_nothing(
    tmp_path: Path, capsys
) -> None:
    """Every tick that records itself forgets the file; most find none."""
    unreached_alerts.forget(tmp_path / "run.lock.dev.open-alerts.json")
    assert capsys.readouterr() == ("", "")


def test_a_file_it_cannot_remove_is_a_warning_on_stderr(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.lock.dev.open-alerts.json"
    path.mkdir()  # not a file: unlink refuses it
    unreached_alerts.forget(path)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"warning: cannot remove {path}: ")
