"""Every query of the offers: the items on offer, a member's redemptions and limit counters, all
members' redeemed items as a frame, and the precomputed signals (written by the job only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Row, delete, or_, select
from sqlalchemy.orm import Session

from tally.db.frames import read_frame, write_frame
from tally.db.raw import Raw
from tally.mall.domain import PaymentStatus
from tally.mall.models import Item, LimitCounter, Order, Slot
from tally.offers.models import OfferPopularity, OfferRefresh, OfferSimilarity
from tally.offers.similarity import PAIRS_SCHEMA, POPULARITY_SCHEMA, SIMILARITY_SCHEMA

#: The payment statuses of an order that count as a redemption (paid, perhaps partly refunded).
REDEEMED = (PaymentStatus.PAID, PaymentStatus.PART_REFUNDED)


#: The columns of an item the ranking reads.
OFFER_COLUMNS = (
    Item.id,
    Item.code,
    Item.kind,
    Item.names,
    Item.categories,
    Item.images,
    Item.points,
    Item.tier_points,
    Item.eligible_tiers,
    Item.eligible_plans,
    Item.is_exclusive,
    Item.starts_at,
    Item.ends_at,
    Item.stock,
    Item.sale_starts_at,
    Item.sale_ends_at,
    Item.sale_points,
    Item.sale_stock,
    Item.sale_limit_count,
    Item.limit_count,
    Item.limit_period,
)


def items_on_offer(session: Session, now: datetime) -> list[Row[Any]]:
    """The :data:`OFFER_COLUMNS` of the active items whose publishing window holds ``now``, in
    id order."""
    query = (
        select(*OFFER_COLUMNS)
        .where(
            Item.is_active.is_(True),
            or_(Item.starts_at.is_(None), Item.starts_at <= now),
            or_(Item.ends_at.is_(None), Item.ends_at > now),
        )
        .order_by(Item.id)
    )
    return list(session.execute(query))


def items_with_free_slots(session: Session, item_ids: Sequence[int], now: datetime) -> set[int]:
    """Those of the booking items ``item_ids`` with a slot still to come that has room."""
    if not item_ids:
        return set()
    query = (
        select(Slot.item_id)
        .where(
            Slot.item_id.in_(sorted(set(item_ids))),
            Slot.starts_at > now,
            Slot.taken < Slot.capacity,
        )
        .distinct()
    )
    return set(session.scalars(query))


def redemptions(
    session: Session, member_id: int, limit: int
) -> list[tuple[int, str, str, datetime]]:
    """The member's latest ``limit`` redemptions: ``(item id, item code, the item's
    categories as stored, created at)``, newest first."""
    query = (
        select(Order.item_id, Order.item_code, Item.categories, Order.created_at)
        .join(Item, Item.id == Order.item_id)
        .where(Order.member_id == member_id, Order.payment_status.in_(REDEEMED))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]


def limit_counts(session: Session, member_id: int) -> dict[tuple[int, str], int]:
    """The units the member bought per ``(item id, limit window)``."""
    query = select(LimitCounter.item_id, LimitCounter.window, LimitCounter.count).where(
        LimitCounter.member_id == member_id
    )
    return {(row[0], row[1]): row[2] for row in session.execute(query)}


#: Each member's distinct redeemed items since ``:since``, the most recent ``:cap`` of them,
#: with the member's tier row's code (null without one): what
#: :func:`tally.offers.similarity.member_items` computes, done by the database.
_PAIRS = Raw(
    "SELECT member_id, item_id, tier_code FROM ("
    " SELECT o.member_id, o.item_id, MAX(t.tier_code) AS tier_code,"
    "  ROW_NUMBER() OVER (PARTITION BY o.member_id"
    "   ORDER BY MAX(o.created_at) DESC, o.item_id) AS recency"
    " FROM mall_orders o LEFT JOIN member_tiers t ON t.member_id = o.member_id"
    " WHERE o.created_at >= :since AND o.created_at <= :until"
    " AND o.payment_status = ANY(:statuses)"
    " GROUP BY o.member_id, o.item_id"
    ") AS pairs WHERE recency <= :cap"
)


def redeemed_pairs(session: Session, since: datetime, until: datetime, cap: int) -> pl.DataFrame:
    """Every member's distinct items redeemed from ``since`` to ``until``, their ``cap`` most
    recent (:data:`~tally.offers.similarity.PAIRS_SCHEMA`)."""
    statuses = [status.value for status in REDEEMED]
    params = {"since": since, "until": until, "cap": cap, "statuses": statuses}
    return read_frame(session, _PAIRS, params, PAIRS_SCHEMA)


# --- The precomputed signals --------------------------------------------------------------------


_CLAIM = Raw(
    "INSERT INTO offer_refreshes (id, as_of, pairs) VALUES (1, :as_of, :pairs)"
    " ON CONFLICT (id) DO UPDATE SET as_of = excluded.as_of, pairs = excluded.pairs"
)


def claim_refresh(session: Session, as_of: datetime, pairs: int) -> None:
    """Record the refresh as of ``as_of`` on the one refresh row (an upsert), which stays
    locked until the transaction ends: a second run waits for the first, then replaces what it
    wrote."""
    _CLAIM.execute(session, {"as_of": as_of, "pairs": pairs})


def last_refresh(session: Session) -> OfferRefresh | None:
    """The refresh row (``None``: the signals were never computed)."""
    return session.get(OfferRefresh, 1)


def replace_signals(session: Session, similar: pl.DataFrame, popular: pl.DataFrame) -> None:
    """Put ``similar`` (``item_id, other_id, similarity``) and ``popular`` (``tier_code,
    item_id, members``) in place of the signals kept, set-based."""
    session.execute(delete(OfferSimilarity))
    session.execute(delete(OfferPopularity))
    session.flush()
    write_frame(session, "offer_similarities", similar.select("item_id", "other_id", "similarity"))
    write_frame(session, "offer_popularity", popular.select("tier_code", "item_id", "members"))


def similarity_frame(session: Session, item_ids: Sequence[int]) -> pl.DataFrame:
    """The kept neighbours of the items ``item_ids`` (``item_id, other_id, similarity``)."""
    query = select(OfferSimilarity.item_id, OfferSimilarity.other_id, OfferSimilarity.similarity)
    rows = session.execute(query.where(OfferSimilarity.item_id.in_(sorted(set(item_ids))))).all()
    return pl.DataFrame(rows, schema=SIMILARITY_SCHEMA, orient="row")


def popularity_frame(session: Session, tier_codes: Sequence[str]) -> pl.DataFrame:
    """The kept popularity within the tiers ``tier_codes`` (``""``: overall)."""
    query = select(OfferPopularity.tier_code, OfferPopularity.item_id, OfferPopularity.members)
    rows = session.execute(query.where(OfferPopularity.tier_code.in_(list(tier_codes)))).all()
    return pl.DataFrame(rows, schema=POPULARITY_SCHEMA, orient="row")
