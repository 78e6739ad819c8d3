"""Every query of the auctions domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tally.auctions.domain import AuctionStatus, Bid
from tally.auctions.models import Auction, AuctionBid
from tally.ledger.domain import HoldStatus
from tally.ledger.models import Hold


def insert_auction(session: Session, values: dict[str, Any]) -> Auction:
    """A new auction (flushed)."""
    row = Auction(**values)
    session.add(row)
    session.flush()
    return row


def auction(session: Session, auction_id: uuid.UUID) -> Auction | None:
    return session.get(Auction, auction_id)


def lock_auction(session: Session, auction_id: uuid.UUID) -> Auction | None:
    """The auction, locked until commit and read once the lock is held: bids on one auction
    (and its close) go one at a time. PostgreSQL: ``FOR UPDATE``; SQLite drops it, but its
    write transactions already run one at a time."""
    return session.scalar(
        select(Auction)
        .where(Auction.id == auction_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def best_bids(session: Session, auction_id: uuid.UUID, limit: int = 2) -> list[Bid]:
    """The ``limit`` best of the members' best bids (higher maximum first, then the earlier).
    A member's maxima only grow, so its best bid is its last one."""
    rows = session.execute(
        select(AuctionBid.member_id, func.max(AuctionBid.max_points), func.max(AuctionBid.seq))
        .where(AuctionBid.auction_id == auction_id)
        .group_by(AuctionBid.member_id)
        .order_by(func.max(AuctionBid.max_points).desc(), func.max(AuctionBid.seq))
        .limit(limit)
    ).all()
    return [Bid(int(member), int(points), int(seq)) for member, points, seq in rows]


def member_best(session: Session, auction_id: uuid.UUID, member_id: int) -> int | None:
    """The member's highest maximum in the auction, if it bid."""
    found = session.scalar(
        select(func.max(AuctionBid.max_points)).where(
            AuctionBid.auction_id == auction_id, AuctionBid.member_id == member_id
        )
    )
    return None if found is None else int(found)


def bidders(session: Session, auction_id: uuid.UUID) -> list[int]:
    """Every member that bid in the auction, in member order."""
    return list(
        session.scalars(
            select(AuctionBid.member_id)
            .where(AuctionBid.auction_id == auction_id)
            .distinct()
            .order_by(AuctionBid.member_id)
        )
    )


def insert_bid(session: Session, values: dict[str, Any]) -> None:
    session.add(AuctionBid(**values))
    session.flush()


def save_standing(session: Session, row: Auction, values: dict[str, Any], now: datetime) -> bool:
    """Write a bid's outcome on the auction, conditional on the version read under the lock
    (and on its still being open); whether it was written. ``row`` then shows what was written
    (without being read again)."""
    result = session.execute(
        update(Auction)
        .where(
            Auction.id == row.id,
            Auction.version == row.version,
            Auction.status == AuctionStatus.OPEN,
        )
        .values(
            **values,
            bid_count=Auction.bid_count + 1,
            version=Auction.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    written = {**values, "bid_count": row.bid_count + 1, "version": row.version + 1}
    for key, value in {**written, "updated_at": now}.items():
        set_committed_value(row, key, value)
    return True


def close(
    session: Session,
    auction_id: uuid.UUID,
    status: AuctionStatus,
    values: dict[str, Any],
    as_of: datetime,
) -> bool:
    """Record the close of an auction still open and ended by ``as_of``: only one run does."""
    result = session.execute(
        update(Auction)
        .where(
            Auction.id == auction_id,
            Auction.status == AuctionStatus.OPEN,
            Auction.ends_at <= as_of,
        )
        .values(**values, status=status, version=Auction.version + 1, updated_at=as_of)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def due(
    session: Session, as_of: datetime, limit: int, skip: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Open auctions whose end has passed by ``as_of``, earliest end first."""
    query = select(Auction.id).where(Auction.status == AuctionStatus.OPEN, Auction.ends_at <= as_of)
    if skip:
        query = query.where(Auction.id.not_in(list(skip)))
    return list(session.scalars(query.order_by(Auction.ends_at, Auction.id).limit(limit)))


def listing(
    session: Session, partner_id: int | None, limit: int, *, open_only: bool = False
) -> list[Auction]:
    """Auctions, newest first: the partner's own (``None``: everyone's)."""
    query = select(Auction)
    if partner_id is not None:
        query = query.where(Auction.partner_id == partner_id)
    if open_only:
        query = query.where(Auction.status == AuctionStatus.OPEN)
    return list(session.scalars(query.order_by(Auction.created_at.desc()).limit(limit)))


def bids_of(session: Session, auction_id: uuid.UUID, limit: int = 200) -> list[AuctionBid]:
    """The auction's bids, latest first."""
    return list(
        session.scalars(
            select(AuctionBid)
            .where(AuctionBid.auction_id == auction_id)
            .order_by(AuctionBid.seq.desc())
            .limit(limit)
        )
    )


def version(session: Session, auction_id: uuid.UUID) -> int | None:
    """The auction's version (it grows with every change), for watchers."""
    found = session.scalar(select(Auction.version).where(Auction.id == auction_id))
    return None if found is None else int(found)


def active_holds(session: Session, auction_id: uuid.UUID) -> list[tuple[int, int]]:
    """``(member_id, points)`` of the auction's bids' holds still active."""
    rows = session.execute(
        select(Hold.member_id, Hold.points)
        .join(AuctionBid, AuctionBid.hold_id == Hold.id)
        .where(AuctionBid.auction_id == auction_id, Hold.status == HoldStatus.ACTIVE)
        .order_by(Hold.member_id)
    ).all()
    return [(int(member), int(points)) for member, points in rows]


def active_hold_ids(session: Session, auction_id: uuid.UUID) -> list[uuid.UUID]:
    """The holds of the auction's bids still active."""
    return list(
        session.scalars(
            select(Hold.id)
            .join(AuctionBid, AuctionBid.hold_id == Hold.id)
            .where(AuctionBid.auction_id == auction_id, Hold.status == HoldStatus.ACTIVE)
            .order_by(Hold.id)
        )
    )
