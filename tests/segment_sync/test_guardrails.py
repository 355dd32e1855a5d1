"""Guardrails refuse with exit code 3 and send nothing; --force overrides (but not holdout
or an --empty build);
dry runs change nothing; the write key is required and never leaks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from scripts.segment_sync.redact import MIN_WRITE_KEY_LENGTH, Redactor
from tests.segment_sync import inputs
from tests.segment_sync.conftest import WRITE_KEY, Sync

AUDIENCE = "lapsed_buyers"
REFUSED, USAGE = 3, 2


def _state_snapshot(sync_cli: Sync) -> dict[str, list[tuple]]:
    tables = [
        "audience_state",
        "outbox",
        "runs",
        "dead_letters",
        "lock",
        "installation",
    ]
    with sync_cli.wh() as wh:
        if not wh.table_exists("segment_sync", "outbox"):
            return {}
        return {
            t: sorted(map(repr, wh.query(f"select * from segment_sync.{t}")))
            for t in tables
        }


def test_sync_segment__large_change_refused_then_forced(duck: str, sync_cli: Sync):
    base = [(AUDIENCE, f"u{i:03d}") for i in range(100)]
    sync_cli.members(base)
    assert sync_cli.run().code == 0
    requests = sync_cli.receiver.stats()["requests"]
    grown = base + [(AUDIENCE, f"n{i:03d}") for i in range(60)]
    sync_cli.members(grown)

    refused = sync_cli.run()

    assert refused.code == REFUSED
    assert "max_change" in refused.stderr
    assert "60%" in refused.stderr
    assert sync_cli.receiver.stats()["requests"] == requests
    assert sync_cli.query(
        "select status, exit_code from segment_sync.runs order by started_at desc limit 1"
    ) == [("refused", REFUSED)]
    assert sync_cli.query(
        "select count(*) from segment_sync.outbox where status = 'pending'"
    ) == [(0,)]
    # A looser limit or --force lets it through.
    assert sync_cli.run("--max-change-pct", "70", "--dry-run").code == 0
    forced = sync_cli.run("--force")
    assert forced.code == 0, forced.stderr
    assert sync_cli.state() == set(grown)


def test_sync_segment__small_audiences_skip_change_check(duck: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, "a"), (AUDIENCE, "b")])
    assert sync_cli.run().code == 0
    sync_cli.members([(AUDIENCE, "a"), (AUDIENCE, "c"), (AUDIENCE, "d")])
    assert sync_cli.run().code == 0
    assert sync_cli.run("--min-audience-size", "1").code == 0  # nothing left to change
    sync_cli.members([(AUDIENCE, "a")])
    assert sync_cli.run("--min-audience-size", "1").code == REFUSED


def test_sync_segment__drop_to_zero_refused(duck: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, "a"), ("vip", "b")])
    assert sync_cli.run().code == 0
    sync_cli.members([("vip", "b")])

    out = sync_cli.run()

    assert out.code == REFUSED
    assert "drop_to_zero" in out.stderr
    assert AUDIENCE in out.stderr
    assert sync_cli.run("--force").code == 0
    assert sync_cli.state() == {("vip", "b")}


def test_sync_segment__stale_inputs_refused(duck: str, sync_cli: Sync):
    old = inputs.utc_now() - timedelta(hours=80)
    sync_cli.members([(AUDIENCE, "a")], at=old)

    out = sync_cli.run()

    assert out.code == REFUSED
    assert "stale" in out.stderr
    assert sync_cli.receiver.stats()["requests"] == 0
    assert sync_cli.run("--max-staleness-hours", "100").code == 0


def test_sync_segment__failed_dbt_checks_refused(duck: str, sync_cli: Sync, tmp_path):
    sync_cli.members([(AUDIENCE, "a")])
    results = tmp_path / "run_results.json"
    results.write_text(
        json.dumps(
            {
                "results": [
                    {
                        "unique_id": "model.x.sync_segment__audience_memberships",
                        "status": "success",
                    },
                    {
                        "unique_id": "test.x.unique_sync_segment__audience_memberships_id.1",
                        "status": "fail",
                    },
                ]
            }
        )
    )

    out = sync_cli.run("--dbt-run-results", str(results))

    assert out.code == REFUSED
    assert "dbt_checks" in out.stderr
    assert sync_cli.run("--dbt-run-results", str(results), "--force").code == 0


def test_sync_segment__holdout_never_sent_even_forced(duck: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, "treated")])
    with sync_cli.wh() as wh:
        inputs.set_holdouts(
            wh, [(AUDIENCE, "treated", "treatment"), (AUDIENCE, "held", "holdout")]
        )
    assert sync_cli.run().code == 0
    assert {m["userId"] for m in sync_cli.receiver.messages().values()} == {"treated"}

    # A model bug lets the holdout member into the sync input: refused, --force or not.
    sync_cli.members([(AUDIENCE, "treated"), (AUDIENCE, "held")])
    for extra in ((), ("--force",)):
        out = sync_cli.run(*extra)
        assert out.code == REFUSED
        assert "holdout" in out.stderr
    assert {m["userId"] for m in sync_cli.receiver.messages().values()} == {"treated"}


def test_sync_segment__empty_build_never_sent_even_forced(
    duck: str, sync_cli: Sync, tmp_path
):
    """After `dbt run --empty` the sync inputs hold no rows: a forced sync would exit
    every member from Segment."""
    sync_cli.members([(AUDIENCE, "a"), ("vip", "b")])
    assert sync_cli.run().code == 0
    sent = sync_cli.receiver.stats()["requests"]
    sync_cli.members([])
    results = tmp_path / "run_results.json"
    results.write_text(json.dumps({"args": {"which": "run", "empty": True}}))
    for extra in ((), ("--force",)):
        out = sync_cli.run("--dbt-run-results", str(results), *extra)
        assert out.code == REFUSED
        assert "[empty_build] the last dbt run was `dbt run --empty`" in out.stderr
    assert sync_cli.receiver.stats()["requests"] == sent
    assert sync_cli.state() == {(AUDIENCE, "a"), ("vip", "b")}
    # A plain build's results (no `empty`) leave the usual rules: drop to zero, forced.
    results.write_text(json.dumps({"args": {"which": "build", "empty": False}}))
    out = sync_cli.run("--dbt-run-results", str(results))
    assert out.code == REFUSED
    assert "drop_to_zero" in out.stderr
    assert "empty_build" not in out.stderr


def test_sync_segment__dry_run_changes_nothing(engine: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, f"u{i}") for i in range(5)])
    plan_file = sync_cli.tmp_path / "plan.json"

    # Before any real run: no state schema at all, and no write key needed.
    first = sync_cli.run("--dry-run", "--plan-out", str(plan_file), write_key=None)
    assert first.code == 0, first.stderr
    assert _state_snapshot(sync_cli) == {}
    assert json.loads(plan_file.read_text())["audiences"][0]["enter"] == 5

    assert sync_cli.run().code == 0
    sync_cli.members([(AUDIENCE, f"u{i}") for i in range(2, 8)])
    before = _state_snapshot(sync_cli)

    out = sync_cli.run("--dry-run", "--plan-out", str(plan_file), "--full-resync")

    assert out.code == 0, out.stderr
    assert _state_snapshot(sync_cli) == before
    assert sync_cli.receiver.stats()["requests"] == 1
    plan = json.loads(plan_file.read_text())
    (audience,) = plan["audiences"]
    assert (audience["enter"], audience["exit"], audience["unchanged"]) == (3, 2, 3)
    assert audience["resync"] == 3
    kinds = {(s["type"], s.get("event")) for s in plan["samples"]}
    assert ("track", "Audience Exited") in kinds
    assert ("track", "Audience Entered") in kinds
    assert '"Audience Exited"' in out.stdout


def test_sync_segment__a_dry_run_s_plan_goes_beside_dbt_s_files(
    duck: str, sync_cli: Sync, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """Without --plan-out, the plan goes to dbt's target folder ($DBT_TARGET_PATH, else
    target/ of the project), not to a target/ of wherever the command was started (red
    team, 2026-12-07: from a folder holding a file named `target`, the dry run failed;
    from the home folder, it left a target/ there)."""
    sync_cli.members([(AUDIENCE, f"u{i}") for i in range(3)])
    started_in = tmp_path / "elsewhere"
    started_in.mkdir()
    (started_in / "target").write_text("not a folder")
    monkeypatch.chdir(started_in)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt-target"))

    out = sync_cli.run("--dry-run", write_key=None)

    assert out.code == 0, out.stderr
    plan = json.loads((tmp_path / "dbt-target" / "segment_sync_plan.json").read_text())
    assert plan["audiences"][0]["enter"] == 3


def test_sync_segment__real_run_needs_write_key(duck: str, sync_cli: Sync):
    sync_cli.members([(AUDIENCE, "a")])
    out = sync_cli.run(write_key=None)
    assert out.code == USAGE
    assert "SEGMENT_WRITE_KEY" in out.stderr
    assert sync_cli.receiver.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("key", "position"),
    [(" ", 1), ("k3y\n", 4), ("k3y é", 4)],
    ids=["blank", "line-break", "space-and-accent"],
)
def test_sync_segment__a_write_key_no_key_has_is_a_usage_error(
    duck: str, sync_cli: Sync, key: str, position: int
):
    """A blank key made every space of the output "the secret" and was redacted to
    `sent***0***of***518`; that or any other odd key got 401 or an encoding error,
    retried as a network fault (exit 5). Refused before anything is planned or sent,
    naming the position, not the key."""
    sync_cli.members([(AUDIENCE, "a")])
    out = sync_cli.run(write_key=key)
    assert out.code == USAGE, out.stderr
    assert out.stderr == (
        f"error: SEGMENT_WRITE_KEY holds a character no key has, at position {position} "
        f"of {len(key)} (a line break, a space or a non-ASCII character: pasted with "
        "the end of a line?); export the key alone\n"
    )
    assert sync_cli.receiver.stats()["requests"] == 0
    assert "***" not in out.stdout + out.stderr


@pytest.mark.parametrize("key", ["x", "placeholder"], ids=["one-letter", "a-word"])
def test_sync_segment__a_write_key_too_short_to_be_one_is_a_usage_error(
    duck: str, sync_cli: Sync, key: str
):
    """`SEGMENT_WRITE_KEY=x` redacted every "x" of the output ("does not e***ist"),
    which garbled it and showed the key. A real run refuses such a key before anything
    is planned or sent, by its length, never echoing it; a dry run, which needs no key,
    prints its plan ungarbled."""
    sync_cli.members([(AUDIENCE, key)])

    real = sync_cli.run(write_key=key)
    dry = sync_cli.run(
        "--dry-run", "--plan-out", str(sync_cli.tmp_path / "plan.json"), write_key=key
    )

    assert real.code == USAGE, real.stderr
    assert real.stderr == (
        "error: SEGMENT_WRITE_KEY is too short to be a Segment write key "
        f"({len(key)} character(s); Segment's have 32, and fewer than 12 are refused): "
        "export the write key of the Segment source (its Settings, API Keys), not a "
        "placeholder\n"
    )
    assert sync_cli.receiver.stats()["requests"] == 0
    assert not sync_cli.query(
        "select * from information_schema.tables where table_schema = 'segment_sync'"
    )
    assert dry.code == 0, dry.stderr
    assert "***" not in dry.stdout + dry.stderr
    assert f"{AUDIENCE} " in dry.stdout
    assert " exit " in dry.stdout  # the plan's header
    assert f'"userId": "{key}"' in dry.stdout  # a sample payload, as is


# ids: the key is random per process, and xdist workers must collect the same test ids
@pytest.mark.parametrize(
    "accepted_key",
    [WRITE_KEY, "some-other-key"],
    ids=["the-test-key", "some-other-key"],
)
def test_sync_segment__write_key_never_leaks(
    duck: str, sync_cli: Sync, duckdb_path, accepted_key: str
):
    """Accepted or refused (401), the key appears in no output, table or file."""
    sync_cli.receiver.write_key = accepted_key
    sync_cli.members([(AUDIENCE, f"u{i}") for i in range(3)])

    outs = [sync_cli.run(), sync_cli.run("--dry-run")]

    if accepted_key == WRITE_KEY:
        assert outs[0].code == 0
    else:
        assert outs[0].code == 5
        assert "401" in outs[0].stderr
        errors = sync_cli.query("select error from segment_sync.runs")
        assert "401" in (errors[0][0] or "")
    for out in outs:
        assert WRITE_KEY not in out.stdout + out.stderr
    assert WRITE_KEY.encode() not in duckdb_path.read_bytes()
    wal = duckdb_path.with_suffix(".duckdb.wal")
    assert not wal.exists() or WRITE_KEY.encode() not in wal.read_bytes()
    for path in sync_cli.tmp_path.rglob("*"):
        if path.is_file():
            assert WRITE_KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "option",
    [
        ["--max-rps", "nan"],
        ["--timeout", "inf"],
        ["--max-change-pct", "nan"],
        ["--max-staleness-hours", "nan"],
        ["--max-rate-limit-seconds", "nan"],
        ["--stale-lock-minutes", "inf"],
    ],
)
def test_sync_segment__a_non_finite_number_is_a_usage_error(
    duck: str, sync_cli: Sync, option: list[str]
):
    """click's FloatRange lets nan and inf through: --max-rps nan sent without any
    pacing (a limiter at nan per second never waits)."""
    sync_cli.members([(AUDIENCE, "a")])
    out = sync_cli.run(*option)
    assert out.code == USAGE, out.stderr
    assert option[0] in out.stderr
    assert sync_cli.receiver.stats()["requests"] == 0


def test_sync_segment__no_warehouse_file_is_said_and_none_is_created(
    duck: str, sync_cli: Sync, duckdb_path, monkeypatch: pytest.MonkeyPatch
):
    """A mistyped AUDIENCES_DUCKDB_PATH made the sync create an empty warehouse there."""
    missing = duckdb_path.parent / "typo.duckdb"
    monkeypatch.setenv("AUDIENCES_DUCKDB_PATH", str(missing))
    out = sync_cli.run()
    assert out.code == 1, out.stderr
    assert f"error: no warehouse at {missing}: load the data and run `dbt build`" in (
        out.stderr
    )
    assert not missing.exists()


def test_sync_segment__a_write_key_of_the_shortest_length_is_taken_and_redacted(
    duck: str, sync_cli: Sync
):
    """The boundary: 12 characters is a key (refused at 11, above), redacted wherever
    text leaves the process; one shorter is not redacted (it is never sent)."""
    key = "k" * MIN_WRITE_KEY_LENGTH
    sync_cli.members([(AUDIENCE, "a")])

    out = sync_cli.run(write_key=key)

    assert "too short" not in out.stderr, out.stderr
    assert Redactor(key)(f"key={key}!") == "key=***!"
    assert Redactor(key[:-1])(f"key={key[:-1]}!") == f"key={key[:-1]}!"
