"""scripts/run/dbt_macro_templates.py: the macros of a manifest compiled into dbt's own
template cache, which a forked dbt command then finds instead of compiling them; edited
and removed macros dropped; a manifest that cannot be read warms nothing and raises
nothing. (tests/run/test_warm_dbt.py shows a forked dbt command compiling none.)"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_common.clients.jinja import CallableMacroGenerator, template_cache

from scripts.run import dbt_macro_templates

GREET = "{% macro greet(name) %}hello {{ name }}{% endmacro %}"
PART = "{% macro part() %}{{ return(7) }}{% endmacro %}"


@pytest.fixture(autouse=True)
def own_cache() -> Iterator[None]:
    """The cache is dbt_common's, process-wide: each test starts with it empty, and
    what it held before is put back."""
    held = dict(template_cache.file_cache)
    template_cache.file_cache.clear()
    yield
    template_cache.file_cache.clear()
    template_cache.file_cache.update(held)


def _manifest(path: Path, **macros: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "metadata": {},
                "macros": {
                    f"macro.project.{name}": {"name": name, "macro_sql": sql}
                    for name, sql in macros.items()
                },
            }
        )
    )
    return path


class _Macro:
    def __init__(self, name: str, macro_sql: str):
        self.name = name
        self.macro_sql = macro_sql


def test_a_manifest_s_macros_are_compiled_once_and_called_as_dbt_calls_them(
    tmp_path: Path,
) -> None:
    manifest = _manifest(tmp_path / "manifest.json", greet=GREET, part=PART)
    assert dbt_macro_templates.warm(manifest) == 2
    warmed = dict(template_cache.file_cache)
    assert set(warmed) == {GREET, PART}
    # Again: nothing to compile, the same templates kept.
    assert dbt_macro_templates.warm(manifest) == 0
    assert all(template_cache.file_cache[key] is warmed[key] for key in warmed)
    # dbt's macro generator finds the warmed template, and the macro runs as dbt runs
    # it, with the context it is given.
    generator = CallableMacroGenerator(_Macro("greet", GREET), {})
    assert generator.get_template() is warmed[GREET]
    assert generator("dbt").strip() == "hello dbt"


def test_edited_and_removed_macros_leave_the_cache(tmp_path: Path) -> None:
    edited = GREET.replace("hello", "goodbye")
    assert dbt_macro_templates.warm(_manifest(tmp_path / "a.json", greet=GREET)) == 1
    assert dbt_macro_templates.warm(_manifest(tmp_path / "b.json", greet=edited)) == 1
    assert set(template_cache.file_cache) == {edited}
    generator = CallableMacroGenerator(_Macro("greet", edited), {})
    assert generator("dbt").strip() == "goodbye dbt"


def test_a_macro_that_does_not_compile_is_left_to_the_child(tmp_path: Path) -> None:
    broken = "{% macro broken() %}{{ unclosed {% endmacro %}"
    manifest = _manifest(tmp_path / "manifest.json", broken=broken, greet=GREET)
    assert dbt_macro_templates.warm(manifest) == 1
    assert set(template_cache.file_cache) == {GREET}


@pytest.mark.parametrize(
    "content",
    [None, b"not json {", b"[1, 2]", b'{"macros": [1]}', b'{"macros": {}}',
     b'{"macros": {"m": {"name": "m", "macro_sql": 7}, "n": "text"}}',
     # Deeper than Python's JSON parser recurses: RecursionError, not ValueError.
     b'{"macros": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"],
    ids=["missing", "not-json", "a-list", "macros-a-list", "no-macros", "no-macro-sql",
         "nested-too-deep"],
)  # fmt: skip
def test_a_manifest_that_cannot_be_read_warms_nothing_and_keeps_the_cache(
    tmp_path: Path, content: bytes | None
) -> None:
    assert dbt_macro_templates.warm(_manifest(tmp_path / "ok.json", greet=GREET)) == 1
    manifest = tmp_path / "manifest.json"
    if content is not None:
        manifest.write_bytes(content)
    assert dbt_macro_templates.warm(manifest) == 0
    assert set(template_cache.file_cache) == {GREET}


def test_without_dbt_nothing_is_warmed_and_nothing_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop forks its builds even when dbt cannot be imported (each build then
    says so): warming must not end the tick first."""
    monkeypatch.setitem(sys.modules, "dbt_common.clients.jinja", None)
    assert dbt_macro_templates.warm(_manifest(tmp_path / "m.json", greet=GREET)) == 0
