"""Issue 10 §1 and §3 on the demo warehouse (generated, loaded and built with dbt): the
sync plan sends or explains every treatment member of every synced audience, under both
identity policies; `audiences report` shows the same split and what each open flag
removed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.conftest import AS_OF, BIN, DemoWarehouse

SYNC_MODELS = (
    "sync_segment__audience_memberships",
    "sync_segment__audience_skips",
    "sync_segment__audience_exits",
)


def _treatment(demo_warehouse: DemoWarehouse) -> dict[str, tuple[int, int]]:
    """(treatment members, of whom without a user id) per synced audience."""
    with duckdb.connect(str(demo_warehouse.path), read_only=True) as connection:
        rows = connection.execute(
            """
            select members.audience_key, count(*), count(*) - count(members.user_id)
            from analytics.fct_audience_memberships as members
            inner join analytics.dim_audiences as audiences
                on members.audience_key = audiences.audience_key
                and members.audience_version = audiences.audience_version
            where audiences.is_latest and audiences.is_synced
                and members.arm = 'treatment'
            group by 1
            """
        ).fetchall()
    return {key: (int(total), int(no_id)) for key, total, no_id in rows}


def _plan(demo_warehouse: DemoWarehouse, name: str) -> dict:
    out = demo_warehouse.path.parent / name
    demo_warehouse.run(
        str(BIN / "audiences"), "sync", "segment", "--dry-run", "--plan-out", str(out)
    )
    return json.loads(out.read_text())


def _rebuild_sync_models(demo_warehouse: DemoWarehouse, policy: str) -> None:
    variables = json.dumps({"as_of": AS_OF, "segment_identity_policy": policy})
    demo_warehouse.run(
        str(BIN / "dbt"), "run", "--no-use-colors", "--select", *SYNC_MODELS,
        "--vars", variables,
    )  # fmt: skip


@pytest.fixture
def user_id_only(demo_warehouse: DemoWarehouse, tmp_path: Path) -> DemoWarehouse:
    """A copy of the demo warehouse with its sync models rebuilt under the user_id_only
    policy (a copy: the session's warehouse stays as the other tests expect it)."""
    shutil.copy(demo_warehouse.path, tmp_path / "warehouse.duckdb")
    copy = DemoWarehouse(
        tmp_path / "warehouse.duckdb",
        demo_warehouse.data_dir,
        {
            **demo_warehouse.env,
            "AUDIENCES_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        },
    )
    _rebuild_sync_models(copy, "user_id_only")
    return copy


def test_plan__default_policy_sends_or_explains_every_treatment_member(
    demo_warehouse: DemoWarehouse,
):
    treatment = _treatment(demo_warehouse)
    document = _plan(demo_warehouse, "plan-default.json")
    planned = {a["audience_key"]: a for a in document["audiences"]}

    assert set(treatment) <= set(planned)
    for key, (members, _) in treatment.items():
        audience = planned[key]
        assert audience["desired_members"] + audience["skipped"] == members, key
    # The email-only members are sent (anonymously), not dropped.
    assert sum(no_id for _, no_id in treatment.values()) > 0
    with duckdb.connect(str(demo_warehouse.path), read_only=True) as connection:
        anonymous = connection.execute(
            "select count(*) from analytics.sync_segment__audience_memberships "
            "where anonymous_id like 'anon-email-%' and user_id is null"
        ).fetchone()[0]
    assert anonymous == sum(no_id for _, no_id in treatment.values()) - sum(
        a["skipped_missing_identifier"] for a in planned.values()
    )


def test_plan__user_id_only_policy_counts_every_member_without_a_user_id(
    user_id_only: DemoWarehouse,
):
    treatment = _treatment(user_id_only)
    document = _plan(user_id_only, "plan-user-id-only.json")
    planned = {a["audience_key"]: a for a in document["audiences"]}

    for key, (members, without_user_id) in treatment.items():
        audience = planned[key]
        assert audience["skipped_missing_user_id"] == without_user_id, key
        assert audience["desired_members"] + audience["skipped"] == members, key
    assert document["skipped_by_reason"]["missing_user_id"] > 0


def test_report__shows_the_segment_split_and_opens_removed_per_flag(
    demo_warehouse: DemoWarehouse,
):
    out = demo_warehouse.run(str(BIN / "audiences"), "report").stdout
    treatment = _treatment(demo_warehouse)
    lines = out.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("synced audience")
    )
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        key, *numbers = line.split()
        rows[key] = [int(n) for n in numbers]
    for key, (members, _) in treatment.items():
        total, by_user_id, by_anonymous_id, *skipped = rows[key]
        assert total == members
        assert by_user_id + by_anonymous_id + sum(skipped) == members, key
    flags = {
        line.rsplit(None, 2)[0].strip(): [int(v) for v in line.split()[-2:]]
        for line in lines
        if line.startswith(("prefetched", "proxied", "all opens"))
    }
    # Default machine_open_flags = [prefetched]: proxied alone removes no open.
    assert flags["proxied only"][0] > 0
    assert flags["proxied only"][1] == 0
    assert flags["prefetched"][0] == flags["prefetched"][1] > 0
