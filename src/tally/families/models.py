"""Family groups, who is in them, invitations, and what members spent from a shared balance."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum
from tally.families.domain import FamilyMode, FamilyRole, FamilyStatus, InvitationStatus


class Family(Base):
    """A household. ``seats`` counts the owner, the members and the pending invitations; it
    changes only by conditional updates, so the family never outgrows ``max_members``."""

    __tablename__ = "families"
    __table_args__ = (CheckConstraint("seats >= 0", name="seats_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    mode: Mapped[FamilyMode] = mapped_column(str_enum(FamilyMode))
    status: Mapped[FamilyStatus] = mapped_column(str_enum(FamilyStatus))
    seats: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dissolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FamilyMembership(Base):
    """A member in a family (the owner included). One row per member at most: a member is in
    at most one family at a time, even when two joins race."""

    __tablename__ = "family_memberships"
    __table_args__ = (UniqueConstraint("member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    family_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("families.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    role: Mapped[FamilyRole] = mapped_column(str_enum(FamilyRole))
    # Points the member may spend from the owner's balance per month (share mode);
    # ``None``: the programme's default.
    monthly_limit: Mapped[int | None] = mapped_column(BigInteger)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FamilyInvitation(Base):
    """The owner's invitation of a member; at most one pending per family and member."""

    __tablename__ = "family_invitations"
    __table_args__ = (
        partial_index(
            "ix_family_invitations_pending",
            "family_id",
            "member_id",
            where="status = 'pending'",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    family_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("families.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    invited_by: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[InvitationStatus] = mapped_column(str_enum(InvitationStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FamilyMonthSpend(Base):
    """Points a member spent from the owner's balance in one calendar month (programme zone).

    ``spent`` rises only by ``UPDATE … WHERE spent + n <= limit``, in the spend's transaction.
    """

    __tablename__ = "family_month_spends"
    __table_args__ = (
        UniqueConstraint("family_id", "member_id", "month"),
        CheckConstraint("spent >= 0", name="spent_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    family_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("families.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    month: Mapped[str] = mapped_column(String(7))
    spent: Mapped[int] = mapped_column(BigInteger)


class FamilySpend(Base):
    """One spend from a family's points: its journal entry, who spent, which month it counts
    for. ``returned_at`` is set once its reversal has given the month's allowance back."""

    __tablename__ = "family_spends"
    __table_args__ = (
        Index("ix_family_spends_family_id_member_id_month", "family_id", "member_id", "month"),
    )

    entry_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("journal_entries.id"), primary_key=True
    )
    family_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("families.id"))
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    month: Mapped[str] = mapped_column(String(7))
    points: Mapped[int] = mapped_column(BigInteger)
    counted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
