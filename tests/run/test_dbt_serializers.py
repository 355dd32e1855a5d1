"""scripts/run/dbt_serializers.py: dbt's lazily compiled (de)serializers, compiled in the
parent without building anything. In a fresh interpreter that loads only dbt_common (a
few classes, so it takes well under a second): what compile_all visits depends on what
the process has imported."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

SCRIPT = """
import dataclasses
from typing import Optional
from mashumaro.core.meta.code import builder
from dbt_common.dataclass_schema import dbtClassMixin
from scripts.run import dbt_serializers

made = []

@dataclasses.dataclass
class Inner(dbtClassMixin):
    size: int = 0
    def __post_init__(self):
        made.append(self)

@dataclasses.dataclass
class Watched(dbtClassMixin):
    name: str = "x"
    inner: Optional[Inner] = None
    def __post_init__(self):
        made.append(self)
    @classmethod
    def __pre_deserialize__(cls, data):
        made.append("pre-deserialize")
        return data

@dataclasses.dataclass
class Empty(dbtClassMixin):
    def __post_init__(self):
        made.append(self)

visited = dbt_serializers.compile_all()
print("built:", made)
assert visited > 2, visited
compiled = []
for name in ("add_unpack_method", "add_pack_method"):
    def counted(self, *args, _compile=getattr(builder.CodeBuilder, name), **kwargs):
        compiled.append(self.cls.__name__)
        return _compile(self, *args, **kwargs)
    setattr(builder.CodeBuilder, name, counted)
made.clear()
value = Watched.from_dict({"name": "y", "inner": {"size": 2}})
assert value.to_dict() == {"name": "y", "inner": {"size": 2}}, value.to_dict()
print("compiled after:", compiled)
print("built after:", len(made))
"""


def test_compile_all_compiles_readers_and_writers_and_builds_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # A class's own code never ran: no instance (a class without fields is not asked),
    # and the pre-deserialize hook ran only on the refused value, which it cannot read
    # (this one does not try, so it is seen: the refusal comes from the fields).
    assert run.stdout.splitlines() == [
        "built: ['pre-deserialize']",
        "compiled after: []",  # the reader, the writer and the nested class's
        "built after: 3",  # the real from_dict: the hook, then Inner and Watched
    ], run.stdout
