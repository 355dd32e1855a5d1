"""How `make test` splits the suite between its pytest-xdist workers (`--dist loadfile`).

A work unit is a whole test file, as xdist's `loadfile` makes it, so a module-scoped
fixture is built once, except that all the files whose tests use the same expensive
session build (SHARED_BUILDS: generate demo data, load it, `dbt build`) form one unit. Each
worker is its own pytest session: without this, both workers would build the demo
warehouse. Correctness never depends on the units (a worker builds whatever its tests use,
and a test that changes a session warehouse changes only its own worker's); they only save
the second build.

The controller does not collect tests, so it cannot see which fixtures a test uses. Each
worker, which can, writes file -> unit to a directory the controller hands it, before it
reports its collection; the controller schedules only after every collection is in.

Slow units go first. xdist's own order (most tests first) put the single-test files that
take two minutes each (the bench on a tiny brand, the PostgreSQL build) last, both on one
worker, while the other waited idle: 853 s against 647 s of work. Each worker sorts its
collection by unit, the units with the most `slow` tests first, and the scheduler keeps
that order; the many quick files then fill in at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

# Session fixtures that build a warehouse or a data set, by the unit they gather. A fixture
# that builds on another is in its unit (small_warehouse loads small_demo_data).
SHARED_BUILDS = {
    "demo_warehouse": "demo warehouse",
    "small_demo_data": "small warehouse",
    "small_warehouse": "small warehouse",
    "small_postgres_warehouse": "small warehouse",
    "small_run": "small demo run",
    "parsed_project": "parsed project",
}
WORKERINPUT_KEY = "audiences_work_units_dir"


def active(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") == "loadfile"


def record(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: order the collection slow units first, and write each test file's
    unit for the controller's scheduler."""
    units_dir = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY)
    if units_dir is None:
        return
    unit_of: dict[str, str] = {}  # file or build -> a member of its unit (union-find)

    def root(name: str) -> str:
        while unit_of.setdefault(name, name) != name:
            name = unit_of[name]
        return name

    for item in items:
        for fixture, build in SHARED_BUILDS.items():
            if fixture in item.fixturenames:
                unit_of[root(_file(item.nodeid))] = root(build)
    units = {_file(item.nodeid): root(_file(item.nodeid)) for item in items}
    _slow_units_first(items, units)
    worker = config.workerinput["workerid"]
    (Path(units_dir) / f"{worker}.json").write_text(json.dumps(units))


def _slow_units_first(items: list[pytest.Item], units: dict[str, str]) -> None:
    """Sort in place: units by their number of `slow` tests, then of tests, descending;
    a unit's tests stay together and in their order. Every worker collects the same
    items, so every worker sorts them the same way (xdist checks that)."""
    slow: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        unit = units[_file(item.nodeid)]
        tests[unit] += 1
        slow[unit] += item.get_closest_marker("slow") is not None
        first.setdefault(unit, index)
    rank = {unit: (-slow[unit], -tests[unit], first[unit]) for unit in first}
    items.sort(key=lambda item: rank[units[_file(item.nodeid)]])


def make_scheduler(config: pytest.Config, log: object, units_dir: Path) -> object:
    from xdist.scheduler import LoadScopeScheduling

    # The workers' collection order already puts the slow units first (record()); xdist
    # would otherwise re-sort the units by their number of tests.
    config.option.loadscopereorder = False

    class SharedBuildScheduling(LoadScopeScheduling):
        """`loadfile`, with the files of one shared build in one unit."""

        units: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.units is None:  # first called once every worker has collected
                self.units = {}
                for written in sorted(units_dir.glob("*.json")):
                    self.units.update(json.loads(written.read_text()))
            file = _file(nodeid)
            return self.units.get(file, file)

    return SharedBuildScheduling(config, log)


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]
