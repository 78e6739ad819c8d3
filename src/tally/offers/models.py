"""The offers' precomputed signals (ADR 30): item similarities, popularity overall and per tier,
and the one row that says when they were computed (and that two runs of the job queue on)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, UTCDateTime


class OfferSimilarity(Base):
    """How similar item ``other_id`` is to ``item_id`` (0..1), among ``item_id``'s nearest."""

    __tablename__ = "offer_similarities"

    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    other_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    similarity: Mapped[float] = mapped_column(Float)


class OfferPopularity(Base):
    """How many members redeemed an item: within tier ``tier_code``, or overall (``""``)."""

    __tablename__ = "offer_popularity"

    tier_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    members: Mapped[int] = mapped_column(Integer)


class OfferRefresh(Base):
    """The one row (``id`` 1, written by the job's first statement, so that two runs queue on
    it): the moment the signals were last computed as of, from how many member-item pairs."""

    __tablename__ = "offer_refreshes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    pairs: Mapped[int] = mapped_column(BigInteger, default=0)
