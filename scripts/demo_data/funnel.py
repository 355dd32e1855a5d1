"""What happens to one delivery, per channel: the metric events and when they occur.

Rates are a D2C skincare brand's (email: ~98% delivered, 30-40% opened incl. Apple
Mail Privacy Protection prefetches, 2-4% clicked; SMS: 6-10% clicked; push: ~5%
opened). Each function returns `(events, click_ts, click_link, flags)` where events are
`(ts, metric, detail)`: detail is an open kind or `link*2 + machine` for clicks, or the
failure message. Opens and clicks can repeat ("every time" Send Frequency).
"""

from __future__ import annotations

import random

from scripts.demo_data.clock import DAY, HOUR, MINUTE

# detail codes for `opened`
OPEN_HUMAN = 0
OPEN_PROXIED = 1  # a human open fetched through Apple's or Gmail's image proxy
OPEN_PREFETCH = 2  # Apple MPP loaded the pixel without the person
OPEN_SYNTHETIC = 3  # inferred from a click that arrived before any open

# flags
UNSUBSCRIBED = 1
SPAM = 2
HARD_BOUNCE = 4
SMS_STOP = 8
PUSH_BOUNCE = 16
UNINSTALLED = 32

HARD_BOUNCE_MSG = "550 5.1.1 The email account that you tried to reach does not exist."
SOFT_BOUNCE_MSG = "452 4.2.2 The email account that you tried to reach is over quota."
DROPPED_MSG = "Email address suppressed: it bounced previously"
EMAIL_FAILED_MSG = "Liquid error: undefined variable 'customer.first_name'"
EMAIL_ATTEMPT_MSG = "timeout connecting to delivery provider; will retry"
SMS_BOUNCE_MSG = "Twilio error 30003: Unreachable destination handset"
SMS_FAILED_MSG = "Twilio error 21211: Invalid 'To' Phone Number"
PUSH_BOUNCE_MSG = "BadDeviceToken"
PUSH_DROPPED_MSG = "Device token previously bounced"
PUSH_FAILED_MSG = "NoDevicesSynced"
IN_APP_FAILED_MSG = "message expired before the app was opened"

MAX_DELAY = 5 * DAY  # every event lands within this of its send (see writer horizon)


def _delay(u: float, scale: int) -> int:
    """Heavy-tailed reaction delay: most within the hour, a tail over days."""
    return 20 + int(scale * u * u * u * u)


def email(rng: random.Random, p, ts: int, marketing: bool, drafted: bool, n_links: int):
    r = rng.random
    if p.email_suppressed:
        return [(ts, "dropped", DROPPED_MSG)], -1, 0, 0
    events = []
    if drafted:
        events.append((ts, "drafted", None))
        ts += 2 * HOUR + int(r() * 18 * HOUR)  # a marketer approves the queue
    x = r()
    if x < 0.0006:
        events.append((ts, "failed", EMAIL_FAILED_MSG))
        return events, -1, 0, 0
    if x < 0.003:
        events.append((ts, "attempted", EMAIL_ATTEMPT_MSG))
        ts += 5 * MINUTE + int(r() * 25 * MINUTE)
    events.append((ts, "sent", None))
    if p.hard_bounce:
        events.append((ts + 2 + int(r() * 90), "bounced", HARD_BOUNCE_MSG))
        return events, -1, 0, HARD_BOUNCE
    if x > 0.995:
        events.append((ts + 60 + int(r() * 3 * HOUR), "bounced", SOFT_BOUNCE_MSG))
        return events, -1, 0, 0
    delivered = ts + 1 + int(r() * 25)
    events.append((delivered, "delivered", None))
    flags = 0
    click_ts = -1
    click_link = 0
    if p.mpp and r() < 0.7:
        events.append(
            (delivered + 30 + int(r() * 40 * MINUTE), "opened", OPEN_PREFETCH)
        )
    if p.scanner and r() < 0.006:
        # A security gateway follows every link seconds after delivery.
        for link in range(n_links):
            events.append((delivered + 3 + int(r() * 40), "clicked", link * 2 + 1))
    open_prob = p.open_prob if marketing else min(0.85, p.open_prob * 2.5 + 0.25)
    if r() < open_prob:
        kind = OPEN_PROXIED if (p.mpp or p.gmail) else OPEN_HUMAN
        opened = delivered + _delay(r(), 3 * DAY)
        events.append((opened, "opened", kind))
        if r() < 0.12:
            events.append((opened + _delay(r(), DAY), "opened", kind))
        if r() < p.click_prob:
            click_ts = opened + 5 + int(r() * 240)
            click_link = 0 if r() < 0.65 else int(r() * n_links)
            events.append((click_ts, "clicked", click_link * 2))
            if r() < 0.12:
                events.append((click_ts + _delay(r(), DAY), "clicked", click_link * 2))
        if marketing and r() < 0.006:
            events.append((opened + 30 + int(r() * 600), "unsubscribed", None))
            flags |= UNSUBSCRIBED
    elif r() < p.click_prob * 0.04:
        # Images blocked: the click is the first sign of life, so the open is inferred.
        click_ts = delivered + _delay(r(), 2 * DAY)
        events.append((click_ts, "opened", OPEN_SYNTHETIC))
        events.append((click_ts, "clicked", 0))
    if marketing and not flags and r() < 0.0008:
        events.append((delivered + _delay(r(), 2 * DAY), "spammed", None))
        flags |= SPAM
    return events, click_ts, click_link, flags


def sms(rng: random.Random, p, ts: int):
    r = rng.random
    x = r()
    if x < 0.003:
        return [(ts, "failed", SMS_FAILED_MSG)], -1, 0, 0
    events = [(ts, "sent", None)]
    if x < 0.018:
        events.append((ts + 5 + int(r() * 120), "bounced", SMS_BOUNCE_MSG))
        return events, -1, 0, 0
    delivered = ts + 2 + int(r() * 30)
    events.append((delivered, "delivered", None))
    click_ts = -1
    flags = 0
    if r() < p.sms_click_prob:
        click_ts = delivered + _delay(r(), DAY)
        events.append((click_ts, "clicked", 0))
    if r() < 0.004:
        events.append((delivered + _delay(r(), 6 * HOUR), "replied", None))
        flags = SMS_STOP
    return events, click_ts, 0, flags


def push(rng: random.Random, p, ts: int, has_link: bool):
    r = rng.random
    if p.push_bounced:
        # The token bounced before; half of these people have deleted the app.
        return (
            [(ts, "dropped", PUSH_DROPPED_MSG)],
            -1,
            0,
            UNINSTALLED if r() < 0.5 else 0,
        )
    x = r()
    if x < 0.003:
        return [(ts, "failed", PUSH_FAILED_MSG)], -1, 0, 0
    events = [(ts, "sent", None)]
    if x < 0.016:
        events.append((ts + 1 + int(r() * 5), "bounced", PUSH_BOUNCE_MSG))
        return events, -1, 0, PUSH_BOUNCE
    if r() < 0.1:
        return events, -1, 0, 0  # an app version without the SDK never reports back
    delivered = ts + 1 + int(r() * r() * 8 * HOUR)  # when the device comes online
    events.append((delivered, "delivered", None))
    click_ts = -1
    if r() < 0.02 + p.open_prob * 0.25:
        opened = delivered + _delay(r(), DAY)
        events.append((opened, "opened", None))
        if has_link and r() < 0.35:
            click_ts = opened + 1 + int(r() * 4)
            events.append((click_ts, "clicked", 0))
    return events, click_ts, 0, 0


def in_app(rng: random.Random, p, ts: int):
    r = rng.random
    if r() < 0.002:
        return [(ts, "failed", IN_APP_FAILED_MSG)], -1, 0, 0
    events = [(ts, "sent", None)]
    click_ts = -1
    if r() < 0.5:
        opened = ts + _delay(r(), 4 * DAY)  # shown the next time the app is open
        events.append((opened, "opened", None))
        if r() < 0.15:
            click_ts = opened + 2 + int(r() * 20)
            events.append((click_ts, "clicked", 0))
    return events, click_ts, 0, 0
