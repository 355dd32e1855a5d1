"""pytest plugin for mutmut runs: subprocess trampoline hits count for the test that ran them.

`site/sitecustomize.py` writes each subprocess's hits to MUTATION_HITS_DIR when it exits.
Before mutmut's own teardown hook files the hits under the current test, this one adds the
subprocess hits to them, so mutants in code reached only via `.venv/bin/audiences` are run
against the tests that reach it instead of being reported as having no tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    folder = os.environ.get("MUTATION_HITS_DIR")
    if os.environ.get("MUTANT_UNDER_TEST") != "stats" or not folder:
        return
    from mutmut.state import state

    for path in Path(folder).glob("*.json"):
        state()._stats.update(json.loads(path.read_text()))
        path.unlink()
