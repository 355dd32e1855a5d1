"""Loaded by every Python subprocess a mutation run starts (the directory is on PYTHONPATH).

mutmut learns which tests reach which function from trampoline hits recorded in the pytest
process. Most of our tests drive the code through a subprocess (`.venv/bin/audiences ...`),
whose hits would be lost (and whose mutmut would look for a pyproject.toml in the test's
temporary directory and crash). While mutmut collects its statistics, this hook loads
mutmut's configuration from the scratch project and, at exit, writes the subprocess's hits
to MUTATION_HITS_DIR; `scripts.mutation.pytest_hits` hands them to the test that ran it.
"""

import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats" and os.environ.get(
    "MUTATION_HITS_DIR"
):
    import atexit
    import json

    from mutmut.configuration import config
    from mutmut.state import state

    _cwd = os.getcwd()
    os.chdir(os.environ["MUTATION_PROJECT_ROOT"])
    try:
        config()
    finally:
        os.chdir(_cwd)

    def _write_hits() -> None:
        hits = sorted(state()._stats)
        if not hits:
            return
        # Some tests simulate a full disk by lowering the process's file-size limit to 0
        # (tests/receiver/test_operations.py); lift it back to the hard limit so the hits
        # are still written. A traceback here would reach the test's stderr and fail it.
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        path = os.path.join(os.environ["MUTATION_HITS_DIR"], f"{os.getpid()}.json")
        try:
            with open(path + ".tmp", "w") as handle:
                json.dump(hits, handle)
            os.replace(path + ".tmp", path)
        except OSError:
            pass  # its hits are lost: its mutants may show as "no tests" (not killed)

    atexit.register(_write_hits)
