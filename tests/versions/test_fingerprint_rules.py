"""The fingerprint rules on a hand-written manifest: no dbt, milliseconds per test.

test_version_enforcement.py proves the same rules end to end (dbt compiles a copy of the
project, 10-30 s a test); these pin each rule on its own, so a one-line change to
scripts/versions/fingerprints.py fails a test that names the rule. They are also what
`make mutate` runs for the versions area (benchmarks/mutation.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scripts.versions import fingerprints
from scripts.versions.fingerprints import AudienceVersion, check, normalise

PROJECT = "engagement_audiences"
SIGNALS = f"macro.{PROJECT}.audience_signals"
SUPPRESS = f"macro.{PROJECT}.audience_apply_suppressions"
BOOLEAN = f"macro.{PROJECT}.audience_boolean"
DBT_DATEADD = "macro.dbt.dateadd"


def manifest(**overrides) -> dict:
    """A manifest with one audience (two versions), one non-audience model and a test."""
    macros = {
        SIGNALS: {"macro_sql": "select 1 -- signals", "depends_on": {"macros": [SUPPRESS]}},
        SUPPRESS: {"macro_sql": "where true", "depends_on": {"macros": [BOOLEAN, DBT_DATEADD]}},
        BOOLEAN: {"macro_sql": "{% do x %}", "depends_on": {"macros": [SIGNALS]}},
        DBT_DATEADD: {"macro_sql": "dateadd", "depends_on": {"macros": []}},
    }  # fmt: skip
    nodes = {
        "model.p.clicked_v1": _audience_node("clicked", 1, "select * from a"),
        "model.p.clicked_v2": _audience_node("clicked", 2, "select * from b"),
        "model.p.dim_people": {
            "resource_type": "model", "name": "dim_people", "raw_code": "select 1",
            "config": {"meta": {}}, "original_file_path": "models/dim_people.sql",
        },
        "test.p.not_null": {
            "resource_type": "test", "name": "not_null", "raw_code": "select 1",
            "config": {"meta": {"audience": {}}}, "original_file_path": "tests/x.sql",
        },
    }  # fmt: skip
    result = {"metadata": {"project_name": PROJECT}, "macros": macros, "nodes": nodes}
    result.update(overrides)
    return result


def _audience_node(name: str, version: int | None, sql: str, **audience) -> dict:
    meta = {
        "name": name,
        "changelog": [{"version": 1, "change": "first"}, {"version": 2, "change": "b"}],
        **audience,
    }
    return {
        "resource_type": "model",
        "name": name,
        "version": version,
        "raw_code": sql,
        "config": {"meta": {"audience": meta}},
        "depends_on": {"macros": [SIGNALS]},
        "original_file_path": f"models/audiences/{name}_v{version}.sql",
    }


def fingerprint_of(data: dict, version: int = 1) -> str:
    found = {a.version: a for a in fingerprints.audience_versions(data)}
    return found[version].fingerprint


# normalise ----------------------------------------------------------------------------


def test_normalise__comments_go_before_whitespace_collapses():
    # Collapsing first would join `where x > 3` onto the comment and drop it.
    code = "select *\n-- the window\nwhere x > 3\n{# note #}  and y"
    assert normalise(code) == "select * where x > 3 and y"


def test_normalise__multiline_jinja_comment_and_surrounding_space():
    assert normalise("  {# a\nb #}select\t1\n\n ") == "select 1"


def test_normalise__logic_inside_a_line_is_kept_exactly():
    assert normalise("where n > 3") != normalise("where n > 4")
    assert normalise("a{#c#}b") == "a b"
    assert normalise("a--c\nb") == "a b"


def test_normalise__a_comment_marker_inside_quotes_is_text():
    # The rest of this line was read as a comment: editing within_hours moved nothing.
    three = "link_url_like='%cart--reminder%', within_hours=3 * 24, human_only=true,"
    thirty = "link_url_like='%cart--reminder%', within_hours=30 * 24, human_only=false,"
    assert normalise(three) == three
    assert normalise(three) != normalise(thirty)
    assert normalise("x = 'it''s -- so' -- why\ny") == "x = 'it''s -- so' y"
    assert normalise('"odd--name" /* not -- this */ z') == '"odd--name" z'


def test_normalise__a_block_comment_is_a_comment():
    assert normalise("select /* why:\n the window */ 1 /**/ + 2") == "select 1 + 2"
    assert normalise("select 1 /* never closed") == "select 1"


# audience_versions --------------------------------------------------------------------


def test_audience_versions__one_per_audience_model_sorted_with_paths_and_changelog():
    found = fingerprints.audience_versions(manifest())
    assert [(a.key, a.version, a.path, a.changelog_versions) for a in found] == [
        ("clicked", 1, "models/audiences/clicked_v1.sql", frozenset({1, 2})),
        ("clicked", 2, "models/audiences/clicked_v2.sql", frozenset({1, 2})),
    ]
    assert all(len(a.fingerprint) == 64 for a in found)
    assert found[0].fingerprint != found[1].fingerprint


def test_audience_versions__the_documented_digest():
    """sha256 over the normalised SQL, then each project macro in the closure (sorted, id
    framed by NULs, normalised source), then each membership meta key and its JSON value."""
    data = manifest()
    digest = hashlib.sha256(b"select * from a")
    for macro_id, sql in sorted(
        {SIGNALS: "select 1", SUPPRESS: "where true", BOOLEAN: "{% do x %}"}.items()
    ):
        digest.update(b"\0" + macro_id.encode() + b"\0")
        digest.update(sql.encode())
    digest.update(b"\0meta.holdout_share\0")
    digest.update(b"0")
    assert fingerprint_of(data) == digest.hexdigest()


def test_audience_versions__unversioned_model_is_version_1_and_changelog_may_be_absent():
    data = manifest()
    node = _audience_node("plain", None, "select 2")
    del node["config"]["meta"]["audience"]["changelog"]
    data["nodes"] = {"model.p.plain": node}
    [found] = fingerprints.audience_versions(data)
    assert (found.key, found.version, found.changelog_versions) == (
        "plain",
        1,
        frozenset(),
    )


def test_audience_versions__changelog_lines_without_a_version_are_ignored():
    data = manifest()
    node = _audience_node("plain", 3, "select 2")
    node["config"]["meta"]["audience"]["changelog"] = [
        {"change": "x"},
        {"version": "3"},
    ]
    data["nodes"] = {"model.p.plain": node}
    [found] = fingerprints.audience_versions(data)
    assert found.changelog_versions == frozenset({3})


def test_audience_versions__missing_project_name_means_this_project():
    named, unnamed = manifest(), manifest()
    unnamed["metadata"] = {}
    assert fingerprint_of(named) == fingerprint_of(unnamed)


def test_audience_versions__sql_change_moves_it_comment_change_does_not():
    base, logic, comment = manifest(), manifest(), manifest()
    logic["nodes"]["model.p.clicked_v1"]["raw_code"] = "select * from c"
    comment["nodes"]["model.p.clicked_v1"]["raw_code"] = "select *  -- why\n from a"
    assert fingerprint_of(logic) != fingerprint_of(base)
    assert fingerprint_of(comment) == fingerprint_of(base)


@pytest.mark.parametrize("macro_id", [SIGNALS, SUPPRESS, BOOLEAN])
def test_audience_versions__every_project_macro_reached_counts(macro_id):
    """Directly called, called by a called macro, and two steps away (cycles end)."""
    base, changed = manifest(), manifest()
    changed["macros"][macro_id]["macro_sql"] = (
        "and more " + changed["macros"][macro_id]["macro_sql"]
    )
    assert fingerprint_of(changed) != fingerprint_of(base)


def test_audience_versions__macros_of_other_packages_do_not_count():
    base, changed = manifest(), manifest()
    changed["macros"][DBT_DATEADD]["macro_sql"] = "a new dbt release"
    assert fingerprint_of(changed) == fingerprint_of(base)


def test_audience_versions__a_macro_without_depends_on_ends_the_walk_and_counts():
    data = manifest()
    data["macros"][SUPPRESS]["depends_on"]["macros"].append(f"macro.{PROJECT}.leaf")
    data["macros"][f"macro.{PROJECT}.leaf"] = {"macro_sql": "x"}  # no depends_on
    assert fingerprint_of(data) != fingerprint_of(manifest())


def test_audience_versions__holdout_share_counts_other_meta_does_not():
    base, holdout, owner = manifest(), manifest(), manifest()
    holdout["nodes"]["model.p.clicked_v1"]["config"]["meta"]["audience"][
        "holdout_share"
    ] = 0.1
    owner["nodes"]["model.p.clicked_v1"]["config"]["meta"]["audience"]["owner"] = "crm"
    assert fingerprint_of(holdout) != fingerprint_of(base)
    assert fingerprint_of(owner) == fingerprint_of(base)
    explicit_zero = manifest()
    explicit_zero["nodes"]["model.p.clicked_v1"]["config"]["meta"]["audience"][
        "holdout_share"
    ] = 0
    assert fingerprint_of(explicit_zero) == fingerprint_of(base)


def test_audience_versions__models_without_config_or_meta_are_skipped():
    data = manifest()
    data["nodes"]["model.p.bare"] = {"resource_type": "model", "name": "bare"}
    data["nodes"]["model.p.none"] = {
        "resource_type": "model",
        "name": "n",
        "config": None,
    }
    assert [a.key for a in fingerprints.audience_versions(data)] == [
        "clicked",
        "clicked",
    ]


# read_recorded / write_recorded / record_new ----------------------------------------


def test_recorded__round_trip_sorted_with_header(tmp_path: Path):
    path = tmp_path / "fingerprints.csv"
    fingerprints.write_recorded({("b", 1): "f2", ("a", 2): "f1", ("a", 10): "f3"}, path)
    # Bytes: "\n" line ends whatever the platform (read_text would hide a "\r\n").
    assert path.read_bytes() == (
        b"audience_key,audience_version,fingerprint\na,2,f1\na,10,f3\nb,1,f2\n"
    )
    assert fingerprints.read_recorded(path) == {
        ("a", 2): "f1",
        ("a", 10): "f3",
        ("b", 1): "f2",
    }


def test_recorded__missing_file_is_nothing_recorded(tmp_path: Path):
    assert fingerprints.read_recorded(tmp_path / "absent.csv") == {}


def test_record_new__adds_only_versions_without_a_fingerprint():
    versions = [
        AudienceVersion("a", 1, "new-a1", frozenset({1}), "a_v1.sql"),
        AudienceVersion("a", 2, "new-a2", frozenset({2}), "a_v2.sql"),
    ]
    recorded = {("a", 1): "released-a1"}
    added = fingerprints.record_new(versions, recorded)
    assert added == [versions[1]]
    assert recorded == {("a", 1): "released-a1", ("a", 2): "new-a2"}


# check --------------------------------------------------------------------------------

LISTED = "-- depends_on: {{ ref('a', v=1) }}\n-- depends_on: {{ ref( 'a' , v = 2 ) }}\n"


def _two_versions(fp1: str = "f1", fp2: str = "f2", changelog=frozenset({1, 2})):
    return [
        AudienceVersion("a", 1, fp1, changelog, "models/audiences/a_v1.sql"),
        AudienceVersion("a", 2, fp2, changelog, "models/audiences/a_v2.sql"),
    ]


def test_check__all_in_order_is_no_problem():
    assert check(_two_versions(), {("a", 1): "f1", ("a", 2): "f2"}, LISTED) == []


def test_check__changed_released_version_names_the_next_version_after_the_latest():
    [problem] = check(
        _two_versions(fp1="edited"), {("a", 1): "f1", ("a", 2): "f2"}, LISTED
    )
    assert (problem.key, problem.version) == ("a", 1)
    assert problem.message == (
        "a v1 changed its logic but kept its version (models/audiences/a_v1.sql). Keep v1 "
        "as it was; put the new logic in a_v3.sql, add `- v: 3` under versions, set "
        "latest_version: 3, add a changelog line saying what changed and why, then run "
        "`audiences versions record`. If what changed is a model-level holdout_share, "
        "every version inherits it: keep v1's share with an override under its `- v: 1` "
        "entry, `config: {meta: {audience: {holdout_share: <its share>}}}`."
    )


def test_check__no_changelog_line():
    problems = check(
        _two_versions(changelog=frozenset({1})),
        {("a", 1): "f1", ("a", 2): "f2"},
        LISTED,
    )
    assert [(p.version, p.message) for p in problems] == [
        (
            2,
            'a v2 has no changelog line: add {version: 2, date: "YYYY-MM-DD", change: '
            '"..."} to its changelog in models/audiences/_audiences.yml',
        )
    ]


def test_check__no_recorded_fingerprint():
    [problem] = check(_two_versions(), {("a", 1): "f1"}, LISTED)
    assert (problem.version, problem.message) == (
        2,
        "a v2 has no recorded fingerprint: once its changelog line is in, run "
        "`audiences versions record`",
    )


@pytest.mark.parametrize(
    "members_sql",
    [
        pytest.param("-- depends_on: {{ ref('a', v=1) }}", id="v2-missing"),
        pytest.param(LISTED.replace("'a' , v = 2", "'a' , v = 22"), id="v22-is-not-v2"),
        pytest.param(
            LISTED.replace("'a' , v = 2", "'ab' , v = 2"), id="other-audience"
        ),
    ],
)
def test_check__version_missing_from_the_members_model(members_sql):
    [problem] = check(_two_versions(), {("a", 1): "f1", ("a", 2): "f2"}, members_sql)
    assert (problem.version, problem.message) == (
        2,
        "a v2 is missing from models/intermediate/audiences/int_audience_members_unioned.sql"
        ": add the line -- depends_on: {{ ref('a', v=2) }}",
    )


def test_check__audience_keys_are_matched_literally_not_as_patterns():
    versions = [AudienceVersion("a.b", 1, "f", frozenset({1}), "x.sql")]
    assert check(versions, {("a.b", 1): "f"}, "ref('a.b', v=1)") == []
    assert len(check(versions, {("a.b", 1): "f"}, "ref('axb', v=1)")) == 1


def test_check__problems_carry_their_audience_key():
    versions = [AudienceVersion("k", 1, "edited", frozenset(), "k_v1.sql")]
    problems = check(versions, {("k", 1): "f"}, "")
    assert [(p.key, p.version) for p in problems] == [("k", 1)] * 3
    assert [(p.key, p.version) for p in check(versions, {}, "")] == [("k", 1)] * 3


def test_check__the_next_version_follows_the_latest_whatever_the_order():
    versions = list(reversed(_two_versions(fp1="edited")))
    [problem] = check(versions, {("a", 1): "f1", ("a", 2): "f2"}, LISTED)
    assert "put the new logic in a_v3.sql" in problem.message


def test_audience_versions__macros_are_this_project_s_by_the_manifest_s_name():
    """Another project name: its macros count, engagement_audiences' do not."""
    data = manifest()
    data["metadata"] = {"project_name": "other"}
    own = "macro.other.own"
    data["macros"][own] = {"macro_sql": "select 1", "depends_on": {"macros": []}}
    data["nodes"]["model.p.clicked_v1"]["depends_on"]["macros"] = [own, SIGNALS]
    changed = manifest(metadata={"project_name": "other"}, macros=dict(data["macros"]))
    changed["nodes"] = data["nodes"]
    changed["macros"][own] = {"macro_sql": "select 2", "depends_on": {"macros": []}}
    changed["macros"][SIGNALS] = {"macro_sql": "changed", "depends_on": {"macros": []}}
    assert fingerprint_of(changed) != fingerprint_of(data)
    only_signals = manifest(
        metadata={"project_name": "other"}, macros=dict(data["macros"])
    )
    only_signals["nodes"] = data["nodes"]
    only_signals["macros"][SIGNALS] = {
        "macro_sql": "changed",
        "depends_on": {"macros": []},
    }
    assert fingerprint_of(only_signals) == fingerprint_of(data)


def test_audience_versions__other_nodes_before_an_audience_are_skipped_not_the_end():
    data = manifest()
    data["nodes"] = {
        "model.p.dim_people": data["nodes"]["model.p.dim_people"],
        "model.p.clicked_v1": data["nodes"]["model.p.clicked_v1"],
    }
    assert [a.version for a in fingerprints.audience_versions(data)] == [1]


def test_audience_versions__a_model_without_macro_dependencies():
    data = manifest()
    node = data["nodes"]["model.p.clicked_v1"]
    del node["depends_on"]
    without_key = manifest()
    without_key["nodes"]["model.p.clicked_v1"]["depends_on"] = {}
    digest = hashlib.sha256(b"select * from a")
    digest.update(b"\0meta.holdout_share\0")
    digest.update(b"0")
    assert fingerprint_of(data) == fingerprint_of(without_key) == digest.hexdigest()


def test_check__a_recorded_version_no_longer_defined_is_a_problem():
    # Deleting an audience went unnoticed, and every member then left Segment.
    recorded = {("a", 1): "f1", ("a", 2): "f2", ("gone", 1): "f9"}
    [problem] = check(_two_versions(), recorded, LISTED)
    assert (problem.key, problem.version) == ("gone", 1)
    assert problem.message.startswith(
        "gone v1 has a recorded fingerprint in seeds/audience_fingerprints.csv but is "
        "no longer defined. If you retired it on purpose, delete its row from the seed"
    )


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ("a,v1,f1\n", "line 2: {'audience_key': 'a', 'audience_version': 'v1'"),
        ("a,1,f1\na,1,f2\n", "line 3: a v1 is recorded twice"),
        (",1,f1\n", "line 2:"),
    ],
)
def test_read_recorded__a_row_it_cannot_read_is_named(
    tmp_path: Path, rows: str, says: str
) -> None:
    # 'v1' was a ValueError traceback; a duplicate silently let the last row win.
    seed = tmp_path / "audience_fingerprints.csv"
    seed.write_text("audience_key,audience_version,fingerprint\n" + rows)
    with pytest.raises(fingerprints.DefinitionError) as raised:
        fingerprints.read_recorded(seed)
    assert says in str(raised.value)


@pytest.mark.parametrize("version", [1.1, "1.1", 0, "x"])
def test_a_version_that_is_not_a_whole_number_is_refused(version: object) -> None:
    with pytest.raises(fingerprints.DefinitionError, match="is not a whole number"):
        fingerprints._whole_version("a", version)
    assert fingerprints._whole_version("a", 2) == 2
    assert fingerprints._whole_version("a", "3") == 3


# reading another audience ---------------------------------------------------------------


def _reads(*refs: dict) -> dict:
    """The manifest with a third audience, `excluder` (unversioned), reading `refs`, and
    a versioned model that is no audience (`stg`)."""
    data = manifest()
    data["nodes"]["model.p.stg_v2"] = {
        "resource_type": "model", "name": "stg", "version": 2, "latest_version": 2,
        "raw_code": "select 1", "config": {"meta": {}},
        "original_file_path": "models/stg_v2.sql",
    }  # fmt: skip
    data["nodes"]["model.p.clicked_v1"]["latest_version"] = 2
    data["nodes"]["model.p.clicked_v2"]["latest_version"] = 2
    excluder = _audience_node("excluder", None, "select * from c")
    excluder["refs"] = list(refs)
    data["nodes"]["model.p.excluder"] = excluder
    return data


def _reads_of(data: dict) -> dict[tuple[str, int], tuple]:
    return {
        (a.key, a.version): a.unpinned_audience_reads
        for a in fingerprints.audience_versions(data)
    }


@pytest.mark.parametrize("version", [None, 0, "", False])
def test_audience_versions__an_audience_read_without_a_version_is_named(version):
    """Without a version, or with one dbt reads as none (any false value: the latest)."""
    unpinned = {"name": "clicked", "package": None, "version": version}
    assert _reads_of(_reads(unpinned)) == {
        ("clicked", 1): (),
        ("clicked", 2): (),
        ("excluder", 1): (("clicked", 2),),  # the version it resolves to: the latest
    }


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param({"name": "clicked", "package": None, "version": 2}, id="pinned"),
        pytest.param({"name": "clicked", "package": None, "version": "1"}, id="pinned-str"),
        pytest.param({"name": "dim_people", "package": None, "version": None}, id="model"),
        pytest.param({"name": "stg", "package": None, "version": None}, id="versioned-model"),
        pytest.param({"name": "excluder", "package": None, "version": None}, id="unversioned"),
    ],
)  # fmt: skip
def test_audience_versions__pinned_or_non_audience_reads_are_fine(ref: dict):
    """A pinned version, a model that is no audience, an audience without versions (its
    name is its only version until it gets a `versions:` list, and then this applies)."""
    assert _reads_of(_reads(ref))[("excluder", 1)] == ()


def test_audience_versions__each_unpinned_audience_once_sorted():
    data = _reads(
        {"name": "zeta", "package": None, "version": None},
        {"name": "clicked", "package": None, "version": None},
        {"name": "clicked", "package": None, "version": None},
    )
    # zeta's v3 is a prerelease: by name alone it reads v2, its latest_version.
    data["nodes"]["model.p.zeta_v3"] = {
        **_audience_node("zeta", 3, "select 3"), "latest_version": "2",
    }  # fmt: skip
    assert _reads_of(data)[("excluder", 1)] == (("clicked", 2), ("zeta", 2))


UNPINNED = (
    "a v1 reads the audience cart without a version (models/audiences/a_v1.sql). "
    "It reads cart v2 today, but cart's next version would change a v1's members "
    "with no new version of a. Name the version it reads today: "
    "exclude_audiences={'cart': 2} (in free SQL, ref('cart', v=2))."
)


@pytest.mark.parametrize(
    ("recorded", "says"),
    [
        pytest.param(
            {("a", 1): "f"},
            UNPINNED + " That changes v1's fingerprint but not its members: delete its "
            "row from seeds/audience_fingerprints.csv in the same commit and run "
            "`audiences versions record`.",
            id="recorded",
        ),
        # `record` refuses an unpinned version, so there is no row to delete.
        pytest.param({}, UNPINNED, id="not-recorded"),
    ],
)
def test_check__reading_an_audience_without_a_version(recorded, says):
    versions = [
        AudienceVersion(
            "a", 1, "f", frozenset({1}), "models/audiences/a_v1.sql",
            unpinned_audience_reads=(("cart", 2),),
        )
    ]  # fmt: skip
    problems = check(versions, recorded, "ref('a', v=1)")
    unpinned = [p for p in problems if "without a version" in p.message]
    assert [(p.key, p.version, p.message) for p in unpinned] == [("a", 1, says)]


def test_check__only_a_missing_fingerprint_is_fixed_by_record():
    """`audiences versions record` refuses every other problem (red team, 2026-12-08:
    it recorded a v2 without a changelog line, then the check refused it)."""
    versions = [
        AudienceVersion("a", 1, "edited", frozenset({1}), "a_v1.sql"),
        AudienceVersion(
            "a", 2, "f2", frozenset(), "a_v2.sql",
            unpinned_audience_reads=(("cart", 2),),
        ),
    ]  # fmt: skip
    problems = check(versions, {("a", 1): "f1", ("gone", 1): "f9"}, "ref('a', v=1)")
    assert [(p.key, p.version, p.fixed_by_record) for p in problems] == [
        ("a", 1, False),  # changed its logic
        ("a", 2, False),  # no changelog line
        ("a", 2, True),  # no recorded fingerprint
        ("a", 2, False),  # reads cart without a version
        ("a", 2, False),  # missing from the members model
        ("gone", 1, False),  # recorded, no longer defined
    ]
    assert "no recorded fingerprint" in problems[2].message


# undeclared_files ---------------------------------------------------------------------

CHANGELOG_3 = '`- {version: 3, date: "YYYY-MM-DD", change: "..."}`'
CHANGELOG_1 = CHANGELOG_3.replace("version: 3", "version: 1")


def _declared_in(yml: str) -> dict:
    """manifest() with clicked v1 and v2 declared in `yml`, latest v2, and an
    unversioned audience `plain`."""
    data = manifest()
    for node in data["nodes"].values():
        if node["name"] == "clicked":
            node.update(patch_path=f"engagement_audiences://{yml}", latest_version=2)
    plain = _audience_node("plain", None, "select 2")
    plain.update(
        original_file_path="models/audiences/plain.sql",
        patch_path="engagement_audiences://models/audiences/_plain.yml",
    )
    data["nodes"]["model.p.plain"] = plain
    return data


@pytest.mark.parametrize(
    ("path", "says"),
    [
        pytest.param(
            "models/audiences/clicked_v3.sql",
            "models/audiences/clicked_v3.sql is not a declared version of clicked: dbt "
            "builds it as the model clicked_v3, not as an audience version. To make it "
            "clicked v3, under `- name: clicked` in models/audiences/_clicked.yml add "
            f"`- v: 3` to `versions:` and {CHANGELOG_3} to `changelog:`, and set "
            "`latest_version: 3`; or move it out of models/audiences/.",
            id="a-new-version",
        ),
        pytest.param(
            "models/audiences/deeper/clicked_v2.sql",
            "models/audiences/deeper/clicked_v2.sql is not a declared version of "
            "clicked: dbt builds it as the model clicked_v2, not as an audience version. "
            "clicked v2 is models/audiences/clicked_v2.sql: delete this file, or move it "
            "out of models/audiences/.",
            id="a-version-defined-in-another-file",
        ),
        pytest.param(
            "models/audiences/winback.sql",
            "models/audiences/winback.sql is not a declared version of an audience: dbt "
            "builds it as the model winback, not as an audience version. To make it "
            "winback v1, rename it winback_v1.sql and add an audience to "
            'models/audiences/_audiences.yml (copy one; README "Add or change an '
            'audience"): `- name: winback`, `latest_version: 1`, `versions:` with '
            f"`- v: 1`, and {CHANGELOG_1} under `changelog:`; or move it out of "
            "models/audiences/.",
            id="no-audience-at-all",
        ),
        pytest.param(
            "models/audiences/plain.sql",
            "models/audiences/plain.sql is not a declared version of an audience: dbt "
            "builds it as the model plain, not as an audience version. To make it plain "
            "v1, rename it plain_v1.sql and under `- name: plain` in "
            "models/audiences/_plain.yml add `latest_version: 1`, `versions:` with "
            f"`- v: 1`, and {CHANGELOG_1} under `changelog:`; or move it out of "
            "models/audiences/.",
            id="an-audience-without-versions",
        ),
    ],
)
def test_undeclared_files__named_with_the_yml_lines_that_declare_them(path, says):
    declared = ["models/audiences/clicked_v1.sql", "models/audiences/clicked_v2.sql"]
    data = _declared_in("models/audiences/_clicked.yml")
    assert fingerprints.undeclared_files(data, declared) == []
    [problem] = fingerprints.undeclared_files(data, [*declared, path])
    assert problem.message == says
    assert not problem.fixed_by_record


def test_undeclared_files__an_older_version_number_keeps_latest_version():
    # v3 is declared but is a prerelease (latest_version 2); a v1 file is not the latest.
    data = _declared_in("models/audiences/_clicked.yml")
    data["nodes"]["model.p.clicked_v1"]["version"] = 3
    data["nodes"]["model.p.clicked_v1"]["original_file_path"] = "m/clicked_v3.sql"
    [problem] = fingerprints.undeclared_files(data, ["models/audiences/clicked_v1.sql"])
    assert (problem.key, problem.version) == ("clicked", 1)
    assert problem.message.endswith(
        "add `- v: 1` to `versions:` and "
        f"{CHANGELOG_1} to `changelog:`; or move it out of models/audiences/."
    )


def test_audience_files__every_sql_file_under_models_audiences(tmp_path: Path):
    for name in ("a_v1.sql", "deeper/b_v1.sql", "_audiences.yml", "notes.md"):
        (tmp_path / "models/audiences" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "models/audiences" / name).write_text("")
    (tmp_path / "models/other.sql").write_text("")
    assert fingerprints.audience_files(tmp_path) == [
        "models/audiences/a_v1.sql",
        "models/audiences/deeper/b_v1.sql",
    ]
