"""Accounts: one row per account (kind, owner, unit), and the striped balance rows of partner
and system accounts (a member account's balance is its wallet's)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.accounts.domain import POINTS, AccountKind, OwnerType
from tally.db.base import Base, BigId, str_enum


class Account(Base):
    """An account postings name by ``code``: whose it is (``owner_type``, ``owner_id``; none
    for the system's) and what it holds (``kind``, in ``unit``)."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "(owner_type = 'system') = (owner_id IS NULL)", name="system_accounts_have_no_owner"
        ),
        Index("ix_accounts_owner", "owner_type", "owner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    owner_type: Mapped[OwnerType] = mapped_column(str_enum(OwnerType))
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind))
    unit: Mapped[str] = mapped_column(String(16), default=POINTS)


class AccountStripe(Base):
    """Part of a partner or system account's balance: the balance is the sum of its stripes,
    each changed by adding a group commit's net change to it (never read, then written)."""

    __tablename__ = "account_stripes"

    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"), primary_key=True)
    stripe: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
