"""Engagement: each member's run of daily sign-ins (issue 11)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer
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
