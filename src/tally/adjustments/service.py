"""Adjustment requests: filed, decided once, withdrawn by their requester; never committed here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.adjustments import repository
from tally.adjustments.domain import RequestStatus
from tally.adjustments.models import AdjustmentRequest
from tally.errors import Forbidden, NotFound, RequestNotPending

#: How many decided requests the console lists beside the pending ones.
RECENT_DECIDED = 30


@dataclass(frozen=True, slots=True)
class Filing:
    """What a requester asks for, and the limit that made it a request."""

    member_id: int
    points: int
    reason: str
    expires_at: datetime | None
    requester_id: int
    requester_role: str
    role_limit: int
    programme_version: int | None


def file(session: Session, filing: Filing, now: datetime) -> AdjustmentRequest:
    """Store a pending request."""
    return repository.insert(
        session,
        AdjustmentRequest(
            member_id=filing.member_id,
            points=filing.points,
            reason=filing.reason,
            expires_at=filing.expires_at,
            status=RequestStatus.PENDING,
            requested_by=filing.requester_id,
            requester_role=filing.requester_role,
            role_limit=filing.role_limit,
            programme_version=filing.programme_version,
            requested_at=now,
        ),
    )


def get(session: Session, request_id: int) -> AdjustmentRequest:
    """The request ``request_id``, or ``not_found``."""
    found = repository.get(session, request_id)
    if found is None:
        raise NotFound(f"Adjustment request {request_id} does not exist.")
    return found


def decide(
    session: Session,
    request: AdjustmentRequest,
    status: RequestStatus,
    *,
    staff_id: int,
    note: str | None,
    now: datetime,
) -> None:
    """Take ``request`` out of ``pending`` — once: a second or concurrent decision is refused
    with ``request_not_pending``."""
    if not repository.decide(session, request.id, status, staff_id=staff_id, note=note, now=now):
        session.refresh(request)
        raise RequestNotPending(
            f"Adjustment request {request.id} is already {request.status.value}.",
            request_status=request.status.value,
        )


def withdraw(session: Session, request: AdjustmentRequest, staff_id: int, now: datetime) -> None:
    """The requester takes back a pending request."""
    if request.requested_by != staff_id:
        raise Forbidden("Only the staff member who asked may withdraw a request.")
    decide(session, request, RequestStatus.WITHDRAWN, staff_id=staff_id, note=None, now=now)


def attach_entry(session: Session, request: AdjustmentRequest, entry_id: uuid.UUID | None) -> None:
    """Record the journal entry the approval posted."""
    repository.attach_entry(session, request.id, entry_id)


def pending(session: Session, member_id: int | None = None) -> list[AdjustmentRequest]:
    """Requests awaiting a decision, oldest first (of one member, if given)."""
    return repository.pending(session, member_id=member_id)


def recently_decided(session: Session) -> list[AdjustmentRequest]:
    """The most recently decided or withdrawn requests, newest first."""
    return repository.recently_decided(session, RECENT_DECIDED)


def pending_count(session: Session) -> int:
    """How many requests await a decision."""
    return repository.pending_count(session)
