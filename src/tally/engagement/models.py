"""Engagement: each member's run of daily sign-ins, referral codes and referrals (issue 11)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, UTCDateTime


class SignInStreak(Base):
    """A member's latest day signed in (in the programme's zone) and the run of consecutive
    days it ends; kept by the transaction that stores the sign-in, under the member's wallet
    lock (``tally.flows.sign_ins``)."""

    __tablename__ = "sign_in_streaks"

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    streak: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReferralCode(Base):
    """A member's referral code: random, made the first time it is asked for, never changed."""

    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Referral(Base):
    """A new member enrolled with another's referral code: at most one referrer each.
    ``completed_at`` is set by the transaction that processed the referred member's first
    qualifying event (``completed_by``); ``refused`` says why it rewarded no one."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_referrer_id", "referrer_id"),)

    referred_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(128))
    refused: Mapped[str | None] = mapped_column(String(64))
