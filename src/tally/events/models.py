"""Stored events, each with its outcome, and the counters of rule caps and campaign budgets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, UTCDateTime


class StoredEvent(Base):
    """An event a partner reported (or Tally raised: ``source`` ``tally``), stored once per
    source and ``event_id`` with the outcome the rules gave it: a repeat answers this row."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        # A member's events in a window: the aggregates of conditions, and the member's history.
        Index("ix_events_member_id_type_occurred_at", "member_id", "type", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # ``p<partner id>`` for a partner's events, ``tally`` for those Tally raises itself.
    source: Mapped[str] = mapped_column(String(24))
    event_id: Mapped[str] = mapped_column(String(128))
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The amount in minor units of ``currency`` (the programme's); none for events without one.
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(40))
    refers_to: Mapped[str | None] = mapped_column(String(128))
    # Items and attributes as received (amounts as exact decimal strings).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    points: Mapped[int] = mapped_column(BigInteger)
    growth: Mapped[int] = mapped_column(BigInteger)
    # The rules applied and skipped, the arms, the counters used: the explanation.
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    programme_version: Mapped[int] = mapped_column(Integer)
    # A purchase's amount refunded so far, in minor units (a refund takes back in proportion).
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class RuleCounter(Base):
    """Points a cap or a budget has used: ``key`` names the campaign, the cap, the member and the
    period (``tally.events.counters``). Locked in key order by the writers that consume it."""

    __tablename__ = "rule_counters"

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64))
    used: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
