"""pytest plugin for mutmut runs: subprocess trampoline hits count for the test that ran them.

`site/sitecustomize.py` writes each subprocess's hits to MUTATION_HITS_DIR when it exits.
After a test's teardown (so a server a fixture stops at teardown has written its hits too),
this files them under that test, exactly as mutmut files the test's in-process hits. Mutants
in code reached only via `.venv/bin/audiences` are then run against the tests that reach it
instead of being reported as having no tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Iterator[None]:
    yield
    folder = os.environ.get("MUTATION_HITS_DIR")
    if os.environ.get("MUTANT_UNDER_TEST") != "stats" or not folder:
        return
    from mutmut.state import state

    test = item.nodeid.removeprefix("mutants/")  # as mutmut names it
    for path in Path(folder).glob("*.json"):
        for function in json.loads(path.read_text()):
            state().tests_by_mangled_function_name[function].add(test)
        path.unlink()
