"""The brand's message catalogue: stable campaign, broadcast, newsletter and transactional ids.

Audience SQL keys on these ids (never on names, which marketers rename), so they are
constants here and written to `campaigns.json` for the analysts. The brand is
"Lumen Skin", a D2C skincare shop at https://shop.example.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

SHOP = "https://shop.example"


def js(value: str) -> str:
    """A JSON string literal, escaped once when the catalogue is built."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Product:
    handle: str
    name: str
    price_cents: int
    replenish_days: int | None = None

    @property
    def url(self) -> str:
        return f"{SHOP}/products/{self.handle}"


PRODUCTS = (
    Product("hydrating-serum", "Hydrating Serum", 3800, replenish_days=30),
    Product("gentle-cleanser", "Gentle Cleanser", 2400),
    Product("daily-spf-50", "Daily SPF 50", 3200),
    Product("night-repair-cream", "Night Repair Cream", 5200),
    Product("vitamin-c-serum", "Vitamin C Serum", 4500),
    Product("lip-balm", "Lip Balm", 1200),
)
REPLENISHED_PRODUCT = PRODUCTS[0]


@dataclass(frozen=True)
class Message:
    """One message step: a campaign or broadcast action, a newsletter, a transactional."""

    key: str
    name: str
    kind: str  # business purpose, e.g. cart_recovery; stable across renames
    channel: str  # email | sms | push | in_app
    parent_type: str  # campaign | broadcast | newsletter | transactional
    parent_id: int
    action_id: int | None
    subject: str = ""
    content: str = ""
    links: tuple[tuple[int, str], ...] = ()  # (link_id, href); href may hold {token}
    marketing: bool = True
    drafted: bool = False  # queued as drafts for review before sending
    content_ids: tuple[int, ...] = ()  # newsletter A/B variants
    subject_json: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject_json", js(self.subject))


def _utm(url: str, medium: str, campaign: str) -> str:
    sep = "&" if "?" in url else "?"
    return (
        f"{url}{sep}utm_source=customerio&utm_medium={medium}&utm_campaign={campaign}"
    )


def _cart(medium: str) -> str:
    return _utm(f"{SHOP}/cart?token={{token}}", medium, "cart_recovery")


SERUM = REPLENISHED_PRODUCT.url
WELCOME_1 = Message(
    "welcome_1", "Welcome series: welcome", "welcome", "email", "campaign", 101, 1011,
    subject="Welcome to Lumen Skin: your routine starts here",
    links=((1, _utm(f"{SHOP}/pages/routine-quiz", "email", "welcome")),
           (2, _utm(f"{SHOP}/collections/bestsellers", "email", "welcome"))),
)  # fmt: skip
WELCOME_2 = Message(
    "welcome_2", "Welcome series: bestsellers", "welcome", "email", "campaign", 101, 1012,
    subject="The 3 products our customers reorder most",
    links=((1, _utm(SERUM, "email", "welcome")),
           (2, _utm(PRODUCTS[2].url, "email", "welcome")),
           (3, _utm(PRODUCTS[1].url, "email", "welcome"))),
)  # fmt: skip
WELCOME_3 = Message(
    "welcome_3", "Welcome series: first-order offer", "welcome", "email", "campaign", 101,
    1013, subject="10% off your first order ends tonight", drafted=True,
    links=((1, _utm(f"{SHOP}/collections/all?discount=WELCOME10", "email", "welcome")),),
)  # fmt: skip
WELCOME_IN_APP = Message(
    "welcome_in_app", "Welcome series: app tour", "welcome", "in_app", "campaign", 101,
    1014, content="Take the 60-second routine quiz",
    links=((1, f"{SHOP}/app/quiz"),),
)  # fmt: skip
CART_EMAIL_1 = Message(
    "cart_email_1", "Cart recovery: 1 hour", "cart_recovery", "email", "campaign", 102,
    1021, subject="You left something in your cart",
    links=((1, _cart("email")), (2, _utm(f"{SHOP}/pages/shipping", "email", "cart_recovery"))),
)  # fmt: skip
CART_EMAIL_2 = Message(
    "cart_email_2", "Cart recovery: 24 hours", "cart_recovery", "email", "campaign", 102,
    1023, subject="Still thinking it over? Your cart is saved",
    links=((1, _cart("email")), (2, _utm(f"{SHOP}/pages/reviews", "email", "cart_recovery"))),
)  # fmt: skip
CART_SMS = Message(
    "cart_sms", "SMS cart reminder: 4 hours", "cart_recovery", "sms", "campaign", 103, 1031,
    content="Lumen Skin: your cart is saved for 24h. Checkout: {link} Reply STOP to opt out",
    links=((1, _cart("sms")),),
)  # fmt: skip
REPLENISH_EMAIL = Message(
    "replenish_email", "Replenishment 30 days: Hydrating Serum email", "replenishment",
    "email", "campaign", 104, 1041, subject="Running low on Hydrating Serum?",
    links=((1, _utm(SERUM, "email", "replenishment_30d")),
           (2, _utm(f"{SHOP}/pages/subscribe-and-save", "email", "replenishment_30d"))),
)  # fmt: skip
REPLENISH_PUSH = Message(
    "replenish_push", "Replenishment 30 days: Hydrating Serum push", "replenishment",
    "push", "campaign", 104, 1042, content="Time to restock your Hydrating Serum",
    links=((1, _utm(SERUM, "push", "replenishment_30d")),),
)  # fmt: skip
LOYALTY_IN_APP = Message(
    "loyalty_in_app", "Loyalty reminder: in-app", "loyalty", "in_app", "campaign",
    106, 1061, content="You have points waiting: redeem them on your next order",
    links=((1, f"{SHOP}/app/rewards"),),
)  # fmt: skip
FLASH_EMAIL = Message(
    "flash_email", "Flash sale: email", "flash_sale", "email", "broadcast", 201, 2011,
    subject="48 hours only: 25% off sitewide \u2728",
    links=((1, _utm(f"{SHOP}/collections/sale", "email", "flash_sale")),
           (2, _utm(SERUM, "email", "flash_sale")),
           (3, _utm(PRODUCTS[3].url, "email", "flash_sale"))),
)  # fmt: skip
FLASH_SMS = Message(
    "flash_sms", "Flash sale: SMS", "flash_sale", "sms", "broadcast", 201, 2012,
    content="Lumen Skin: 25% off everything for 48h. Shop: {link} Reply STOP to opt out",
    links=((1, _utm(f"{SHOP}/collections/sale", "sms", "flash_sale")),),
)  # fmt: skip
FLASH_PUSH = Message(
    "flash_push", "Flash sale: push", "flash_sale", "push", "broadcast", 201, 2013,
    content="25% off sitewide for 48 hours",
    links=((1, _utm(f"{SHOP}/collections/sale", "push", "flash_sale")),),
)  # fmt: skip
BACK_IN_STOCK_EMAIL = Message(
    "back_in_stock_email", "Back in stock: email", "back_in_stock", "email", "broadcast",
    202, 2021, subject="It's back: Night Repair Cream",
    links=((1, _utm(PRODUCTS[3].url, "email", "back_in_stock")),),
)  # fmt: skip
BACK_IN_STOCK_PUSH = Message(
    "back_in_stock_push", "Back in stock: push", "back_in_stock", "push", "broadcast", 202,
    2022, content="Night Repair Cream is back in stock",
    links=((1, _utm(PRODUCTS[3].url, "push", "back_in_stock")),),
)  # fmt: skip
ORDER_EMAIL = Message(
    "order_email", "Order confirmation: email", "order_confirmation", "email",
    "transactional", 1, None, subject="Your Lumen Skin order is confirmed",
    links=((1, f"{SHOP}/account/orders?token={{token}}"),), marketing=False,
)  # fmt: skip
ORDER_PUSH = Message(
    "order_push", "Order confirmation: push", "order_confirmation", "push",
    "transactional", 2, None, content="Order confirmed: we'll let you know when it ships",
    links=((1, f"{SHOP}/account/orders?token={{token}}"),), marketing=False,
)  # fmt: skip

NEWSLETTER_SUBJECTS = (
    ("The Skin Edit: your barrier, explained", "Why your moisturiser stops working"),
    ("The Skin Edit: SPF myths we hear every week", "Do you really need SPF indoors?"),
    ("The Skin Edit: a 3-step evening routine", "Our founder's night routine"),
    ("The Skin Edit: vitamin C, minus the sting", "Vitamin C: what actually works"),
    ("The Skin Edit: winter skin survival kit", "Dry skin? Start here"),
    ("The Skin Edit: what our chemists are testing", "Behind the lab door"),
)
NEWSLETTER_ID_BASE = 3000


def newsletter(week: int) -> Message:
    """The weekly newsletter; each week is its own one-time send (own newsletter_id)."""
    subject_a, _ = NEWSLETTER_SUBJECTS[week % len(NEWSLETTER_SUBJECTS)]
    utm = f"newsletter_w{week + 1}"
    return Message(
        f"newsletter_{week + 1}", f"The Skin Edit #{week + 1}", "newsletter", "email",
        "newsletter", NEWSLETTER_ID_BASE + week + 1, None, subject=subject_a,
        links=((1, _utm(f"{SHOP}/blogs/skin-edit/issue-{week + 1}", "email", utm)),
               (2, _utm(SERUM, "email", utm)),
               (3, _utm(f"{SHOP}/collections/new", "email", utm))),
        content_ids=(1, 2),
    )  # fmt: skip


def newsletter_subject(week: int, content_id: int) -> str:
    return NEWSLETTER_SUBJECTS[week % len(NEWSLETTER_SUBJECTS)][content_id - 1]


FLOW_MESSAGES = (
    WELCOME_1, WELCOME_2, WELCOME_3, WELCOME_IN_APP, CART_EMAIL_1, CART_EMAIL_2, CART_SMS,
    REPLENISH_EMAIL, REPLENISH_PUSH, LOYALTY_IN_APP, FLASH_EMAIL, FLASH_SMS, FLASH_PUSH,
    BACK_IN_STOCK_EMAIL, BACK_IN_STOCK_PUSH, ORDER_EMAIL, ORDER_PUSH,
)  # fmt: skip


def catalogue(newsletter_weeks: list[tuple[int, str]], triggers: list[dict]) -> dict:
    """The `campaigns.json` document: parents with their actions, ids first."""
    parents: dict[tuple[str, int], dict] = {}
    for message in FLOW_MESSAGES:
        key = (message.parent_type, message.parent_id)
        id_field = {
            "campaign": "campaign_id",
            "broadcast": "broadcast_id",
            "transactional": "transactional_message_id",
        }[message.parent_type]
        parent = parents.setdefault(
            key,
            {
                "parent_type": message.parent_type,
                id_field: message.parent_id,
                "name": message.name.split(":")[0],
                "kind": message.kind,
                "channels": [],
                "actions": [],
            },
        )
        if message.channel not in parent["channels"]:
            parent["channels"].append(message.channel)
        parent["actions"].append(_action_entry(message))
    for parent in parents.values():
        if parent["parent_type"] == "broadcast":
            bid = parent["broadcast_id"]
            parent["triggers"] = [t for t in triggers if t["broadcast_id"] == bid]
    newsletters = []
    for week, sent_on in newsletter_weeks:
        message = newsletter(week)
        entry = {
            "parent_type": "newsletter",
            "newsletter_id": message.parent_id,
            "name": message.name,
            "kind": "newsletter",
            "channels": ["email"],
            "sent_on": sent_on,
            "content": [
                {"content_id": cid, "subject": newsletter_subject(week, cid)}
                for cid in message.content_ids
            ],
            "links": [{"link_id": lid, "href": href} for lid, href in message.links],
        }
        newsletters.append(entry)
    return {
        "brand": "Lumen Skin",
        "shop": SHOP,
        "products": [
            {
                "handle": p.handle,
                "name": p.name,
                "price_cents": p.price_cents,
                "replenish_days": p.replenish_days,
            }
            for p in PRODUCTS
        ],
        "parents": list(parents.values()) + newsletters,
    }


def _action_entry(message: Message) -> dict:
    entry: dict = {"key": message.key, "name": message.name, "channel": message.channel}
    if message.action_id is not None:
        entry["action_id"] = message.action_id
    if message.subject:
        entry["subject"] = message.subject
    if message.content:
        entry["content"] = message.content
    entry["marketing"] = message.marketing
    entry["links"] = [{"link_id": lid, "href": href} for lid, href in message.links]
    return entry
