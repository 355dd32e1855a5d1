"""`python -m scripts …`: the `audiences` command, for callers that have no console script
on PATH (`audiences run` starts its steps this way, with its own interpreter)."""

import io
import os
import stat
import sys

from scripts.cli import main


class _ReaderMayLeave(io.RawIOBase):
    """A pipe's writing end that drops what its reader no longer reads.

    A step of `audiences run` writes into a pipe the tick reads. When the tick is killed
    (-9), the step goes on alone, holding the tick's lock (scripts/run/lock.py), and its
    next line would raise BrokenPipeError in the middle of its work: a sync that had sent
    everything recorded an error. Its output has nowhere to go; the work does."""

    def __init__(self, fd: int):
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: bytes) -> int:
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            return len(data)


def _keep_writing_when_the_reader_leaves() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            is_pipe = stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
        except (AttributeError, OSError, ValueError):
            continue
        if is_pipe:
            wrapped = io.TextIOWrapper(
                io.BufferedWriter(_ReaderMayLeave(stream.fileno())),
                encoding=stream.encoding,
                errors=stream.errors,
                line_buffering=True,
            )
            setattr(sys, name, wrapped)


if __name__ == "__main__":
    _keep_writing_when_the_reader_leaves()
    main(prog_name="audiences")
