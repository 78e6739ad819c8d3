"""Paid memberships, the payments partners confirm for them, and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum
from tally.memberships.domain import EventKind, MembershipStatus


class Membership(Base):
    """A member's subscription to one plan: its price and term are fixed when subscribing.

    At most one pending-or-active membership per member and plan (a partial unique index).
    ``version`` grows with every change; changes are conditional on it.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint("price_minor_units >= 0", name="price_not_negative"),
        partial_index(
            "ix_memberships_open",
            "member_id",
            "plan_code",
            where="status IN ('pending', 'active')",
            unique=True,
        ),
        partial_index("ix_memberships_due", "current_period_end", where="status = 'active'"),
        partial_index("ix_memberships_pending", "created_at", where="status = 'pending'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    plan_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[MembershipStatus] = mapped_column(str_enum(MembershipStatus))
    price_minor_units: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    term: Mapped[str] = mapped_column(String(8))
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MembershipPayment(Base):
    """A payment a partner took for one term; its reference is unique per partner."""

    __tablename__ = "membership_payments"
    __table_args__ = (
        UniqueConstraint("partner_id", "reference"),
        CheckConstraint("minor_units > 0", name="amount_positive"),
        CheckConstraint("refunded_minor_units >= 0", name="refunded_not_negative"),
        CheckConstraint("refunded_minor_units <= minor_units", name="refunded_within_amount"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    membership_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("memberships.id"), index=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    reference: Mapped[str] = mapped_column(String(191))
    minor_units: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    refunded_minor_units: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MembershipEvent(Base):
    """One change of a membership: what, when, who (a partner, a staff member, or the system
    when both are empty), the money involved and the period before and after."""

    __tablename__ = "membership_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    membership_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("memberships.id"), index=True)
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind))
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    minor_units: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    status_before: Mapped[str | None] = mapped_column(String(16))
    status_after: Mapped[str] = mapped_column(String(16))
    period_end_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
