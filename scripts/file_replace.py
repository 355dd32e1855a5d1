"""Replacing a file whole: a reader sees the old content or the new, never part of it.

Used for what other programs read while this one may rewrite it: the HTML report a web
server serves, the sync's plan file a CI job reads.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def replace_file(out: Path, content: bytes) -> None:
    """Write a new file beside `out`, then rename it over `out`: a reader sees the old
    file or the new one, and a write that fails (a full disk, a file size limit) leaves
    the old one whole. A symlink's target is replaced, not the link; the new file keeps
    the mode of the one it replaces (else the umask's)."""
    out = out.resolve() if out.is_symlink() else out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        mode = stat.S_IMODE(out.stat().st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
