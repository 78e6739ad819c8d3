"""Rows a scheduled job could not process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime


class JobFailure(Base):
    """A row (``row_kind`` ``row_id``) that ``job`` could not process, and why: one row per
    job and row, counting the runs that failed on it (``failures``) from ``first_failed_at``
    to ``last_failed_at``. The job passed over it and went on with every other row."""

    __tablename__ = "job_failures"
    __table_args__ = (UniqueConstraint("job", "row_kind", "row_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(40))
    row_kind: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[str] = mapped_column(String(64))
    error_code: Mapped[str] = mapped_column(String(80))
    message: Mapped[str] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
