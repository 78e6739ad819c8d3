"""Every query on adjustment requests.

A pending request is *live* until its deadline and expired from then on, for every reader at
once: the queries below compare the deadline with the time they are given, so no job needs to
run for an expired request to read as expired.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from tally.adjustments.domain import RequestStatus
from tally.adjustments.models import AdjustmentRequest
from tally.partners.models import ApiKey

_PENDING = AdjustmentRequest.status == RequestStatus.PENDING


def _live(now: datetime) -> ColumnElement[bool]:
    """Pending and not yet past the deadline."""
    return and_(_PENDING, AdjustmentRequest.deadline > now)


def insert(session: Session, request: AdjustmentRequest) -> AdjustmentRequest:
    """Store a new request and give it its id."""
    session.add(request)
    session.flush()
    return request


def get(session: Session, request_id: int) -> AdjustmentRequest | None:
    """The request ``request_id``, if any."""
    return session.get(AdjustmentRequest, request_id)


def of_partner(session: Session, request_id: int, partner_id: int) -> AdjustmentRequest | None:
    """The request ``request_id`` if one of ``partner_id``'s API keys filed it."""
    query = (
        select(AdjustmentRequest)
        .join(ApiKey, ApiKey.id == AdjustmentRequest.requested_by_key_id)
        .where(AdjustmentRequest.id == request_id, ApiKey.partner_id == partner_id)
    )
    return session.scalar(query)


def decide(
    session: Session,
    request_id: int,
    status: RequestStatus,
    *,
    staff_id: int | None,
    note: str | None,
    now: datetime,
) -> bool:
    """Move a live request to ``status``; ``False`` when it was no longer pending (a
    concurrent decision won: the update waits for it and then matches no row) or its deadline
    has come — the same statement refuses both, so no decision lands on an expired request."""
    result = session.execute(
        update(AdjustmentRequest)
        .where(AdjustmentRequest.id == request_id, _live(now))
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


def pending(
    session: Session, now: datetime, *, member_id: int | None = None
) -> list[AdjustmentRequest]:
    """Requests still open for a decision at ``now``, oldest first (of one member, if given)."""
    query = select(AdjustmentRequest).where(_live(now))
    if member_id is not None:
        query = query.where(AdjustmentRequest.member_id == member_id)
    return list(
        session.scalars(query.order_by(AdjustmentRequest.requested_at, AdjustmentRequest.id))
    )


def recently_closed(session: Session, now: datetime, limit: int) -> list[AdjustmentRequest]:
    """The ``limit`` requests most recently decided, withdrawn or expired, newest first (an
    expired one at its deadline)."""
    closed_at = func.coalesce(AdjustmentRequest.decided_at, AdjustmentRequest.deadline)
    query = (
        select(AdjustmentRequest)
        .where(
            or_(
                AdjustmentRequest.status != RequestStatus.PENDING, AdjustmentRequest.deadline <= now
            )
        )
        .order_by(closed_at.desc(), AdjustmentRequest.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def pending_count(session: Session, now: datetime) -> int:
    """How many requests are open for a decision at ``now``."""
    query = select(func.count()).where(_live(now))
    return int(session.scalar(query) or 0)
