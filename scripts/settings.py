"""Find the warehouse the same way dbt does: through `profiles.yml`.

The CLI renders the committed `profiles.yml` with the same `env_var()` semantics as dbt, so
`audiences … --target postgres` and `dbt build --target postgres` can never disagree about
where the data lives. Only the keys the loaders and the sync need are kept.

Without `--target`, one setting picks the warehouse for both: `AUDIENCES_TARGET`. The
profile's `target:` reads it (`{{ env_var('AUDIENCES_TARGET', 'dev') }}`), so plain
`dbt build` follows it too. Anything that would let the two drift apart is refused with a
message instead: a profile whose `target:` ignores AUDIENCES_TARGET, or a `DBT_TARGET` (dbt's
own variable for `--target`) that names another target than the CLI would use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROFILE_NAME = "engagement_audiences"
DEFAULT_TARGET_ENV = "AUDIENCES_TARGET"
DBT_TARGET_ENV = "DBT_TARGET"


class SettingsError(Exception):
    """A profile or target cannot be resolved; the message says what to fix."""


@dataclass(frozen=True)
class Target:
    """One rendered output of profiles.yml."""

    name: str
    type: str
    schema: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def duckdb_path(self) -> str:
        return str(self.options["path"])

    @property
    def duckdb_settings(self) -> dict[str, str]:
        """The profile's DuckDB options (memory_limit, temp_directory, ...), so a loader
        or the sync stays inside the same limits as a build: `config_options` (what
        profiles.yml uses, given to duckdb.connect once) over `settings` (a user's own
        profile may still use dbt-duckdb's per-cursor `SET`s)."""
        merged = {
            **(self.options.get("settings") or {}),
            **(self.options.get("config_options") or {}),
        }
        return {key: str(value) for key, value in merged.items()}

    def describe(self) -> str:
        """A human description that never includes a password."""
        if self.type == "duckdb":
            return f"duckdb file {self.duckdb_path}"
        if self.type == "postgres":
            o = self.options
            return (
                f"postgres {o.get('user')}@{o.get('host')}:{o.get('port')}/"
                f"{o.get('dbname')}"
            )
        return self.type


def project_dir() -> Path:
    """The dbt project root: $DBT_PROJECT_DIR, else the nearest parent with dbt_project.yml."""
    explicit = os.environ.get("DBT_PROJECT_DIR")
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    # Installed editable into the repo's .venv: the package sits beside dbt_project.yml.
    return Path(__file__).resolve().parent.parent


def dbt_project_var(name: str, default: Any = None) -> Any:
    """A var of dbt_project.yml, as dbt reads it without --vars: for Python code that
    follows a rule the dbt project declares (the var is its one owner)."""
    project = yaml.safe_load((project_dir() / "dbt_project.yml").read_text())
    return (project.get("vars") or {}).get(name, default)


def dbt_target_dir(
    project: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """Where dbt writes its artifacts: $DBT_TARGET_PATH (relative to the project, as dbt
    reads it; an absolute path as it is), else target/. `environ`: the environment dbt
    runs with, if not this process's."""
    environ = os.environ if environ is None else environ
    return (project or project_dir()) / environ.get("DBT_TARGET_PATH", "target")


def dbt_run_results(project: Path | None = None) -> Path:
    """The run_results.json of dbt's last invocation, which the sync's guardrails, the
    tick's alerts and the report read: $AUDIENCES_DBT_RUN_RESULTS, else where dbt wrote
    it. Read anywhere else, a build that failed its checks would go unseen. A relative
    $AUDIENCES_DBT_RUN_RESULTS is relative to the project, as $DBT_TARGET_PATH is."""
    explicit = os.environ.get("AUDIENCES_DBT_RUN_RESULTS")
    if explicit:
        return (project or project_dir()) / explicit
    return dbt_target_dir(project) / "run_results.json"


def profiles_dir() -> Path:
    explicit = os.environ.get("DBT_PROFILES_DIR")
    return Path(explicit).resolve() if explicit else project_dir()


_MISSING = object()


def _env_var(name: str, default: Any = _MISSING) -> str:
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is _MISSING:
        raise SettingsError(
            f"profiles.yml needs the environment variable {name}, which is not set"
        )
    return str(default)


def _render(value: Any, env: jinja2.Environment) -> Any:
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render()
    if isinstance(value, dict):
        return {key: _render(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, env) for item in value]
    return value


def _coerce_number(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _profile_target(profile: dict, env: jinja2.Environment, path: Path) -> str:
    """The profile's default target, which must follow AUDIENCES_TARGET when it is set."""
    rendered = str(_render(profile.get("target", "dev"), env))
    wanted = os.environ.get(DEFAULT_TARGET_ENV)
    if wanted and wanted != rendered:
        raise SettingsError(
            f"{DEFAULT_TARGET_ENV}={wanted}, but the profile's target in {path} is "
            f"{rendered!r}, so a plain `dbt build` would use {rendered!r}; make it "
            f"target: \"{{{{ env_var('{DEFAULT_TARGET_ENV}', 'dev') }}}}\""
        )
    return rendered


# DuckDB database names that are no file: in-memory ones and MotherDuck's.
NOT_A_FILE = (":memory:", "md:", "motherduck:")


def load_target(name: str | None = None) -> Target:
    """Render the named output of the project's profile (default: the profile's target)."""
    path = profiles_dir() / "profiles.yml"
    if not path.is_file():
        raise SettingsError(f"no profiles.yml at {path}; run from the project root")
    profiles = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    profile = profiles.get(PROFILE_NAME)
    if not profile:
        raise SettingsError(f"{path} has no profile named {PROFILE_NAME!r}")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 (YAML, not HTML)
    env.globals["env_var"] = _env_var
    env.filters["as_number"] = _coerce_number
    env.filters["as_text"] = str
    chosen = name or _profile_target(profile, env, path)
    dbt_target = os.environ.get(DBT_TARGET_ENV)
    if dbt_target and dbt_target != chosen:
        raise SettingsError(
            f"{DBT_TARGET_ENV}={dbt_target} makes dbt use target {dbt_target!r}, but this "
            f"command would use {chosen!r}; set {DEFAULT_TARGET_ENV}={dbt_target} (it moves "
            f"both) and unset {DBT_TARGET_ENV}"
        )
    outputs = profile.get("outputs", {})
    if chosen not in outputs:
        known = ", ".join(sorted(outputs))
        raise SettingsError(f"unknown target {chosen!r}; profiles.yml defines: {known}")
    rendered = _render(outputs[chosen], env)
    options = {key: _coerce_number(item) for key, item in rendered.items()}
    if options.get("type") == "duckdb":
        raw_path = str(options.get("path", "warehouse.duckdb"))
        # An in-memory (`:memory:`) or MotherDuck (`md:`) database is no file path.
        if not raw_path.startswith(NOT_A_FILE):
            db_path = Path(raw_path)
            if not db_path.is_absolute():
                # dbt resolves relative paths against the working directory; so do we.
                db_path = Path.cwd() / db_path
            options["path"] = str(db_path)
    return Target(
        name=chosen,
        type=str(options.get("type")),
        schema=str(options.get("schema", "main")),
        options=options,
    )
