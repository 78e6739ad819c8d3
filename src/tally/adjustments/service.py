"""Adjustment requests: filed with a deadline, decided once before it, withdrawn by their
requester, expired after it; never committed here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.adjustments import repository
from tally.adjustments.domain import RequestStatus, status_at
from tally.adjustments.models import AdjustmentRequest
from tally.errors import Forbidden, NotFound, RequestExpired, RequestNotPending
from tally.kit.clock import as_utc

#: How many closed (decided, withdrawn, expired) requests the console lists beside the pending.
RECENT_DECIDED = 30


@dataclass(frozen=True, slots=True)
class Filing:
    """What a requester asks for, and the limit that made it a request: a staff member
    (``requester_id`` and ``requester_role``) or an API key (``requester_key_id``)."""

    member_id: int
    points: int
    reason: str
    expires_at: datetime | None
    role_limit: int
    programme_version: int | None
    deadline: datetime
    requester_id: int | None = None
    requester_role: str | None = None
    requester_key_id: int | None = None


def file(session: Session, filing: Filing, now: datetime) -> AdjustmentRequest:
    """Store a pending request that expires at ``filing.deadline``."""
    return repository.insert(
        session,
        AdjustmentRequest(
            member_id=filing.member_id,
            points=filing.points,
            reason=filing.reason,
            expires_at=filing.expires_at,
            status=RequestStatus.PENDING,
            requested_by=filing.requester_id,
            requested_by_key_id=filing.requester_key_id,
            requester_role=filing.requester_role,
            role_limit=filing.role_limit,
            programme_version=filing.programme_version,
            requested_at=now,
            deadline=filing.deadline,
        ),
    )


def get(session: Session, request_id: int) -> AdjustmentRequest:
    """The request ``request_id``, or ``not_found``."""
    found = repository.get(session, request_id)
    if found is None:
        raise NotFound(f"Adjustment request {request_id} does not exist.")
    return found


def of_partner(session: Session, request_id: int, partner_id: int) -> AdjustmentRequest:
    """The request ``request_id`` one of ``partner_id``'s keys filed; any other is
    ``not_found``, exactly as if it did not exist."""
    found = repository.of_partner(session, request_id, partner_id)
    if found is None:
        raise NotFound(f"Adjustment request {request_id} does not exist.")
    return found


def status_of(request: AdjustmentRequest, now: datetime) -> RequestStatus:
    """Where ``request`` stands at ``now`` (a pending one past its deadline is expired)."""
    return status_at(request.status, request.deadline, now)


def decide(
    session: Session,
    request: AdjustmentRequest,
    status: RequestStatus,
    *,
    staff_id: int | None,
    note: str | None,
    now: datetime,
) -> None:
    """Take ``request`` out of ``pending`` — once, and only before its deadline: a second or
    concurrent decision is refused ``request_not_pending``, a late one ``request_expired``
    (the conditional update itself refuses both)."""
    if repository.decide(session, request.id, status, staff_id=staff_id, note=note, now=now):
        return
    session.refresh(request)
    if status_of(request, now) is RequestStatus.EXPIRED:
        raise RequestExpired(
            f"Adjustment request {request.id} expired at {as_utc(request.deadline).isoformat()} "
            "before anyone decided on it.",
            deadline=as_utc(request.deadline).isoformat(),
        )
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


def pending(
    session: Session, now: datetime, member_id: int | None = None
) -> list[AdjustmentRequest]:
    """Requests open for a decision at ``now``, oldest first (of one member, if given)."""
    return repository.pending(session, now, member_id=member_id)


def recently_decided(session: Session, now: datetime) -> list[AdjustmentRequest]:
    """The most recently decided, withdrawn or expired requests, newest first."""
    return repository.recently_closed(session, now, RECENT_DECIDED)


def pending_count(session: Session, now: datetime) -> int:
    """How many requests are open for a decision at ``now``."""
    return repository.pending_count(session, now)
