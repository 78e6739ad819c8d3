"""Member codes: the short-lived codes a member shows at a checkout, kept as keyed digests,
and the count of a partner's lookups that named no valid code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, UTCDateTime


class MemberCode(Base):
    """A code valid until ``expires_at``; only its keyed digest is stored, never the code."""

    __tablename__ = "member_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MemberCodeMisses(Base):
    """How many code lookups of a partner named no valid code in the minute from ``window``."""

    __tablename__ = "member_code_misses"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    misses: Mapped[int] = mapped_column(Integer)
