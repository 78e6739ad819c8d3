"""The double-entry ledger: journal entries, postings, member wallets, chains, lots and holds."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum
from tally.ledger.domain import HoldStatus


class EntryKind(enum.StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    HOLD = "hold"
    CAPTURE = "capture"
    VOID = "void"
    LAPSE = "lapse"
    TRANSFER = "transfer"
    ADJUST = "adjust"
    EXPIRE = "expire"
    REVERSAL = "reversal"
    MERGE = "merge"
    UNMERGE = "unmerge"
    CLAWBACK = "clawback"  # part of an earn taken back (a refund of part of the money)


class JournalEntry(Base):
    """One immutable movement of points; its postings sum to zero."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        # A partner's business reference identifies one earn/redeem/hold/transfer.
        UniqueConstraint("source_key"),
        # An entry is reversed once; the index holds only reversals (most entries are not).
        partial_index(
            "uq_journal_entries_reverses_id",
            "reverses_id",
            where="reverses_id IS NOT NULL",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind))
    member_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(191))
    source_key: Mapped[str | None] = mapped_column(String(255))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    memo: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hash: Mapped[str] = mapped_column(String(64))
    # The programme version in force when the entry was written (None: the built-in default).
    programme_version: Mapped[int | None] = mapped_column(Integer)


class Posting(Base):
    """One leg of a journal entry against an account (``member:1:available`` …)."""

    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entries.id"), index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Wallet(Base):
    """A member's balances and the head of the member's hash chain, changed only conditionally."""

    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))


class ChainLink(Base):
    """Position ``seq`` in a member's hash chain: the entry and the hash over all before it."""

    __tablename__ = "chain_links"
    __table_args__ = (
        UniqueConstraint("member_id", "seq"),
        Index("ix_chain_links_member_id_id", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entries.id"), index=True)
    hash: Mapped[str] = mapped_column(String(64))


class Lot(Base):
    """Points earned together, with one expiry; ``remaining`` falls as they are spent.

    ``value_points`` points were worth ``value_minor`` minor units of ``value_currency`` when
    the lot was issued, under ``programme_version`` (None: the built-in default programme).
    """

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("remaining <= points", name="remaining_within_points"),
        partial_index("ix_lots_live", "member_id", "expires_at", where="remaining > 0"),
        partial_index("ix_lots_due", "expires_at", where="remaining > 0"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entries.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    programme_version: Mapped[int | None] = mapped_column(Integer)
    value_points: Mapped[int | None] = mapped_column(BigInteger)
    value_minor: Mapped[int | None] = mapped_column(BigInteger)
    value_currency: Mapped[str | None] = mapped_column(String(3))


class LotAllocation(Base):
    """A change an entry made to a lot's ``remaining`` (negative: consumed; positive: restored)."""

    __tablename__ = "lot_allocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lots.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """Points reserved for a checkout or a bid, then captured, voided or lapsed."""

    __tablename__ = "holds"
    __table_args__ = (
        partial_index("ix_holds_active_expiry", "expires_at", where="status = 'active'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[HoldStatus] = mapped_column(str_enum(HoldStatus))
    reference: Mapped[str] = mapped_column(String(191))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entries.id"))
    closed_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
