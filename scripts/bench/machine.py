"""What every benchmark records beside its figures: the machine it ran on and how busy it
was. benchmarks/results.md holds only the latest `make bench` run (scripts/bench/
end_to_end.py writes it); the single-step benchmarks print their sections."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results.md"


def describe() -> str:
    """CPU model, cores, RAM, load average at start and Python version."""
    cpu = platform.processor() or "unknown cpu"
    ram = "RAM unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram}, load average {load:.1f} at start, "
        f"Python {platform.python_version()} ({interpreter()})"
    )


def interpreter() -> str:
    """Which build of Python ran: dbt's fixed cost per command is Python, and the same
    version runs it about 14 % slower from an unoptimized build (README, "Which Python").
    The path tells a distribution's build from a pyenv or hand-made one."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    try:
        # Built --enable-shared, the interpreter's core is a library it maps at start.
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return str(base)
    linked = "libpython" in maps
    return f"{base}, {'libpython shared' if linked else 'libpython linked in'}"


def append_section(section: str) -> None:
    """Print a single-step benchmark's section; the results file is `make bench`'s alone."""
    print(section.rstrip())
