"""Writing events to the outbox: one statement for any number of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import Bulk
from tally.kit.clock import utcnow
from tally.outbox.domain import Event

_INSERT = Bulk.insert(
    "outbox_events",
    {
        "event_id": "uuid",
        "type": "text",
        "member_id": "bigint",
        "partner_id": "bigint",
        "subscription_id": "bigint",
        "dedupe_key": "text",
        "data": "json",
        "occurred_at": "timestamptz",
        "created_at": "timestamptz",
    },
    # A reminder already emitted (same dedupe key) is not emitted again.
    "ON CONFLICT (dedupe_key) DO NOTHING",
)


def emit(session: Session, events: Sequence[Event], now: datetime | None = None) -> int:
    """Write ``events`` in the caller's transaction, in one statement; returns how many were
    written (events whose ``dedupe_key`` was used before are not)."""
    if not events:
        return 0
    created = now or utcnow()
    return _INSERT.execute(
        session,
        [
            {
                "event_id": event.event_id,
                "type": event.type.value,
                "member_id": event.member_id,
                "partner_id": event.partner_id,
                "subscription_id": event.subscription_id,
                "dedupe_key": event.dedupe_key,
                "data": event.data,
                "occurred_at": event.occurred_at,
                "created_at": created,
            }
            for event in events
        ],
    )
