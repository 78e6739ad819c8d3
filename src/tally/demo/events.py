"""The demo's last fortnight of shop purchases, reported as events through the programme's
campaigns (base rate, tier multiplier, beverage bonus, weekend double, the capped and
budgeted high-frequency triple), with a few partial refunds: what a newcomer sees explained in
the console and on the member pages ("how I earned this")."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from tally.flows import event_intake
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin, Policy
from tally.programme.domain import Programme
from tally.rules.engine import Item

DAYS = 14
FREQUENT = 0.08  # of the members, who buy at the shop most days (and earn the triple)
CHANCE_A_DAY = {True: 0.75, False: 0.12}  # a frequent or other member buying on a given day
REFUND_RATE = 0.05  # of those purchases, half refunded the next day
PRODUCTS = (
    ("tea-01", "乌龙茶 Oolong tea", "beverages", ()),
    ("coffee-02", "冷萃咖啡 Cold brew", "beverages", ("sale",)),
    ("rice-03", "五常大米 Wuchang rice", "groceries", ()),
    ("towel-04", "纯棉毛巾 Cotton towel", "home", ()),
    ("phone-05", "手机壳 Phone case", "electronics", ()),
)


def report(
    session: Session,
    rng: random.Random,
    member_ids: list[int],
    shop_id: int,
    now: datetime,
    policy: Policy,
    programme: Programme,
) -> int:
    """Report the purchases (one batch a day, as the shop's nightly upload would) and the
    refunds; the events stored."""
    origin = Origin(partner_id=shop_id)
    book = event_intake.book_for(programme)
    stored = 0
    frequent = {member_id: rng.random() < FREQUENT for member_id in member_ids}
    for days_ago in range(DAYS, 0, -1):
        evening = now - timedelta(days=days_ago, hours=-2)
        buyers = [m for m in member_ids if rng.random() < CHANCE_A_DAY[frequent[m]]]
        purchases = [_purchase(rng, member_id, evening, days_ago) for member_id in buyers]
        refunds = [
            Reported(
                type="refund",
                event_id=f"demo-refund-{purchase.event_id}",
                member_id=purchase.member_id,
                occurred_at=evening + timedelta(hours=1),
                amount=(purchase.amount or Decimal(0)) / 2,
                currency="CNY",
                refers_to=purchase.event_id,
            )
            for purchase in purchases
            if rng.random() < REFUND_RATE
        ]
        results = event_intake.process(
            session, origin, [*purchases, *refunds], evening, policy, programme, book
        )
        stored += sum(isinstance(result, Processed) for result in results)
    return stored


def _purchase(rng: random.Random, member_id: int, at: datetime, days_ago: int) -> Reported:
    items = []
    for sku, name, category, labels in rng.sample(PRODUCTS, rng.randint(1, 3)):
        quantity = rng.randint(1, 3)
        price = Decimal(rng.randint(8, 180))
        items.append(Item(sku, price * quantity, quantity, name, category, labels))
    total = sum((item.amount for item in items), Decimal(0))
    return Reported(
        type="purchase",
        event_id=f"demo-order-{days_ago}-{member_id}",
        member_id=member_id,
        occurred_at=at - timedelta(minutes=rng.randint(0, 600)),
        amount=total,
        currency="CNY",
        items=tuple(items),
        channel="app",
        payload={
            "items": [
                {
                    "sku": item.sku,
                    "name": item.name,
                    "quantity": item.quantity,
                    "amount": str(item.amount),
                    "category": item.category,
                    "labels": list(item.labels),
                }
                for item in items
            ]
        },
    )
