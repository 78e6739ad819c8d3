"""Server-side sessions of the console and the member pages."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum


class SessionKind(enum.StrEnum):
    CONSOLE = "console"
    MEMBER = "member"


class EndReason(enum.StrEnum):
    SIGNED_OUT = "signed_out"
    ENDED = "ended"  # by its owner, from another session


class WebSession(Base):
    """One sign-in. The browser holds a random token; only its SHA-256 is stored here.

    A member session opened by a member link keeps the link's hash: a link signs in once.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        partial_index(
            "uq_web_sessions_link_hash", "link_hash", where="link_hash IS NOT NULL", unique=True
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[SessionKind] = mapped_column(str_enum(SessionKind))
    staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff_users.id"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    link_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[EndReason | None] = mapped_column(str_enum(EndReason))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
