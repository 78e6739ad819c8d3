"""The transactional outbox: events written in the same transaction as the change they tell."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index


class OutboxEvent(Base):
    """One event; ``dispatched_at`` is set once the dispatcher has made its deliveries."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("event_id"),
        # Only reminders carry a dedupe key: the other events are not in this index.
        partial_index(
            "uq_outbox_events_dedupe_key",
            "dedupe_key",
            where="dedupe_key IS NOT NULL",
            unique=True,
        ),
        # The dispatcher reads only what it has not fanned out yet.
        partial_index("ix_outbox_events_undispatched", "id", where="dispatched_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The ``webhook-id`` of every delivery of this event, stable across retries.
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    subscription_id: Mapped[int | None] = mapped_column(BigInteger)
    dedupe_key: Mapped[str | None] = mapped_column(String(191))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
