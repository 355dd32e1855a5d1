"""Hand-written DuckDB queries, one per shipped audience version, for `make bench`.

Each states its audience's rule directly (README "Audiences") over the same resolved
tables the models read: analytics.int_message_events_resolved (events with person_id),
analytics.fct_orders, analytics.dim_people and analytics.int_people_globally_suppressed.
They share no code with the audience macros on purpose: the bench fails when a model and
its query disagree on who is in, and times the model against the query.
"""

from __future__ import annotations


def _events(as_of: str) -> str:
    return (
        "select * from analytics.int_message_events_resolved "
        f"where person_id is not null and occurred_at <= timestamp '{as_of}'"
    )


def _clicks(as_of: str, channels: str, hours: int, extra: str = "") -> str:
    return f"""
        select person_id, max(occurred_at) as signal_at
        from ({_events(as_of)})
        where metric = 'clicked' and channel in ({channels})
          and not coalesce(is_machine, false)
          and occurred_at >= timestamp '{as_of}' - interval {hours} hour {extra}
        group by person_id"""


def _kept(
    signals: str,
    *,
    no_purchase_since: bool = False,
    unsubscribed: tuple[str, ...] | None = (),
    spam: bool = True,
    bounces: bool = False,
    global_list: bool = True,
    excluded: str | None = None,
) -> str:
    """The suppressions, written out for the one audience at hand."""
    where = ["true"]
    if no_purchase_since:
        where.append(
            "(p.last_purchase_at is null or date_trunc('second', p.last_purchase_at) "
            "< date_trunc('second', s.signal_at))"
        )
    if unsubscribed is not None:
        where.append("not p.is_unsubscribed")
        where.extend(f"not p.is_{channel}_unsubscribed" for channel in unsubscribed)
    if spam:
        where.append("not p.has_spam_complaint")
    if bounces:
        where.append("not p.has_hard_bounce")
    if global_list:
        where.append(
            "s.person_id not in (select person_id from "
            "analytics.int_people_globally_suppressed)"
        )
    if excluded:
        where.append(f"s.person_id not in (select person_id from ({excluded}))")
    return f"""
        select s.person_id, s.signal_at
        from ({signals}) as s
        join analytics.dim_people as p on p.person_id = s.person_id
        where {" and ".join(where)}"""


def queries(as_of_iso: str) -> dict[str, str]:
    """Relation name -> query returning (person_id, signal_at), as of `as_of_iso`."""
    as_of = as_of_iso.replace("T", " ").removesuffix("Z")
    cart = "and campaign_id in ('102', '103') and link_url like '%/cart%'"

    def cart_recovery(hours: int) -> str:
        return _kept(
            _clicks(as_of, "'email', 'sms'", hours, cart), no_purchase_since=True
        )

    replenishment = f"""
        select person_id, max(occurred_at) as signal_at
        from ({_events(as_of)})
        where metric = 'clicked' and channel in ('email', 'sms', 'push')
          and campaign_id = '104' and link_url like '%/products/%'
          and not coalesce(is_machine, false)
          and occurred_at >= timestamp '{as_of}' - interval 120 hour
        group by person_id
        having max(occurred_at) <= timestamp '{as_of}' - interval 48 hour"""
    window = f"timestamp '{as_of}' - interval 45 day"
    unengaged = f"""
        select person_id,
               max(case when metric = 'delivered' and occurred_at >= {window}
                        then occurred_at end) as signal_at
        from ({_events(as_of)})
        where channel in ('email', 'sms')
        group by person_id
        having min(occurred_at) <= {window}
           and count(case when metric = 'delivered' and occurred_at >= {window}
                          then 1 end) > 0
           and count(case when metric in ('opened', 'clicked')
                          and not coalesce(is_machine, false)
                          and occurred_at >= {window} then 1 end) = 0"""
    purchasers = f"""
        select person_id, max(ordered_at) as signal_at
        from analytics.fct_orders
        where person_id is not null and not is_cancelled
          and ordered_at <= timestamp '{as_of}'
          and ordered_at >= timestamp '{as_of}' - interval 30 day
        group by person_id"""
    fatigued = f"""
        select person_id, max(occurred_at) as signal_at
        from ({_events(as_of)})
        where metric = 'sent' and channel in ('email', 'sms')
          and occurred_at >= timestamp '{as_of}' - interval 168 hour
        group by person_id
        having count(*) >= 6"""
    current_cart = cart_recovery(72)
    return {
        "cart_recovery_clicked_no_purchase_v1": cart_recovery(168),
        "cart_recovery_clicked_no_purchase_v2": current_cart,
        "replenishment_clicked_no_purchase_v1": _kept(
            replenishment, no_purchase_since=True
        ),
        "unengaged_45_days_v1": _kept(unengaged, bounces=True),
        "recent_purchasers_v1": _kept(purchasers, unsubscribed=None, spam=False),
        "fatigued_v1": _kept(
            fatigued, unsubscribed=None, spam=False, global_list=False
        ),
        "email_clickers_v1": _kept(
            _clicks(as_of, "'email'", 720),
            unsubscribed=("email",),
            excluded=current_cart,
        ),
        "sms_clickers_v1": _kept(
            _clicks(as_of, "'sms'", 720), unsubscribed=("sms",), excluded=current_cart
        ),
    }
