"""What every benchmark records beside its figures: the machine it ran on and how busy it
was. benchmarks/results.md holds only the latest `make bench` run (scripts/bench/
end_to_end.py writes it); the single-step benchmarks print their sections."""

from __future__ import annotations

import os
import platform
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
        f"Python {platform.python_version()}"
    )


def append_section(section: str) -> None:
    """Print a single-step benchmark's section; the results file is `make bench`'s alone."""
    print(section.rstrip())
