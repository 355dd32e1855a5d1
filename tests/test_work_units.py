"""tests/work_units.py: under `--dist loadfile`, two workers, each session build is made
once, on the one worker that runs every file using it, and a plain file stays whole.

A scratch suite in tmp_path takes the real hooks (a conftest that imports
tests/conftest.py's) with cheap stand-ins for the session builds, each of which appends
the worker that built it to a file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from tests.conftest import REPO_ROOT

CONFTEST = """
    import os
    from pathlib import Path

    import pytest

    from tests.conftest import (
        pytest_collection_modifyitems,
        pytest_configure,
        pytest_configure_node,
        pytest_unconfigure,
        pytest_xdist_make_scheduler,
    )

    LOG = Path(os.environ["UNITS_LOG"])


    def built(name):
        with LOG.open("a") as log:
            log.write(f"built {name} {os.environ['PYTEST_XDIST_WORKER']}\\n")


    @pytest.fixture(scope="session")
    def demo_warehouse():
        built("demo_warehouse")


    @pytest.fixture(scope="session")
    def small_demo_data():
        built("small_demo_data")


    @pytest.fixture(scope="session")
    def small_warehouse(small_demo_data):
        built("small_warehouse")


    @pytest.fixture
    def ran(request):
        yield
        with LOG.open("a") as log:
            log.write(f"ran {request.node.path.name} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""

FILES = {
    # Three files on the demo warehouse, one of them only through a module fixture.
    "test_a.py": "def test_one(demo_warehouse, ran): pass\n",
    "test_b.py": "def test_one(ran): pass\ndef test_two(demo_warehouse, ran): pass\n",
    "test_c.py": (
        "import pytest\n"
        "@pytest.fixture(scope='module')\n"
        "def copy(demo_warehouse): pass\n"
        "def test_one(copy, ran): pass\n"
    ),
    # small_warehouse builds on small_demo_data: one unit for both.
    "test_d.py": "def test_one(small_warehouse, ran): pass\n",
    "test_e.py": "def test_one(small_demo_data, ran): pass\n",
    # One slow test alone in its file: xdist's own order (most tests first) ran it last.
    "test_z_slow.py": "import pytest\n@pytest.mark.slow\ndef test_one(ran): pass\n",
    # Plain files, several tests each.
    **{
        f"test_plain_{n}.py": "".join(f"def test_{i}(ran): pass\n" for i in range(6))
        for n in range(4)
    },
}


def _run_scratch_suite(tmp_path: Path) -> list[tuple[str, str, str]]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    for name, body in FILES.items():
        (suite / name).write_text(body)
    log = tmp_path / "log.txt"
    log.touch()
    env = {**os.environ, "UNITS_LOG": str(log), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-q",
         "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(suite),
         "-c", os.devnull, str(suite)],
        cwd=suite, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def test_each_build_is_made_once_on_the_worker_of_every_file_that_uses_it(
    tmp_path: Path,
) -> None:
    events = _run_scratch_suite(tmp_path)
    builds = Counter(name for kind, name, _ in events if kind == "built")
    assert builds == {"demo_warehouse": 1, "small_demo_data": 1, "small_warehouse": 1}
    worker_of_file: dict[str, set[str]] = {}
    for kind, name, worker in events:
        if kind == "ran":
            worker_of_file.setdefault(name, set()).add(worker)
    assert sum(1 for kind, *_ in events if kind == "ran") == 6 + 1 + 4 * 6
    # A file never splits between workers.
    assert all(len(workers) == 1 for workers in worker_of_file.values())
    builder = {name: worker for kind, name, worker in events if kind == "built"}
    for file in ("test_a.py", "test_b.py", "test_c.py"):
        assert worker_of_file[file] == {builder["demo_warehouse"]}, file
    for file in ("test_d.py", "test_e.py"):
        assert worker_of_file[file] == {builder["small_warehouse"]}, file
    # Both workers got work: the units are not one big unit.
    assert {w for workers in worker_of_file.values() for w in workers} == {"gw0", "gw1"}


def test_slow_units_start_first(tmp_path: Path) -> None:
    events = _run_scratch_suite(tmp_path)
    ran = [(name, worker) for kind, name, worker in events if kind == "ran"]
    slow_worker = dict(ran)["test_z_slow.py"]
    first_on_its_worker = next(name for name, worker in ran if worker == slow_worker)
    assert first_on_its_worker == "test_z_slow.py"
