"""Same seed and options: byte-identical files; another seed: different data."""

from __future__ import annotations

from pathlib import Path

from tests.demo_data.conftest import generate

ARGS = ["--people", "150", "--days", "20", "--end-date", "2025-03-31", "--workers", "2"]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_determinism__same_seed_same_bytes_other_seed_other_bytes(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "a", [*ARGS, "--seed", "11"])
    generate(tmp_path / "b", [*ARGS, "--seed", "11"])
    generate(tmp_path / "c", [*ARGS, "--seed", "12"])
    first, again, other = (_snapshot(tmp_path / name) for name in "abc")
    assert len(first) > 10
    assert first == again
    differing = [name for name in first if other.get(name) != first[name]]
    assert "manifest.json" in differing
    assert any(name.startswith("webhooks/") for name in differing)


def test_determinism__rerun_into_the_same_folder_replaces_old_files(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "a", [*ARGS, "--seed", "11"])
    generate(
        tmp_path / "b", ["--people", "80", "--days", "40", "--end-date", "2025-03-31"]
    )
    generate(tmp_path / "b", [*ARGS, "--seed", "11"])
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
