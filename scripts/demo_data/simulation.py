"""One shard's year: a discrete-event simulation of the brand and its people.

A single time-ordered heap holds what happens next: scheduled broadcasts, sign-ups,
abandoned carts, orders, flow steps. Popping an action at time T can only create events
at or after T, so every day before T's day is complete and is written out; memory holds
the people and a few days of traffic, never the whole run.

Flows: welcome series on sign-up; cart recovery (email 1 h, SMS 4 h, email 24 h; exits
on order); order confirmation (email + push); a 30-day replenishment flow after a serum
order (email day 27, push day 30; exits on reorder); weekly newsletters; flash-sale and
back-in-stock API-triggered broadcasts; an in-app loyalty reminder for app users.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import heapq
import random
import sys
import time
from pathlib import Path

from scripts.demo_data import funnel, schedule, segment_events, webhooks
from scripts.demo_data.campaigns import (
    CART_EMAIL_1,
    CART_EMAIL_2,
    CART_SMS,
    LOYALTY_IN_APP,
    ORDER_EMAIL,
    ORDER_PUSH,
    REPLENISH_EMAIL,
    REPLENISH_PUSH,
    WELCOME_1,
    WELCOME_2,
    WELCOME_3,
    WELCOME_IN_APP,
    Message,
    newsletter_subject,
)
from scripts.demo_data.clock import DAY, HOUR, MINUTE, Period
from scripts.demo_data.dirt import Dirt
from scripts.demo_data.ids import IdMaker
from scripts.demo_data.orders import OrderFiles, basket, currency_for
from scripts.demo_data.people import Person, make_person
from scripts.demo_data.writer import DayFiles

BROADCAST, SIGNUP, CART, ORGANIC, SEND, ORDER, UPDATE, RESUB, APP = range(9)
YEAR = 365 * DAY
# No human open or click for this long: newsletters only, monthly (a sunset policy).
SUNSET_AFTER = 60 * DAY
SHOP_ONLY_SHARE = 1 / 16  # shop customers Customer.io never saw (never messaged)

# kind -> (probability a human click leads to an order, delay scale in seconds)
CONVERSION = {
    "cart_recovery": (0.3, 10 * HOUR),
    "replenishment": (0.35, 40 * HOUR),
    "flash_sale": (0.08, 36 * HOUR),
    "back_in_stock": (0.12, 24 * HOUR),
    "welcome": (0.06, 48 * HOUR),
    "newsletter": (0.02, 48 * HOUR),
    "loyalty": (0.08, 24 * HOUR),
    "order_confirmation": (0.0, HOUR),
}
WEBHOOK_DIRT = {
    "late": 0.003,
    "duplicate": 0.001,
    "conflicting": 0.00005,
    "malformed": 0.0001,
    "forced": {
        50: "duplicate",
        60: "conflicting",
        70: "truncated_json",
        80: "garbage_bytes",
        90: "json_array",
        100: "late",
    },
}
SEGMENT_DIRT = {
    "late": 0.002,
    "duplicate": 0.001,
    "conflicting": 0.0,
    "malformed": 0.0001,  # Segment keeps messageId stable on retries: no conflicts
    "forced": {30: "duplicate", 40: "truncated_json", 50: "late"},
}


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    out: str
    shard: int
    shards: int
    people: int
    days: int
    seed: int
    end_date: dt.date
    # Print the simulated day to stderr at each tenth of the period (never in the files).
    progress: bool = False


def shard_range(total: int, shard: int, shards: int) -> range:
    return range(total * shard // shards, total * (shard + 1) // shards)


def run_shard(spec: ShardSpec) -> dict:
    started = time.perf_counter()
    result = Simulation(spec).run()
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


class Simulation:
    def __init__(self, spec: ShardSpec) -> None:
        self.spec = spec
        period = self.period = Period(spec.end_date, spec.days)
        self.start = period.start_ts
        self.end = period.end_ts
        rng = self.rng = random.Random(f"shard:{spec.seed}:{spec.shard}:{spec.shards}")
        self.ids = IdMaker(rng)
        root = Path(spec.out)
        self.web_files = DayFiles(root, "webhooks", spec.shard, period, rng, 0.03)
        self.seg_files = DayFiles(root, "segment", spec.shard, period, rng, 0.03)
        self.web = Dirt(rng, self.web_files, period, **WEBHOOK_DIRT)
        self.seg = Dirt(rng, self.seg_files, period, **SEGMENT_DIRT)
        self.orders = OrderFiles(root, spec.shard, period)
        policy = segment_events.SegmentPolicy(period)
        self.segment_on = policy.on_ts
        self.outage_from = policy.outage_from
        self.outage_to = policy.outage_to
        self.segment_names = {
            channel: segment_events.EVENT_NAMES.get(channel, {})
            for channel in ("email", "sms", "push", "in_app")
        }
        self.ulid = self.ids.ulid
        self.web_emit = self.web.emit
        self.seg_emit = self.seg.emit
        self.heap: list = []
        self.seq = 0
        self.order_seq = 0
        self.counts: dict[str, dict[str, int]] = {
            channel: {} for channel in ("customer", "email", "sms", "push", "in_app")
        }
        self.segment_counts: dict[str, int] = {}
        self.stats = {
            "segment_mirrored": 0,
            "segment_only": 0,
            "webhook_lost_in_outage": 0,
            "email_opens_prefetched": 0,
            "email_clicks_machine": 0,
            "orders_attributed": 0,
        }
        salt = random.Random(f"cio:{spec.seed}").getrandbits(48)
        people: list[Person] = []
        for index in shard_range(spec.people, spec.shard, spec.shards):
            people.append(make_person(index, rng, period, self.ids, salt, True))
        shop_only = int(spec.people * SHOP_ONLY_SHARE)
        for offset in shard_range(shop_only, spec.shard, spec.shards):
            people.append(
                make_person(spec.people + offset, rng, period, self.ids, salt, False)
            )
        self.people = people
        by_signup = sorted((p for p in people if p.in_cio), key=lambda p: p.signup_ts)
        # Broadcast audiences by channel consent (static); dynamic state is checked per send.
        self.audiences: dict[str, tuple[list[Person], list[int]]] = {}
        for channel, wanted in (
            ("email", lambda p: p.email_marketing),
            ("sms", lambda p: p.sms_opt_in),
            ("push", lambda p: p.app_platform is not None),
        ):
            members = [p for p in by_signup if wanted(p)]
            self.audiences[channel] = (members, [p.signup_ts for p in members])
        self.newsletter_variants: dict[int, tuple[Message, Message]] = {}

    # -- scheduling -------------------------------------------------------------

    def push(self, ts: int, kind: int, person: Person | None, payload=None) -> None:
        if ts < self.end:
            self.seq += 1
            heapq.heappush(self.heap, (ts, self.seq, kind, person, payload))

    def _next(self, ts: int, per_year: float) -> int:
        return (
            ts + int(self.rng.expovariate(per_year / YEAR))
            if per_year > 0
            else self.end
        )

    def _report_progress(self, day: int) -> None:
        """One line on stderr each time the simulated day enters a new tenth of the
        period: a year of 200k people takes minutes per shard, and each shard reports
        apart (its own process). No event is simulated past the period (push), so the
        last line is the last tenth begun; the shard's summary line follows it."""
        days = self.spec.days
        tenth = day * 10 // days
        if tenth <= self._reported_tenth:
            return
        self._reported_tenth = tenth
        seconds = time.perf_counter() - self._started
        print(
            f"shard {self.spec.shard + 1}/{self.spec.shards}: day {day:,} "
            f"of {days:,} ({tenth * 10} %), {seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def run(self) -> dict:
        self._started = time.perf_counter()
        self._reported_tenth = 0
        for broadcast in schedule.build(self.period, self.spec.seed):
            self.push(broadcast.ts, BROADCAST, None, broadcast)
        r = self.rng.random
        for p in self.people:
            begin = max(self.start, p.signup_ts)
            if p.in_cio:
                if p.signup_ts >= self.start:
                    self.push(p.signup_ts, SIGNUP, p)
                self.push(self._next(begin, p.cart_rate), CART, p)
                if p.app_platform:
                    self.push(begin + int(r() * 30 * DAY), APP, p)
            self.push(self._next(begin, p.order_rate), ORGANIC, p)
        heap = self.heap
        pop = heapq.heappop
        day = 0
        day_start = self.start
        handlers = {
            BROADCAST: self.act_broadcast,
            SIGNUP: self.act_signup,
            CART: self.act_cart,
            ORGANIC: self.act_organic,
            SEND: self.act_send,
            ORDER: self.act_order,
            UPDATE: self.act_update,
            RESUB: self.act_resubscribe,
            APP: self.act_app,
        }
        while heap:
            ts, _, kind, person, payload = pop(heap)
            if ts >= day_start + DAY:
                day = (ts - self.start) // DAY
                day_start = self.start + day * DAY
                self.web_files.flush_before(day)
                self.seg_files.flush_before(day)
                if self.spec.progress:
                    self._report_progress(day)
            handlers[kind](ts, person, payload)
        self.web_files.close()
        self.seg_files.close()
        self.orders.close()
        return self.result()

    # -- actions ----------------------------------------------------------------

    def act_broadcast(self, ts: int, _: None, b: schedule.Broadcast) -> None:
        r = self.rng.random
        deliver = self.deliver
        ulid = self.ids.ulid
        newsletter = b.kind == "newsletter"
        sunset_ok = newsletter and (b.week or 0) % 4 == 0
        share = b.audience_share
        for message in b.messages:
            channel = message.channel
            people, signups = self.audiences[channel]
            # People who had signed up by now: a prefix of the list sorted by sign-up.
            for p in people[: bisect.bisect_right(signups, ts)]:
                if share < 1.0 and r() >= share:
                    continue
                if channel == "email":
                    if p.unsubscribed:
                        continue
                    if ts - p.last_engaged_ts > SUNSET_AFTER and not sunset_ok:
                        continue
                    send_ts = ts + int(r() * 45 * MINUTE)
                elif channel == "sms":
                    if p.sms_stopped:
                        continue
                    send_ts = ts + 2 * HOUR + int(r() * 20 * MINUTE)
                else:
                    if p.app_platform is None:
                        continue
                    send_ts = ts + 3 * HOUR + int(r() * 10 * MINUTE)
                if newsletter:
                    content_id = 1 if r() < 0.5 else 2
                    message = self._variant(b, content_id)
                    deliver(p, message, send_ts, "", None, None, content_id)
                else:
                    deliver(p, message, send_ts, ulid(send_ts), None, b.trigger_id)

    def _variant(self, b: schedule.Broadcast, content_id: int) -> Message:
        week = b.week or 0
        pair = self.newsletter_variants.get(week)
        if pair is None:
            base = b.messages[0]
            other = dataclasses.replace(base, subject=newsletter_subject(week, 2))
            pair = self.newsletter_variants[week] = (base, other)
        return pair[content_id - 1]

    def act_signup(self, ts: int, p: Person, _: None) -> None:
        if not p.email_marketing and p.app_platform is None:
            return
        journey = self.ids.ulid(ts)
        trigger = self.ids.ulid(ts)
        steps = ((WELCOME_1, 5 * MINUTE), (WELCOME_2, 2 * DAY), (WELCOME_3, 5 * DAY))
        for message, after in steps:
            self.push(ts + after, SEND, p, (message, journey, trigger, "", None))
        if p.app_platform:
            after = DAY + int(self.rng.random() * 2 * DAY)
            self.push(ts + after, SEND, p, (WELCOME_IN_APP, journey, trigger, "", None))

    def act_cart(self, ts: int, p: Person, _: None) -> None:
        self.push(self._next(ts, p.cart_rate), CART, p)
        r = self.rng.random
        token = self.ids.token(12)
        journey = self.ids.ulid(ts)
        trigger = self.ids.ulid(ts)
        self.push(ts + HOUR, SEND, p, (CART_EMAIL_1, journey, trigger, token, ts))
        if p.sms_opt_in:
            sms_journey = self.ids.ulid(ts)
            self.push(
                ts + 4 * HOUR, SEND, p, (CART_SMS, sms_journey, trigger, token, ts)
            )
        self.push(ts + DAY, SEND, p, (CART_EMAIL_2, journey, trigger, token, ts))
        if r() < 0.12:  # came back and bought without any reminder
            self.push(
                ts + 10 * MINUTE + int(r() * r() * 2 * DAY), ORDER, p, ("cart", None, 0)
            )

    def act_organic(self, ts: int, p: Person, _: None) -> None:
        self.push(self._next(ts, p.order_rate), ORGANIC, p)
        self.act_order(ts, p, ("organic", None, 0))

    def act_app(self, ts: int, p: Person, _: None) -> None:
        self.push(ts + 30 * DAY + int(self.rng.random() * 20 * DAY), APP, p)
        if p.signup_ts <= ts:
            self.deliver(p, LOYALTY_IN_APP, ts, journey_id=self.ids.ulid(ts))

    def act_send(self, ts: int, p: Person, payload) -> None:
        message, journey, trigger, token, exit_since = payload
        if exit_since is not None and p.last_order_ts > exit_since:
            return  # the flow's exit condition: they ordered since it started
        channel = message.channel
        if channel == "email":
            if message.marketing and (not p.email_marketing or p.unsubscribed):
                return
        elif channel == "sms":
            if not p.sms_opt_in or p.sms_stopped:
                return
        elif p.app_platform is None:
            return
        self.deliver(
            p, message, ts, journey_id=journey, trigger_event_id=trigger, token=token
        )

    def act_order(self, ts: int, p: Person, payload) -> None:
        source, conversion, since = payload
        if source == "repeat" and p.last_order_ts > since:
            return  # already reordered
        r = self.rng.random
        self.order_seq += 1
        spec = self.spec
        order_id = f"ord_{100000 + self.order_seq * spec.shards + spec.shard}"
        total, serum = basket(self.rng, source in ("replenishment", "repeat"))
        if p.legacy_id is None and p.id_change_ts > ts:
            p.id_change_ts = ts  # checkout created an account: the lead gets an id
        guest = not p.in_cio and p.index % 3 == 0
        customer_id = "" if guest else p.customer_id
        email = p.display_email if ts < p.lowercase_from_ts else p.email
        currency = currency_for(p.index)
        row = (order_id, customer_id, email, total, currency, ts)
        self.orders.write(
            ts, order_id, customer_id, email, "completed", total, currency, ts
        )
        p.last_order_ts = ts
        p.orders += 1
        if conversion is not None:
            self.stats["orders_attributed"] += 1
            self.emit(conversion, [(ts, "converted", None)])
        if p.in_cio:
            token = order_id
            self.push(
                ts + 40 + int(r() * 80), SEND, p, (ORDER_EMAIL, "", None, token, None)
            )
            if p.app_platform:
                push_ts = ts + 60 + int(r() * 120)
                self.push(push_ts, SEND, p, (ORDER_PUSH, "", None, token, None))
            if serum:
                journey = self.ids.ulid(ts)
                trigger = self.ids.ulid(ts)
                at = ts + 27 * DAY + int(r() * 4 * HOUR)
                self.push(at, SEND, p, (REPLENISH_EMAIL, journey, trigger, "", ts))
                if p.app_platform:
                    at = ts + 30 * DAY + int(r() * 4 * HOUR)
                    self.push(at, SEND, p, (REPLENISH_PUSH, journey, trigger, "", ts))
        if serum and r() < 0.3:
            at = ts + 28 * DAY + int(r() * 12 * DAY)
            self.push(at, ORDER, p, ("repeat", None, ts))
        x = r()
        if x < 0.025:
            self.push(
                ts + 15 * MINUTE + int(r() * 8 * HOUR), UPDATE, p, ("cancelled", row)
            )
        elif x < 0.07:
            self.push(ts + 4 * DAY + int(r() * 21 * DAY), UPDATE, p, ("refunded", row))

    def act_update(self, ts: int, _: Person, payload) -> None:
        status, (order_id, customer_id, email, total, currency, ordered_at) = payload
        self.orders.write(
            ts, order_id, customer_id, email, status, total, currency, ordered_at
        )

    def act_resubscribe(self, ts: int, p: Person, _: None) -> None:
        p.unsubscribed = False
        p.last_engaged_ts = ts
        self.emit_customer(p, "subscribed", ts)

    # -- one delivery -----------------------------------------------------------

    def deliver(
        self,
        p: Person,
        message: Message,
        ts: int,
        journey_id: str = "",
        trigger_event_id: str | None = None,
        trigger_id: int | None = None,
        content_id: int = 0,
        token: str = "",
    ) -> None:
        rng = self.rng
        channel = message.channel
        person_id, email = p.identity(ts)
        if p.ident_key != (person_id, email):
            p.ident_key = (person_id, email)
            p.ident_json = webhooks.identifiers(person_id, email, p.cio_id)
        parent = webhooks.parent_fields(
            message,
            self.ids.delivery_id(),
            journey_id,
            trigger_event_id,
            trigger_id,
            content_id,
        )
        device = (p.device_id, p.app_platform) if channel == "push" else None
        d = webhooks.Delivery(
            message, parent, person_id, email, p.ident_json, token, p.phone, device
        )
        if channel == "email":
            events, click_ts, _, flags = funnel.email(
                rng, p, ts, message.marketing, message.drafted, len(message.links)
            )
        elif channel == "sms":
            events, click_ts, _, flags = funnel.sms(rng, p, ts)
        elif channel == "push":
            events, click_ts, _, flags = funnel.push(rng, p, ts, bool(message.links))
        else:
            events, click_ts, _, flags = funnel.in_app(rng, p, ts)
        if channel == "email":
            for event_ts, metric, detail in events:
                if metric == "opened" and detail < funnel.OPEN_PREFETCH:
                    # A human open (MPP prefetches are not engagement): sunset clock resets.
                    p.last_engaged_ts = max(p.last_engaged_ts, event_ts)
                    break
        self.emit(d, events)
        if flags:
            self._consequences(p, events, flags)
        if click_ts >= 0:
            p.last_engaged_ts = max(p.last_engaged_ts, click_ts)
            probability, scale = CONVERSION[message.kind]
            if rng.random() < probability:
                delay = 60 + int(scale * rng.random() * rng.random())
                source = "replenishment" if message.kind == "replenishment" else "click"
                self.push(click_ts + delay, ORDER, p, (source, d, 0))

    def _consequences(self, p: Person, events: list, flags: int) -> None:
        if flags & (funnel.UNSUBSCRIBED | funnel.SPAM):
            metric = "unsubscribed" if flags & funnel.UNSUBSCRIBED else "spammed"
            at = next(ts for ts, m, _ in events if m == metric) + 1
            p.unsubscribed = True  # a spam complaint unsubscribes too
            if at < self.end:
                self.emit_customer(p, "unsubscribed", at)
            if self.rng.random() < 0.06:
                self.push(at + 3 * DAY + int(self.rng.random() * 60 * DAY), RESUB, p)
        if flags & funnel.HARD_BOUNCE:
            p.email_suppressed = True
        if flags & funnel.SMS_STOP:
            p.sms_stopped = True
        if flags & funnel.PUSH_BOUNCE:
            p.push_bounced = True
        if flags & funnel.UNINSTALLED:
            p.app_platform = None

    def emit(self, d: webhooks.Delivery, events: list) -> None:
        """File the metric events of delivery `d` in the webhook and/or Segment streams.

        The hottest loop of the generator (once per event): kept flat on purpose.
        """
        channel = d.channel
        prefix = d.parent + d.ident
        counts = self.counts[channel]
        web_emit = self.web_emit
        ulid = self.ulid
        start = self.start
        end = self.end
        outage_from = self.outage_from
        outage_to = self.outage_to
        segment_on = self.segment_on
        stats = self.stats
        for ts, metric, detail in events:
            if ts >= end:
                continue
            if metric == "replied":
                detail = ulid(ts)
            extra = d.fields(metric, detail)
            day = (ts - start) // DAY
            lost = outage_from <= ts < outage_to
            if lost:
                stats["webhook_lost_in_outage"] += 1
            else:
                web_emit(
                    day,
                    ts,
                    f'{{"event_id":"{ulid(ts)}","object_type":"{channel}",'
                    f'"metric":"{metric}","timestamp":{ts},"data":{{{prefix}{extra}}}}}\n',
                )
                counts[metric] = counts.get(metric, 0) + 1
                if channel == "email":
                    if metric == "opened" and detail == funnel.OPEN_PREFETCH:
                        stats["email_opens_prefetched"] += 1
                    elif metric == "clicked" and detail & 1:
                        stats["email_clicks_machine"] += 1
            if ts >= segment_on:
                self.emit_segment(d, metric, ts, day, detail, extra, lost)

    def emit_segment(
        self,
        d: webhooks.Delivery,
        metric: str,
        ts: int,
        day: int,
        detail,
        extra: str,
        lost: bool,
    ) -> None:
        name = self.segment_names[d.channel].get(metric)
        if name is None:
            return
        properties = d.parent + extra
        if metric == "clicked":
            link = detail >> 1 if d.channel == "email" else 0
            properties += f',"link_url":{webhooks.js(d.href(link))}'
        iso = self.period.iso
        self.seg_emit(
            day,
            ts,
            segment_events.line(
                name,
                self.ids.uuid4(),
                iso(ts),
                iso(ts + 1 + (ts & 7)),
                d.segment_identity(),
                properties,
                d.email,
            ),
        )
        self.segment_counts[name] = self.segment_counts.get(name, 0) + 1
        self.stats["segment_only" if lost else "segment_mirrored"] += 1

    def _lost(self, ts: int) -> bool:
        return self.outage_from <= ts < self.outage_to

    def emit_customer(self, p: Person, metric: str, ts: int) -> None:
        """A customer-level (un)subscribe, no delivery attached: a webhook, and once the
        Segment integration is on, the same change as a `Subscribed` / `Unsubscribed`
        track (the only copy during a webhook outage)."""
        person_id, email = p.identity(ts)
        day = (ts - self.start) // DAY
        lost = self.outage_from <= ts < self.outage_to
        if lost:
            self.stats["webhook_lost_in_outage"] += 1
        else:
            data = webhooks.customer_data(person_id, email, p.cio_id)
            self.web.emit(
                day, ts, webhooks.line(self.ids.ulid(ts), "customer", metric, ts, data)
            )
            counts = self.counts["customer"]
            counts[metric] = counts.get(metric, 0) + 1
        if ts < self.segment_on:
            return
        name = segment_events.CUSTOMER_EVENT_NAMES[metric]
        who = (
            f'"anonymousId":"{email}"'
            if person_id is None
            else f'"userId":"{person_id}"'
        )
        iso = self.period.iso
        self.seg_emit(
            day,
            ts,
            segment_events.line(
                name,
                self.ids.uuid4(),
                iso(ts),
                iso(ts + 1 + (ts & 7)),
                who,
                f'"email_address":"{email}"',
                email,
            ),
        )
        self.segment_counts[name] = self.segment_counts.get(name, 0) + 1
        self.stats["segment_only" if lost else "segment_mirrored"] += 1

    # -- result -----------------------------------------------------------------

    def result(self) -> dict:
        by_type = {
            object_type: dict(sorted(metrics.items()))
            for object_type, metrics in sorted(self.counts.items())
            if metrics
        }
        return {
            "shard": self.spec.shard,
            "webhook_files": self.web_files.files,
            "webhook_out_of_order_files": self.web_files.out_of_order_files,
            "webhook_dirt": self.web.counts,
            "webhook_events": by_type,
            "segment_files": self.seg_files.files,
            "segment_out_of_order_files": self.seg_files.out_of_order_files,
            "segment_dirt": self.seg.counts,
            "segment_events": dict(sorted(self.segment_counts.items())),
            "order_files": self.orders.files,
            "order_rows_by_status": self.orders.rows_by_status,
            "orders": self.orders.orders,
            "stats": self.stats,
            "people": sum(1 for p in self.people if p.in_cio),
            "shop_only_customers": sum(1 for p in self.people if not p.in_cio),
        }
