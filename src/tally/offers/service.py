"""Offers for a member: the mall's items ranked for them (:func:`ranked_for`). Read-only.

The member's own data (tier, paid plans, balance, redemptions, limit counters) and the items on
offer are read on each call; what all members' redemptions say (item similarities, popularity)
is read from the tables ``tally jobs offers`` keeps (ADR 30): the neighbours of the member's
redeemed items and the popularity overall and in their tier, a few hundred rows at most.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tally.ledger import service as ledger
from tally.mall import service as catalog
from tally.mall.domain import ItemKind
from tally.mall.models import Item
from tally.members import service as members
from tally.memberships import service as memberships
from tally.offers import repository, similarity
from tally.offers.domain import Offer, Offerable, Past, Shopper, Signals, rank
from tally.programme.domain import Programme
from tally.tiers import service as tiers

#: How many of the member's latest redemptions their own taste is read from.
HISTORY_LIMIT = 200
MAX_LIMIT = 50


def signals_for(session: Session, shopper: Shopper) -> Signals:
    """The kept signals the member's ranking reads: their redeemed items' neighbours, the
    popularity overall and within their tier."""
    similar = repository.similarity_frame(session, [past.item_id for past in shopper.history])
    popular = repository.popularity_frame(session, ["", shopper.tier_code])
    return similarity.signals_of(similar, popular)


def offerable(item: Item, has_free_slot: bool) -> Offerable:
    """What the ranking reads of an item."""
    return Offerable(
        item_id=item.id,
        code=item.code,
        kind=item.kind,
        names=dict(item.names),
        categories=tuple(catalog.categories_of(item)),
        pricing=catalog.pricing_of(item),
        eligibility=catalog.eligibility_of(item),
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        stock=item.stock,
        sale_stock=item.sale_stock,
        limit_count=item.limit_count,
        limit_period=item.limit_period,
        has_free_slot=has_free_slot,
        images=tuple(item.images or ()),
    )


def shopper_of(session: Session, member_id: int, programme: Programme, now: datetime) -> Shopper:
    """The member as the ranking sees them (``not_found`` when there is no such member)."""
    members.get(session, member_id)
    tier = tiers.current_tier(session, member_id, programme)
    plans = frozenset(
        row.plan_code for row in memberships.active_memberships(session, member_id, now)
    )
    balance = ledger.balance(session, member_id, now, programme.zone).available
    history = tuple(
        Past(item_id, code, tuple(part for part in categories.split("|") if part), at)
        for item_id, code, categories, at in repository.redemptions(
            session, member_id, HISTORY_LIMIT
        )
    )
    return Shopper(
        member_id=member_id,
        tier_code=tier.code,
        tier_is_exclusive=tier.flags.mall_exclusive,
        plans=plans,
        balance=balance,
        history=history,
        bought=repository.limit_counts(session, member_id),
    )


def items_on_offer(session: Session, now: datetime) -> list[Offerable]:
    """The active items in their window, as the ranking reads them."""
    rows = repository.items_on_offer(session, now)
    bookings = [row.id for row in rows if row.kind is ItemKind.BOOKING]
    free = repository.items_with_free_slots(session, bookings, now)
    return [offerable(row, row.id in free) for row in rows]


def ranked_for(
    session: Session, member_id: int, programme: Programme, now: datetime, limit: int = 10
) -> list[Offer]:
    """The mall's items ranked for the member, best first, at most ``limit`` (1 to
    :data:`MAX_LIMIT`): only items they may order now, each with its reasons."""
    shopper = shopper_of(session, member_id, programme, now)
    found = signals_for(session, shopper)
    items = items_on_offer(session, now)
    return rank(items, shopper, found, now, programme.zone, max(1, min(limit, MAX_LIMIT)))
