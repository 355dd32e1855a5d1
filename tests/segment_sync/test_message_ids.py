"""messageIds are a pure function of (installation id, audience, user, transition,
generation, call): never of the run that sends them. The expected ids are computed here
from that scheme with hashlib, not with the project's own `payloads.message_id`, so a
change that salts ids with the run id (resends would still pass, since they reuse stored
ids) breaks this test. Checked on both engines: the ids are computed in warehouse SQL."""

from __future__ import annotations

import hashlib

from tests.segment_sync.conftest import Sync

AUDIENCE = "lapsed_buyers"


def expected_id(
    installation: str, user: str, transition: str, generation: int, call: str
) -> str:
    # The scheme: md5 over the fields joined with "|", the nonce (empty outside
    # --full-resync) between generation and call type, prefixed "ea-".
    text = "|".join(
        (installation, AUDIENCE, transition, str(generation), "", call, user)
    )
    return "ea-" + hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _ids(installation: str, user: str, transition: str, generation: int) -> set[str]:
    return {
        expected_id(installation, user, transition, generation, call)
        for call in ("identify", "track")
    }


def test_sync_segment__message_ids_are_a_pure_function_of_the_transition(
    engine: str, sync_cli: Sync
):
    sync_cli.members([(AUDIENCE, "ann"), (AUDIENCE, "bob")])
    assert sync_cli.run().code == 0
    ((installation,),) = sync_cli.query(
        "select installation_id from segment_sync.installation"
    )
    entered = _ids(installation, "ann", "enter", 1) | _ids(
        installation, "bob", "enter", 1
    )
    assert sync_cli.receiver.message_ids() == entered

    # Later runs (new run ids): ann leaves, then comes back with generation 2.
    sync_cli.members([(AUDIENCE, "bob")])
    assert sync_cli.run().code == 0
    sync_cli.members([(AUDIENCE, "bob"), (AUDIENCE, "ann")])
    assert sync_cli.run().code == 0

    assert sync_cli.receiver.message_ids() == (
        entered
        | _ids(installation, "ann", "exit", 1)
        | _ids(installation, "ann", "enter", 2)
    )
    runs = sync_cli.query("select count(distinct run_id) from segment_sync.runs")
    assert runs == [(3,)]
    # The outbox keeps the same ids the receiver saw, under each transition's identify id.
    stored = sync_cli.query(
        "select message_id, transition_id, call_type from segment_sync.outbox "
        "where user_id = 'ann' and transition = 'exit'"
    )
    identify = expected_id(installation, "ann", "exit", 1, "identify")
    assert sorted(stored) == sorted(
        [
            (identify, identify, "identify"),
            (expected_id(installation, "ann", "exit", 1, "track"), identify, "track"),
        ]
    )
