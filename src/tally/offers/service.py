"""Offers for a member: the mall's items ranked for them (:func:`ranked_for`). Read-only.

The member's own data (tier, paid plans, balance, redemptions, limit counters) and the items on
offer are read on each call; what all members' redemptions say (item similarities, popularity)
is read from the tables ``tally jobs offers`` keeps (ADR 30): the neighbours of the member's
redeemed items and the popularity overall and in their tier, a few hundred rows at most.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from tally.ledger import service as ledger
from tally.mall.domain import Eligibility, ItemKind, Pricing, Sale
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


def offerable(row: Row[Any], has_free_slot: bool) -> Offerable:
    """What the ranking reads of an item (a row of
    :data:`~tally.offers.repository.OFFER_COLUMNS`)."""
    sale = None
    if None not in (row.sale_starts_at, row.sale_ends_at, row.sale_points):
        sale = Sale(row.sale_starts_at, row.sale_ends_at, row.sale_points, row.sale_limit_count)
    return Offerable(
        item_id=row.id,
        code=row.code,
        kind=row.kind,
        names=dict(row.names),
        categories=tuple(part for part in row.categories.split("|") if part),
        pricing=Pricing(row.points, dict(row.tier_points or {}), sale),
        eligibility=Eligibility(
            tuple(row.eligible_tiers or ()), tuple(row.eligible_plans or ()), row.is_exclusive
        ),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        stock=row.stock,
        sale_stock=row.sale_stock,
        limit_count=row.limit_count,
        limit_period=row.limit_period,
        has_free_slot=has_free_slot,
        images=tuple(row.images or ()),
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
