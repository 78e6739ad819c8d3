"""A demo member's year, replayed through the ledger in the order it happened.

Points follow spend: one point per yuan, at 100 points to the yuan a 1 % reward. Every member pays
a monthly mobile bill; beyond it members spend very differently (most lightly, a few heavily at
the shop and the hotel), which spreads them over the tier ladder once growth value follows the
points earned (:mod:`tally.demo.tiers`). Members redeem in round amounts once they have enough,
some never do, some stop coming (their points expire a year after they were earned), a few
purchases are returned. The result looks like a real programme's books: of the points issued,
about a third redeemed, a tenth expired, the rest outstanding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.ledger import holds as ledger_holds
from tally.ledger import jobs
from tally.ledger import reversals as ledger_reversals
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import Order
from tally.ledger.posting import Posted
from tally.programme.domain import Programme
from tally.writer.ledger import TRUSTED_ORDERS
from tally.writer.submission import Submission
from tally.writer.writer import write_in

# Monthly mobile bills in yuan, and how common each plan is.
BILLS = (39, 59, 79, 99, 129, 199, 299)
BILL_WEIGHTS = (10, 20, 20, 20, 12, 12, 6)
# Spend beyond the bill, in points a year per unit of "level", and how the levels are spread:
# most members spend lightly, a few heavily.
POINTS_PER_LEVEL = 2_400
LEVELS = (0.2, 0.8, 2.0, 5.0, 12.0, 25.0, 45.0)
LEVEL_WEIGHTS = (20, 28, 22, 14, 9, 5, 2)
# Where the purchases happen, how often, and how large each partner's are against the average.
PURCHASE_PARTNERS = ("SHOP", "FOOD", "HOTEL")
PURCHASE_WEIGHTS = (55, 30, 15)
PURCHASE_SIZE = {"SHOP": 1.0, "FOOD": 0.3, "HOTEL": 2.5}
MAX_PURCHASES_A_MONTH = 1.5
# Redemptions: a member redeems a round amount at a partner once the balance allows it.
REDEEM_AMOUNTS = (500, 1_000, 2_000, 5_000, 10_000)
REDEEMER_KINDS = (0.0, 0.12, 0.35)  # chance to redeem at a chance to: never, sometimes, often
REDEEMER_WEIGHTS = (25, 45, 30)
RETURN_RATE = 0.03  # purchases returned (the earn reversed) a few days later
CHURN_RATE = 0.15  # members who stop coming after a few months
MONTH = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Habits:
    """How one demo member spends and redeems."""

    bill: int
    level: float
    redeems: float
    stops_at: datetime | None

    @classmethod
    def draw(cls, rng: random.Random, joined: datetime, now: datetime) -> Habits:
        stops_at = None
        if rng.random() < CHURN_RATE:
            stops_at = joined + MONTH * rng.randint(2, 6)
        return cls(
            bill=rng.choices(BILLS, weights=BILL_WEIGHTS)[0],
            level=rng.choices(LEVELS, weights=LEVEL_WEIGHTS)[0],
            redeems=rng.choices(REDEEMER_KINDS, weights=REDEEMER_WEIGHTS)[0],
            stops_at=stops_at if stops_at is not None and stops_at < now else None,
        )

    @property
    def purchases_a_month(self) -> float:
        return min(0.4 + self.level * 0.15, MAX_PURCHASES_A_MONTH)

    @property
    def average_purchase(self) -> float:
        return POINTS_PER_LEVEL * self.level / 12 / self.purchases_a_month


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    partner: str
    points: int


def events(rng: random.Random, habits: Habits, joined: datetime, until: datetime) -> list[Event]:
    """The member's earning events from ``joined`` to ``until``, in time order."""
    found = []
    bill_day = joined + timedelta(days=rng.randint(1, 28), hours=rng.randint(8, 20))
    while bill_day < until:
        found.append(Event(bill_day, "MOBILE", habits.bill))
        bill_day += MONTH + timedelta(minutes=rng.randint(-600, 600))
    moment = joined
    rate = habits.purchases_a_month / MONTH.total_seconds()
    while True:
        moment += timedelta(seconds=rng.expovariate(rate))
        if moment >= until:
            break
        partner = rng.choices(PURCHASE_PARTNERS, weights=PURCHASE_WEIGHTS)[0]
        size = habits.average_purchase * PURCHASE_SIZE[partner] * rng.uniform(0.5, 1.5)
        found.append(Event(moment, partner, max(5, round(size))))
    return sorted(found, key=lambda event: event.at)


def replay(
    session: Session,
    rng: random.Random,
    member_id: int,
    joined: datetime,
    now: datetime,
    partner_ids: dict[str, int],
    policy: Policy,
    programme: Programme,
) -> int:
    """Replay the member's earns, redemptions, returns and expiries up to ``now`` through the
    writer, as of when each happened; returns the entries written."""
    habits = Habits.draw(rng, joined, now)
    until = min(habits.stops_at or now, now - timedelta(minutes=5))
    written = 0
    # Points last a year: from then on, what expired is written in its place in the history.
    checked = joined + timedelta(days=policy.validity_days)
    for serial, event in enumerate(events(rng, habits, joined, until), 1):
        if event.at - checked >= MONTH:
            checked = event.at
            written += 1 if jobs.expire_member(session, member_id, event.at) else 0
        origin = Origin(partner_id=partner_ids[event.partner])
        reference = f"{event.partner.lower()}-{member_id}-{serial}"
        order = Order(EntryKind.EARN, origin, member_id, event.points, reference)
        earned = _post(session, order, event.at, policy, programme)
        if isinstance(earned, BaseException):
            raise earned
        written += 1
        if event.partner == "SHOP" and rng.random() < RETURN_RATE:
            returned = event.at + timedelta(days=rng.randint(1, 10))
            if returned < until and earned.entry_id is not None:
                ledger_reversals.reverse(session, origin, earned.entry_id, returned, policy)
                written += 1
        available = earned.balance.available if earned.balance else 0
        written += _maybe_redeem(
            session,
            rng,
            habits,
            member_id,
            event.at,
            available,
            partner_ids,
            (policy, programme),
            serial,
        )
    written += _maybe_hold(session, rng, member_id, now, partner_ids, policy)
    return written


def _maybe_redeem(
    session: Session,
    rng: random.Random,
    habits: Habits,
    member_id: int,
    at: datetime,
    available: int,
    partner_ids: dict[str, int],
    pricing: tuple[Policy, Programme],
    serial: int,
) -> int:
    """Now and then, spend a round amount of the ``available`` points (never all of them)."""
    if rng.random() >= habits.redeems:
        return 0
    moment = at + timedelta(minutes=rng.randint(10, 240))
    amounts = [amount for amount in REDEEM_AMOUNTS if amount <= available * 0.8]
    if not amounts:
        return 0
    partner = rng.choices(("SHOP", "FOOD", "HOTEL"), weights=(60, 30, 10))[0]
    origin = Origin(partner_id=partner_ids[partner])
    order = Order(
        EntryKind.REDEEM, origin, member_id, rng.choice(amounts[-2:]), f"order-{member_id}-{serial}"
    )
    # Refused (points expired meanwhile): nothing was written.
    return 0 if isinstance(_post(session, order, moment, *pricing), BaseException) else 1


def _post(
    session: Session, order: Order, at: datetime, policy: Policy, programme: Programme
) -> Posted | BaseException:
    """``order`` posted as of ``at`` by the writer in the loader's transaction, or why it was
    refused."""
    [answer] = write_in(
        session, [Submission(order, TRUSTED_ORDERS)], now=at, policy=policy, programme=programme
    )
    if isinstance(answer, Submission):
        posted: Posted = answer.outcome
        return posted
    return answer


def _maybe_hold(
    session: Session,
    rng: random.Random,
    member_id: int,
    now: datetime,
    partner_ids: dict[str, int],
    policy: Policy,
) -> int:
    """One member in five has a hotel booking's points on hold right now."""
    if rng.random() >= 0.2:
        return 0
    available = ledger.balance(session, member_id, now, ZoneInfo(policy.zone_name)).available
    points = min(rng.choice((200, 500, 1_000)), available // 2)
    if points <= 0:
        return 0
    ledger_holds.create_hold(
        session,
        Origin(partner_id=partner_ids["HOTEL"]),
        member_id,
        points,
        f"booking-{member_id}",
        3600 * 24,
        now - timedelta(minutes=1),
        policy,
    )
    return 1
