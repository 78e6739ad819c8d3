"""Growth value entries, each member's tier state and the history of tier changes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum


class GrowthKind(enum.StrEnum):
    EARN = "earn"
    ADJUST = "adjust"
    REVERSAL = "reversal"


class TierChangeReason(enum.StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    GRACE_STARTED = "grace_started"
    GRACE_CLEARED = "grace_cleared"
    PROGRAMME_CHANGE = "programme_change"
    ADJUSTMENT = "adjustment"
    MERGE = "merge"


class GrowthEntry(Base):
    """One signed change of a member's growth value; never spent, only counted in windows.

    ``member_id`` is the member that owns it now (a merge moves it to the survivor);
    ``origin_member_id`` is the member it was credited to, so an unmerge can move it back.
    """

    __tablename__ = "growth_entries"
    __table_args__ = (
        Index("ix_growth_entries_member_id_counted_at", "member_id", "counted_at"),
        Index("ix_growth_entries_member_id_id", "member_id", "id"),
        # Indexes that hold only the rows they serve: reversals, and entries a merge moved.
        partial_index(
            "uq_growth_entries_reverses_id",
            "reverses_id",
            where="reverses_id IS NOT NULL",
            unique=True,
        ),
        partial_index(
            "ix_growth_entries_moved", "origin_member_id", where="origin_member_id <> member_id"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    origin_member_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[GrowthKind] = mapped_column(str_enum(GrowthKind))
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    journal_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("journal_entries.id"), unique=True
    )
    reverses_id: Mapped[int | None] = mapped_column(BigInteger)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MemberTier(Base):
    """A member's tier now; changed only by conditional updates on ``version``.

    A member without a row is at the first tier and has no growth value.
    """

    __tablename__ = "member_tiers"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    tier_code: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    downgrade_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifetime_growth: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)


class TierChange(Base):
    """One change of a member's tier (or of its grace period), with why and on what growth."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index("ix_tier_changes_member_id_id", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key: the tier job writes hundreds of thousands of these at once, and a
    # trigger per row was most of its time; ``tally ledger verify`` checks it (ADR 21).
    member_id: Mapped[int] = mapped_column(BigInteger)
    from_code: Mapped[str | None] = mapped_column(String(64))
    to_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[TierChangeReason] = mapped_column(str_enum(TierChangeReason))
    growth: Mapped[int] = mapped_column(BigInteger)
    downgrade_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    programme_version: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
