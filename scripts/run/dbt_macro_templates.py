"""dbt's macros compiled once, in a process that forks dbt commands.

Every macro a dbt command calls (the project's, the adapter's, dbt's own
materializations and tests) is Jinja source that dbt compiles to Python on first use and
keeps for the rest of the process, in dbt_common's template cache (`template_cache`,
keyed by the macro's source text). A process compiles each macro it calls anew: a
forked `dbt build` of this project compiled about 210 of them, some 1 s of Python on a
2-core machine, while its threads wait on each other for the interpreter
(benchmarks/results.md).

`warm` fills that cache in the parent with every macro of the last manifest, so every
child forked after it starts with them compiled. It is what dbt itself would do in the
child on first use: the same source compiled by the same Jinja environment (dbt builds
it from the macro's text alone), only earlier. The cache is keyed by the text, so a
macro edited since the manifest was written is not found and the child compiles it as
before; a manifest that is missing, unreadable or of another shape warms nothing, and a
macro that does not compile is left for the child, which reports it as dbt does.

The cache then holds exactly the manifest's macros: the templates of macros since
edited or removed are dropped, so a loop running for months keeps one template per
macro.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import NamedTuple


class _Macro(NamedTuple):
    """What dbt's template cache reads of a macro (dbt_common's MacroProtocol)."""

    name: str
    macro_sql: str


def _macros(manifest: Path) -> list[_Macro]:
    """The macros manifest.json lists, or none if it cannot be read as one."""
    try:
        macros = json.loads(manifest.read_bytes()).get("macros")
    except (OSError, ValueError, AttributeError, RecursionError, MemoryError):
        # RecursionError: JSON nested deeper than the parser's stack (dbt writes no
        # such file, but whatever lies at that path is read); MemoryError: too large.
        return []
    if not isinstance(macros, dict):
        return []
    return [
        _Macro(str(macro.get("name")), macro["macro_sql"])
        for macro in macros.values()
        if isinstance(macro, dict) and isinstance(macro.get("macro_sql"), str)
    ]


def warm(manifest: Path) -> int:
    """Compile into dbt_common's template cache every macro of `manifest` (dbt's
    manifest.json) not compiled yet, and drop the templates of macros it no longer
    has; returns how many were compiled now. Never raises for the manifest's sake
    (module docstring), nor when dbt cannot be imported (the build reports that)."""
    try:
        from dbt_common.clients.jinja import template_cache
    except ImportError:  # no dbt here: the build says so itself
        return 0
    macros = _macros(manifest)
    if not macros:
        return 0
    cached = template_cache.file_cache
    kept = {}
    compiled = 0
    for macro in macros:
        template = cached.get(macro.macro_sql)
        if template is None:
            # One that does not compile is left out: the child compiles it and
            # reports it, as dbt does.
            with contextlib.suppress(Exception):
                template = template_cache.get_node_template(macro)
                compiled += 1
        if template is not None:
            kept[macro.macro_sql] = template
    cached.clear()
    cached.update(kept)
    return compiled
