"""Members, their external identities, their personal profile and merge records."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, str_enum


class MemberStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    MERGED = "merged"


class Member(Base):
    """One person: one Tally id, many identities, one wallet."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    status: Mapped[MemberStatus] = mapped_column(
        str_enum(MemberStatus),
        default=MemberStatus.ACTIVE,
    )
    merged_into_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("members.id"), index=True
    )
    frozen_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MemberIdentity(Base):
    """An external identity ``(namespace, external_id)`` that resolves to one member."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("namespace", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    namespace: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(191))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MemberProfile(Base):
    """Personal data, kept apart from the ledger so that erasure never touches value."""

    __tablename__ = "member_profiles"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    birthday: Mapped[date | None] = mapped_column(Date)
    city: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MemberMerge(Base):
    """A merge of one member into a survivor, with what moved, so an operator can reverse it."""

    __tablename__ = "member_merges"
    __table_args__ = (Index("ix_member_merges_survivor", "survivor_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survivor_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    merged_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    moved: Mapped[dict[str, Any]] = mapped_column(JSON)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversal_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
