"""SegmentSender's bounded wait: the real segment-analytics-python client, the local
receiver on 127.0.0.1. The library's flush() waits for ever for a message its consumer
dropped without telling its queue; the sender must give the group up instead, and must
not give up on a library that is only slow."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scripts.fakes.segment_receiver import SegmentReceiver
from scripts.segment_sync.client import SegmentSender, default_stall_seconds
from scripts.segment_sync.payloads import PayloadBuilder
from tests.segment_sync.conftest import WRITE_KEY

# Short enough for a test, far above a local round trip.
STALL_SECONDS = 1.5


def _identify(i: int) -> dict[str, Any]:
    return PayloadBuilder().build(
        message_id=f"sender-{i}",
        call_type="identify",
        audience_key="cart_abandoners",
        audience_name="Cart abandoners",
        audience_version=1,
        user_id=f"u{i}",
        is_member=True,
        exit_reason=None,
        occurred_at="2026-12-01T00:00:00Z",
    )


def _sender(receiver: SegmentReceiver, **kwargs: Any) -> SegmentSender:
    return SegmentSender(
        WRITE_KEY,
        receiver.url,
        redact=lambda text: text,
        max_retries=2,
        timeout=10,
        stall_seconds=STALL_SECONDS,
        **kwargs,
    )


def _send_with_deadline(sender: SegmentSender, group: list[dict[str, Any]]):
    """send() then close() in a thread, so a hang fails the test instead of the run."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        outcome["result"] = sender.send(group)
        sender.close()
        outcome["closed"] = True

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the sender waited for ever"
    assert outcome.get("closed")
    return outcome["result"]


def test_a_message_the_library_drops_gives_the_group_up(receiver: SegmentReceiver):
    # json.dumps cannot serialise a set: the library's consumer logs the exception and
    # drops the message without task_done(), so its flush() would never return.
    unserialisable = _identify(2)
    unserialisable["properties"] = {"tags": {"a"}}
    group = [_identify(1), unserialisable, _identify(3)]

    result = _send_with_deadline(_sender(receiver), group)

    assert result.fatal is not None
    assert "stopped accounting for 1 message(s)" in result.fatal
    # Nothing of the group is known delivered, so nothing is confirmed; every message
    # stays pending and its resend carries the same messageId (Segment dedupes it).
    assert result.confirmed == []
    assert set(result.failed) == {"sender-1", "sender-2", "sender-3"}
    assert not any(failure.row_level for failure in result.failed.values())
    assert receiver.message_ids() == {"sender-1", "sender-3"}


def test_a_slow_answer_is_not_a_stall(receiver: SegmentReceiver):
    # The answer takes twice the stall time, and the count of unfinished messages does
    # not move meanwhile: a request under way is the library at work.
    receiver.set_faults(delay_seconds=2 * STALL_SECONDS)
    group = [_identify(i) for i in range(3)]

    result = _send_with_deadline(_sender(receiver), group)

    assert result.fatal is None
    assert sorted(result.confirmed) == sorted(m["messageId"] for m in group)
    assert receiver.message_ids() == {m["messageId"] for m in group}


def test_a_sender_that_gave_up_sends_nothing_more(receiver: SegmentReceiver):
    unserialisable = _identify(1)
    unserialisable["properties"] = {"tags": {"a"}}
    sender = _sender(receiver)
    first = sender.send([unserialisable])
    assert first.fatal is not None

    second = sender.send([_identify(2)])
    sender.close()

    # The library's queue never drains again after a drop, so the next group is not
    # even handed to it: it is reported pending, not confirmed.
    assert second.fatal is not None
    assert second.confirmed == []
    assert set(second.failed) == {"sender-2"}
    assert "sender-2" not in receiver.message_ids()


@pytest.mark.parametrize("timeout", [5.0, 15.0, 400.0])
def test_the_default_stall_outlasts_the_library_s_quiet_spells(timeout: float):
    # The library waits up to 300 s for a Retry-After and 60 s between retries, and a
    # request may take `timeout` per read: none of those may read as a stall.
    assert default_stall_seconds(timeout) > max(300.0, 60.0, timeout)
