"""Points auctions and their bids."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.auctions.domain import AuctionStatus
from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum


class Auction(Base):
    """One item auctioned for points by its owner (a supplier partner or the operator's
    channel). The leader, its maximum and hold, and the price are kept on the row, which every
    bid locks (ADR 28); ``version`` grows with every change (watchers poll it). The item is
    named by ``item_code`` (a mall item's code) and the names shown with it."""

    __tablename__ = "auctions"
    __table_args__ = (
        CheckConstraint("start_points > 0", name="start_positive"),
        CheckConstraint("reserve IS NULL OR reserve > 0", name="reserve_positive"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("latest_end >= ends_at", name="latest_end_after_end"),
        partial_index("ix_auctions_due", "ends_at", where="status = 'open'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(64))
    item_names: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    latest_end: Mapped[datetime] = mapped_column(UTCDateTime())
    start_points: Mapped[int] = mapped_column(BigInteger)
    reserve: Mapped[int | None] = mapped_column(BigInteger)
    increments: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    soft_close_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[AuctionStatus] = mapped_column(str_enum(AuctionStatus))
    price: Mapped[int] = mapped_column(BigInteger)
    bid_count: Mapped[int] = mapped_column(Integer, default=0)
    leader_member_id: Mapped[int | None] = mapped_column(BigInteger)
    leader_max: Mapped[int | None] = mapped_column(BigInteger)
    leader_hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The close: the winner, what it paid and the capture that took the points.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    winner_member_id: Mapped[int | None] = mapped_column(BigInteger)
    final_price: Mapped[int | None] = mapped_column(BigInteger)
    capture_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    unsold_reason: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuctionBid(Base):
    """An accepted bid: the member's maximum, held as points while it leads. ``seq`` orders an
    auction's bids (equal maxima go to the lower); ``hold_id`` is the hold it made (none for a
    bid a higher maximum outbid at once: it held nothing)."""

    __tablename__ = "auction_bids"
    __table_args__ = (
        UniqueConstraint("auction_id", "seq"),
        CheckConstraint("max_points > 0", name="max_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    auction_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("auctions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    max_points: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)  # the channel that placed it
    price_after: Mapped[int] = mapped_column(BigInteger)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
