"""Every query on adjustment requests."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tally.adjustments.domain import RequestStatus
from tally.adjustments.models import AdjustmentRequest


def insert(session: Session, request: AdjustmentRequest) -> AdjustmentRequest:
    """Store a new request and give it its id."""
    session.add(request)
    session.flush()
    return request


def get(session: Session, request_id: int) -> AdjustmentRequest | None:
    """The request ``request_id``, if any."""
    return session.get(AdjustmentRequest, request_id)


def decide(
    session: Session,
    request_id: int,
    status: RequestStatus,
    *,
    staff_id: int,
    note: str | None,
    now: datetime,
) -> bool:
    """Move a pending request to ``status``; ``False`` when it was no longer pending (a
    concurrent decision won: the update waits for it and then matches no row)."""
    result = session.execute(
        update(AdjustmentRequest)
        .where(
            AdjustmentRequest.id == request_id, AdjustmentRequest.status == RequestStatus.PENDING
        )
        .values(status=status, decided_by=staff_id, decided_at=now, decision_note=note)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def attach_entry(session: Session, request_id: int, entry_id: uuid.UUID | None) -> None:
    """Record the journal entry an approval posted."""
    session.execute(
        update(AdjustmentRequest)
        .where(AdjustmentRequest.id == request_id)
        .values(entry_id=entry_id)
        .execution_options(synchronize_session=False)
    )


def pending(session: Session, *, member_id: int | None = None) -> list[AdjustmentRequest]:
    """Pending requests, oldest first (of one member, if given)."""
    query = select(AdjustmentRequest).where(AdjustmentRequest.status == RequestStatus.PENDING)
    if member_id is not None:
        query = query.where(AdjustmentRequest.member_id == member_id)
    return list(
        session.scalars(query.order_by(AdjustmentRequest.requested_at, AdjustmentRequest.id))
    )


def recently_decided(session: Session, limit: int) -> list[AdjustmentRequest]:
    """The ``limit`` most recently decided (or withdrawn) requests, newest first."""
    query = (
        select(AdjustmentRequest)
        .where(AdjustmentRequest.status != RequestStatus.PENDING)
        .order_by(AdjustmentRequest.decided_at.desc(), AdjustmentRequest.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def pending_count(session: Session) -> int:
    """How many requests await a decision."""
    query = select(func.count()).where(AdjustmentRequest.status == RequestStatus.PENDING)
    return int(session.scalar(query) or 0)
