"""Every applied version of the programme, with who applied it, when, and from when it is in
force (a version may be scheduled for a later instant, and cancelled before it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime


class ProgrammeVersion(Base):
    """One applied programme: its normalised content, the text it came from, its hash.

    The programme in force at an instant is the highest version not cancelled whose
    ``effective_from`` has come (ADR 11); an immediate apply takes effect at ``applied_at``.
    """

    __tablename__ = "programme_versions"
    __table_args__ = (Index("ix_programme_versions_effective_from", "effective_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    applied_by: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(200))

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None
