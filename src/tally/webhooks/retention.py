"""Outbox retention: events fanned out long ago, with every delivery of theirs final (delivered
or given up), are deleted with their deliveries, a bounded chunk per transaction, so the outbox
and the delivery log stay the size of the retention window however many events are written.

An expiry reminder's row is its "sent once" record (its ``dedupe_key``): it is kept until no
reminder of that expiry date could be due again — a reminder is at most
:data:`REMINDER_HORIZON` before the date, and none is due once the points have expired.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.db.raw import Raw

PURGE_CHUNK = 5_000
REMINDER_HORIZON = timedelta(days=366)  # days_before is at most 365

# Fanned out before the cutoff, no delivery still pending, and not a reminder that could be due.
_CHUNK = Raw(
    "SELECT e.id FROM outbox_events e WHERE e.dispatched_at < :before"
    " AND (e.dedupe_key IS NULL OR e.occurred_at < :reminders_before)"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
    " WHERE d.outbox_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT :n"
)
_COUNT = Raw(
    "SELECT count(*) FROM outbox_events e WHERE e.dispatched_at < :before"
    " AND (e.dedupe_key IS NULL OR e.occurred_at < :reminders_before)"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
    " WHERE d.outbox_id = e.id AND d.status = 'pending')"
)
# A delivery replayed since the chunk was read is pending again: it and its event are kept.
_DELIVERIES = Raw(
    "DELETE FROM webhook_deliveries WHERE outbox_id = ANY(:ids) AND status <> 'pending'"
)
_EVENTS = Raw(
    "DELETE FROM outbox_events WHERE id = ANY(:ids) AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries d WHERE d.outbox_id = outbox_events.id)"
)


def _bounds(before: datetime) -> dict[str, object]:
    return {"before": before, "reminders_before": before - REMINDER_HORIZON}


def purge(
    unit_of_work: Callable[[], AbstractContextManager[Session]],
    before: datetime,
    chunk: int = PURGE_CHUNK,
) -> int:
    """Delete the events dispatched before ``before`` whose deliveries are all final, and those
    deliveries, ``chunk`` events per transaction; how many events were deleted. Safe to re-run
    and beside itself, and beside the dispatcher and the senders (a pending delivery keeps its
    event)."""
    purged = 0
    while True:
        with unit_of_work() as session:
            ids = [row[0] for row in _CHUNK.all(session, {**_bounds(before), "n": chunk})]
            if ids:
                _DELIVERIES.execute(session, {"ids": ids})
                _EVENTS.execute(session, {"ids": ids})
        purged += len(ids)
        if len(ids) < chunk:
            return purged


def purgeable(session: Session, before: datetime) -> int:
    """How many events :func:`purge` would delete (``--dry-run``)."""
    row = _COUNT.one(session, _bounds(before))
    return int(row[0]) if row else 0
