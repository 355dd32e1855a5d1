"""`audiences versions check|list|record` on a two-file dbt project, in-process.

The end-to-end tests (test_version_enforcement.py, test_audience_definitions.py) run the
same commands on a copy of the real project, 10-30 s a test. Here the project is one
audience model and one macro, so a compile takes about a second: what each command prints
and exits is pinned cheaply enough for `make mutate` to run it for every mutant of
scripts/versions/ (benchmarks/mutation.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.versions import fingerprints
from scripts.versions.command import versions

PROJECT_YML = """\
name: tiny_audiences
version: "0.1.0"
config-version: 2
profile: tiny_audiences
model-paths: ["models"]
macro-paths: ["macros"]
"""
PROFILES_YML = """\
tiny_audiences:
  target: dev
  outputs:
    dev: {type: duckdb, path: "{path}", schema: analytics, threads: 1}
"""
MODEL_SQL = "select 1 as person_id -- the only member\nwhere {{ tiny_filter() }}\n"
MACRO_SQL = "{% macro tiny_filter() %}true{% endmacro %}\n"
SCHEMA_YML = """\
models:
  - name: tiny
    latest_version: 1
    versions:
      - v: 1
    config:
      meta:
        audience:
          holdout_share: {holdout}
          changelog:
            - {{version: 1, date: "2026-01-01", change: "first"}}
"""
MEMBERS_SQL = "-- depends_on: {{ ref('tiny', v=1) }}\nselect 1\n"


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    files = {
        "dbt_project.yml": PROJECT_YML,
        "profiles.yml": PROFILES_YML.replace("{path}", str(tmp_path / "tiny.duckdb")),
        "models/audiences/tiny_v1.sql": MODEL_SQL,
        "models/audiences/_audiences.yml": SCHEMA_YML.format(holdout=0),
        "macros/tiny_filter.sql": MACRO_SQL,
        str(fingerprints.MEMBERS_MODEL): MEMBERS_SQL,
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "seeds").mkdir()
    # The commands change directory to the project; monkeypatch puts it back.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project))
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    return project


def run(*args: str):
    return CliRunner().invoke(versions, list(args), catch_exceptions=False)


def seed(project: Path) -> Path:
    return project / fingerprints.FINGERPRINTS_SEED


def test_record_then_check_then_list(tiny):
    recorded = run("record")
    assert (recorded.exit_code, recorded.stdout) == (
        0,
        "recorded tiny v1\n1 new fingerprint(s) recorded\n",
    )
    [row] = seed(tiny).read_text().splitlines()[1:]
    key, version, fingerprint = row.split(",")
    assert (key, version, len(fingerprint)) == ("tiny", "1", 64)

    checked = run("check")
    assert (checked.exit_code, checked.stdout, checked.stderr) == (
        0,
        "audience versions: 1 checked, all fingerprints match\n",
        "",
    )
    listed = run("list")
    assert listed.stdout.splitlines() == [
        f"{'audience':40} ver  current      recorded     state",
        f"{'tiny':40} v1   {fingerprint[:12]} {fingerprint[:12]} ok",
    ]

    again = run("record")
    assert again.stdout == "0 new fingerprint(s) recorded\n"
    assert seed(tiny).read_text().splitlines()[1:] == [row]


def test_record__refuses_what_check_would_refuse_and_records_nothing(tiny):
    """record recorded a version without a changelog line, which the check then
    refused (red team, 2026-12-08)."""
    schema = tiny / "models/audiences/_audiences.yml"
    schema.write_text(schema.read_text().replace("version: 1,", "version: 9,"))

    recorded = run("record")

    assert (recorded.exit_code, recorded.stdout) == (1, "")
    assert recorded.stderr.splitlines() == [
        '- tiny v1 has no changelog line: add {version: 1, date: "YYYY-MM-DD", '
        'change: "..."} to its changelog in models/audiences/_audiences.yml',
        "nothing recorded: 1 audience version problem(s) to fix first, then run "
        '`audiences versions record` again; see README "Add or change an audience".',
    ]
    assert not seed(tiny).exists()


def test_check__a_metric_or_channel_no_source_sends_is_refused(tiny):
    """`metrics=['click']` for 'clicked' built an audience that could never have a
    member, and every step passed it (red team, 2026-12-07). The vocabularies are the
    project's vars; a project without them is not checked."""
    model = tiny / "models/audiences/tiny_v1.sql"
    model.write_text(
        "select 1 as person_id from (select 'x' as metric, 'y' as channel) as events\n"
        "where metric in ('clicked', 'click') and events.channel = 'emial'\n"
        "and metric not in ('anything') -- metric in ('commented out')\n"
        "and {{ tiny_filter() }}\n"
    )
    assert run("record").exit_code == 0  # no vocabulary declared: nothing to judge
    project = tiny / "dbt_project.yml"
    project.write_text(
        project.read_text()
        + "vars:\n  message_metrics: [sent, clicked]\n"
        + "  message_channels: [email, sms]\n"
    )

    checked = run("check")

    assert checked.exit_code == 1
    assert checked.stderr.splitlines()[:2] == [
        "- tiny v1 (models/audiences/tiny_v1.sql) filters metric 'click', which no "
        "source sends, so it matches no event (known: sent, clicked). Fix the value; "
        "or, if Customer.io does send it, add it to var message_metrics in "
        "dbt_project.yml.",
        "- tiny v1 (models/audiences/tiny_v1.sql) filters channel 'emial', which no "
        "source sends, so it matches no event (known: email, sms). Fix the value; or, "
        "if Customer.io does send it, add it to var message_channels in "
        "dbt_project.yml.",
    ]


def test_check_and_record__a_sql_file_that_is_no_declared_version(tiny):
    """dbt builds tiny_v2.sql, without its `- v: 2`, as a model of its own: the check
    passed and the sync never saw it (red team, 2026-12-08)."""
    (tiny / "models/audiences/tiny_v2.sql").write_text(MODEL_SQL)

    recorded = run("record")
    checked = run("check")

    said = (
        "- models/audiences/tiny_v2.sql is not a declared version of tiny: dbt builds "
        "it as the model tiny_v2, not as an audience version. To make it tiny v2, "
        "under `- name: tiny` in models/audiences/_audiences.yml add `- v: 2` to "
        '`versions:` and `- {version: 2, date: "YYYY-MM-DD", change: "..."}` to '
        "`changelog:`, and set `latest_version: 2`; or move it out of "
        "models/audiences/."
    )
    assert (recorded.exit_code, recorded.stderr.splitlines()[0]) == (1, said)
    assert not seed(tiny).exists()
    assert (checked.exit_code, checked.stderr.splitlines()[0]) == (1, said)


def test_the_profile_is_read_where_every_command_reads_it(tiny, tmp_path, monkeypatch):
    """$DBT_PROFILES_DIR names the profiles.yml of every `audiences` command; the
    versions check compiled with the project's always, and failed as a definition error
    where the project has none (red team, 2026-12-07)."""
    elsewhere = tmp_path / "profiles"
    elsewhere.mkdir()
    (tiny / "profiles.yml").rename(elsewhere / "profiles.yml")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(elsewhere))

    recorded = run("record")

    assert (recorded.exit_code, recorded.stdout) == (
        0,
        "recorded tiny v1\n1 new fingerprint(s) recorded\n",
    ), recorded.stderr


def test_check__a_logic_change_without_a_new_version(tiny):
    run("record")
    fingerprint_of_v1 = seed(tiny).read_text().splitlines()[1].split(",")[2]
    macro = tiny / "macros/tiny_filter.sql"
    macro.write_text(MACRO_SQL.replace("true", "false"))
    checked = run("check")
    assert checked.exit_code == 1
    assert checked.stdout == ""
    assert checked.stderr.splitlines() == [
        "- tiny v1 changed its logic but kept its version "
        "(models/audiences/tiny_v1.sql). Keep v1 as it was; put the new logic in "
        "tiny_v2.sql, add `- v: 2` under versions, set latest_version: 2, add a "
        "changelog line saying what changed and why, then run `audiences versions "
        "record`. If what changed is a model-level holdout_share, every version "
        "inherits it: keep v1's share with an override under its `- v: 1` entry, "
        "`config: {meta: {audience: {holdout_share: <its share>}}}`.",
        '1 audience version problem(s); see README "Add or change an audience".',
    ]
    (listed,) = run("list").stdout.splitlines()[1:]
    current, stored = listed.split()[2:4]
    assert (stored, listed.split()[-1]) == (fingerprint_of_v1[:12], "CHANGED")
    assert current != stored


def test_check__nothing_recorded_yet(tiny):
    checked = run("check")
    assert checked.exit_code == 1
    assert checked.stderr.splitlines()[0] == (
        "- tiny v1 has no recorded fingerprint: once its changelog line is in, "
        "run `audiences versions record`"
    )
    (listed,) = run("list").stdout.splitlines()[1:]
    assert listed.split()[:2] + listed.split()[3:] == ["tiny", "v1", "-", "NEW"]


def test_check__a_project_that_does_not_compile_exits_1_with_the_hint(tiny):
    (tiny / "models/audiences/tiny_v1.sql").write_text("select {{ no_such_macro() }}\n")
    checked = run("check")
    assert checked.exit_code == 1
    assert "no_such_macro" in checked.stderr
    assert checked.stderr.endswith(
        'audience definitions do not build; see README "Add or change an '
        'audience" and macros/_macros.yml.\n'
    )


def test_load_manifest__compiles_the_audiences_and_returns_the_manifest(tiny):
    manifest = fingerprints.load_manifest(tiny)
    assert manifest["metadata"]["project_name"] == "tiny_audiences"
    [node] = [n for n in manifest["nodes"].values() if n["name"] == "tiny"]
    assert node["raw_code"].strip() == MODEL_SQL.strip()
    assert (tiny / "target" / "manifest.json").is_file()
    [audience] = fingerprints.audience_versions(manifest)
    assert (audience.key, audience.version) == ("tiny", 1)


def test_load_manifest__honours_dbt_target_path(tiny, monkeypatch):
    monkeypatch.setenv("DBT_TARGET_PATH", "elsewhere")
    manifest = fingerprints.load_manifest(tiny)
    assert (tiny / "elsewhere" / "manifest.json").is_file()
    assert not (tiny / "target" / "manifest.json").exists()
    assert manifest["metadata"]["project_name"] == "tiny_audiences"


def test_load_manifest__a_compile_error_is_a_definition_error(tiny):
    (tiny / "models/audiences/tiny_v1.sql").write_text("select {{ no_such_macro() }}\n")
    with pytest.raises(fingerprints.DefinitionError, match="no_such_macro"):
        fingerprints.load_manifest(tiny)


def test_load_manifest__an_error_while_compiling_a_model_names_it(tiny):
    """An error raised while compiling one model (not while parsing the project) names
    the model and the database's message. dbt 1.12 reports it as the run's exception,
    not as a failed node, so it arrives through the fallback message."""
    (tiny / "models/audiences/tiny_v1.sql").write_text(
        "{% if execute %}{% do run_query('select * from no_such_window') %}{% endif %}"
        "\nselect 1 as person_id\n"
    )
    with pytest.raises(fingerprints.DefinitionError) as raised:
        fingerprints.load_manifest(tiny)
    message = str(raised.value)
    assert "no_such_window does not exist" in message
    assert "models/audiences/tiny_v1.sql" in message


def test_check__a_warehouse_another_process_holds_is_said_as_such(tiny, tmp_path):
    # A scheduled tick holding DuckDB's lock read as "audience definitions do not build",
    # with three tracebacks.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " sys.stdin.read()", str(tmp_path / "tiny.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        checked = run("check")
    finally:
        holder.communicate("")
    assert checked.exit_code == 4
    assert checked.stderr.startswith(
        "error: the warehouse is in use by another process"
    )
    assert "do not build" not in checked.stderr
    # One line, not dbt's own report of the error with its traceback first; dbt's log
    # file keeps that report.
    assert "Traceback" not in checked.stdout + checked.stderr
    assert len((checked.stdout + checked.stderr).splitlines()) <= 2
    assert "Could not set lock" in (tiny / "logs" / "dbt.log").read_text()


def test_check__an_edit_of_the_arm_macro_is_a_change_of_every_audience(tiny):
    # holdout_arm is called by the member union, not by any audience: changing its salt
    # reassigned every holdout and the check passed.
    arm = tiny / "macros/holdout_arm.sql"
    arm.write_text("{% macro holdout_arm(p, key, share) %}'treatment'{% endmacro %}\n")
    run("record")
    arm.write_text("{% macro holdout_arm(p, key, share) %}'holdout'{% endmacro %}\n")
    checked = run("check")
    assert checked.exit_code == 1
    assert checked.stderr.startswith("- tiny v1 changed its logic but kept its version")
