"""Scratch copies of the project: every mutation runs in one, never in the checkout.

A mutant is written only into the copy, so Ctrl-C, a kill or a crash can never leave a
mutated file behind in the working tree; the copy is thrown away and made afresh next run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRATCH_ROOT = PROJECT_ROOT / "build" / "mutation"


def fresh_copy(name: str) -> Path:
    """A new copy of the project's files (tracked and untracked, not ignored) in
    build/mutation/<name>/, with the checkout's current contents."""
    target = SCRATCH_ROOT / name
    if target.exists():
        shutil.rmtree(target)
    git_ls_files = [
        "git",
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        "-z",
    ]
    listed = subprocess.run(  # noqa: S603 (git from PATH, as make finds it)
        git_ls_files, cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / relative
        if not source.is_file():  # deleted in the working tree, not yet committed
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    return target
