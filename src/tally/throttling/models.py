"""Counts of failed sign-ins, per account and per address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime


class SignInThrottle(Base):
    """Recent failures under one key (``account:<username>`` or ``address:<ip>``)."""

    __tablename__ = "sign_in_throttles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
