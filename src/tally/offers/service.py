"""Offers for a member: the mall's items ranked for them (:func:`ranked_for`). Read-only.

The member's own data (tier, paid plans, balance, redemptions, limit counters) and the items on
offer are read afresh on each call; what all members' redemptions say (:class:`Signals`: item
similarities and popularity) is computed set-based from the last :data:`LOOKBACK_DAYS` of
redemptions and kept per process and database for :data:`REFRESH_SECONDS` (ADR 30).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

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

#: How long one process keeps the signals before it computes them again.
REFRESH_SECONDS = 300
#: How far back redemptions count for the signals.
LOOKBACK_DAYS = 365
#: How many of the member's latest redemptions their own taste is read from.
HISTORY_LIMIT = 200
MAX_LIMIT = 50


@dataclass(frozen=True, slots=True)
class _Kept:
    signals: Signals
    computed_at: datetime


_kept: dict[str, _Kept] = {}
_lock = threading.Lock()


def _database_key(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def compute_signals(session: Session, programme: Programme, now: datetime) -> Signals:
    """The signals of the redemptions of the last :data:`LOOKBACK_DAYS` before ``now``."""
    pairs = repository.redeemed_pairs(
        session, now - timedelta(days=LOOKBACK_DAYS), similarity.ITEMS_PER_MEMBER
    )
    return similarity.signals_from_pairs(pairs, programme.tiers[0].code)


def signals(session: Session, programme: Programme, now: datetime) -> Signals:
    """The signals this process keeps for the session's database, computed again when older
    than :data:`REFRESH_SECONDS` at ``now`` (or computed after ``now``: a clock moved back)."""
    key = _database_key(session)
    kept = _kept.get(key)
    age = (now - kept.computed_at).total_seconds() if kept else None
    if kept is not None and age is not None and 0 <= age < REFRESH_SECONDS:
        return kept.signals
    fresh = compute_signals(session, programme, now)
    with _lock:
        _kept[key] = _Kept(fresh, now)
    return fresh


def forget_signals() -> None:
    """Drop the signals this process keeps (each database's are computed on the next call)."""
    with _lock:
        _kept.clear()


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
    found = signals(session, programme, now)
    items = items_on_offer(session, now)
    return rank(items, shopper, found, now, programme.zone, max(1, min(limit, MAX_LIMIT)))
