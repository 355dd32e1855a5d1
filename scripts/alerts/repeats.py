"""Which of a tick's alerts are posted, across ticks: a cause that stays raised tick after
tick is posted once, then again every --alert-repeat-hours; a cause that goes away is
posted once more, as resolved.

A tick every 15 minutes over a broken warehouse posted the same alert 96 times a day, and
a fixed problem was never said to be fixed. What each tick knew is kept in its
`audiences_ops.runs` row (`open_alerts`, as JSON), and the next tick starts from the last
finished tick's row:

- a cause raised again within the repeat window of its last post is not posted (the tick
  says so on stderr, with the time of that post);
- a cause raised again after the window, or never delivered (the webhook was down), is
  posted;
- a cause the last tick had open that this tick judged and did not raise is posted as
  resolved, if anyone was told of it, and closed;
- a cause this tick could not judge (its step did not run: `--no-sync`, a load that
  stopped the tick, a signal) stays open as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_REPEAT_HOURS = 6.0

# The step whose outcome decides each cause, by the step's name (scripts/run/command.py).
# run_error has none: every tick that ends without an error judges it.
JUDGED_BY = {
    "load_rejects": "load",
    "load_failed": "load",
    "build_failed": "dbt build",
    "data_health": "dbt build",
    "guardrail_refusal": "sync segment",
    "dead_letters": "sync segment",
    "sync_undelivered": "sync segment",
}


@dataclass
class OpenAlert:
    """A cause raised by every judging tick since `since`; last delivered at `posted_at`."""

    since: datetime
    posted_at: datetime | None = None


@dataclass
class Plan:
    post: list[str] = field(default_factory=list)
    # cause -> when it was last posted (it is not posted again yet)
    held: dict[str, datetime] = field(default_factory=dict)
    resolved: dict[str, OpenAlert] = field(default_factory=dict)


def plan(
    open_alerts: dict[str, OpenAlert],
    raised: set[str],
    judged: set[str],
    now: datetime,
    repeat: timedelta,
) -> Plan:
    """What to post this tick. `repeat` of zero posts every raised cause every tick."""
    decided = Plan()
    for cause in sorted(raised):
        earlier = open_alerts.get(cause)
        last = earlier.posted_at if earlier else None
        if last is not None and repeat > timedelta(0) and last <= now < last + repeat:
            decided.held[cause] = last
        else:
            decided.post.append(cause)
    for cause, earlier in sorted(open_alerts.items()):
        if cause not in raised and cause in judged and earlier.posted_at is not None:
            decided.resolved[cause] = earlier
    return decided


def after(
    open_alerts: dict[str, OpenAlert],
    raised: set[str],
    judged: set[str],
    delivered: set[str],
    now: datetime,
) -> dict[str, OpenAlert]:
    """The open alerts this tick leaves for the next one."""
    state: dict[str, OpenAlert] = {}
    for cause in raised:
        earlier = open_alerts.get(cause)
        since = earlier.since if earlier else now
        posted_at = (
            now if cause in delivered else (earlier.posted_at if earlier else None)
        )
        state[cause] = OpenAlert(since, posted_at)
    for cause, earlier in open_alerts.items():
        if cause not in raised and cause not in judged:
            state[cause] = earlier  # not judged: open as it was
    return state


def held_reason(earlier: OpenAlert, repeat: timedelta) -> str:
    """What a tick logs for a cause it does not post again."""
    assert earlier.posted_at is not None
    return (
        f"raised by every tick since {earlier.since:%Y-%m-%d %H:%M} UTC, last posted at "
        f"{earlier.posted_at:%Y-%m-%d %H:%M} UTC; posted again "
        f"{repeat.total_seconds() / 3600:g} h after that (--alert-repeat-hours), or as "
        "resolved when it clears"
    )


# The sync's exit codes after which it has judged its refusals (ran its guardrails) and
# its delivery (also tried to send): 0 ok, 3 refused, 5 partial; not 1, 2 or 4 (locked).
SYNC_JUDGED_REFUSALS = frozenset({0, 3, 5})
SYNC_JUDGED_DELIVERY = frozenset({0, 5})


def judged_causes(
    steps: dict[str, int], loads_expected: int, finished: bool, sync_sent: bool
) -> set[str]:
    """The causes a tick's steps decided, from each step that ran to its end (name ->
    exit code). Loads count only if every configured load ran; the sync's delivery
    causes only if it ran for real (not --dry-run) and got as far as sending."""
    loads_ran = sum(1 for name in steps if name.startswith("load "))
    sync_exit = steps.get("sync segment")
    judged = {"run_error"} if finished else set()
    for cause, step in JUDGED_BY.items():
        if step == "load":
            if loads_expected and loads_ran == loads_expected:
                judged.add(cause)
        elif step == "sync segment":
            if cause == "guardrail_refusal":
                if sync_exit in SYNC_JUDGED_REFUSALS:
                    judged.add(cause)
            elif sync_sent and sync_exit in SYNC_JUDGED_DELIVERY:
                judged.add(cause)
        elif step in steps:
            judged.add(cause)
    return judged


def dumps(state: dict[str, OpenAlert]) -> str | None:
    if not state:
        return None
    return json.dumps(
        {
            cause: {
                "since": alert.since.isoformat(),
                "posted_at": alert.posted_at.isoformat() if alert.posted_at else None,
            }
            for cause, alert in sorted(state.items())
        }
    )


def loads(text: str | None) -> dict[str, OpenAlert]:
    """A row's open alerts; what cannot be read is treated as none (alerts then post)."""
    try:
        document = json.loads(text or "{}")
        return {
            str(cause): OpenAlert(
                _naive_utc(value["since"]),
                _naive_utc(value["posted_at"]) if value.get("posted_at") else None,
            )
            for cause, value in document.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def _naive_utc(text: str) -> datetime:
    """Times are naive UTC here; one with an offset (a hand-edited state) is converted,
    since comparing it with a naive one raises."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
