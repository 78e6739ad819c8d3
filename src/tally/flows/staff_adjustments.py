"""Staff adjustments within guardrails: posted at once within the role's limit, otherwise filed
as a request that another staff member in an approving role approves (posting it, exactly once)
or rejects. Every step is written to the audit log in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.adjustments import service as requests
from tally.adjustments.domain import Guardrails, RequestStatus, Route
from tally.adjustments.models import AdjustmentRequest
from tally.audit import service as audit
from tally.audit.domain import Action
from tally.errors import InsufficientPoints
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import checked_expiry
from tally.members import service as members
from tally.programme.domain import Programme


@dataclass(frozen=True, slots=True)
class Actor:
    """The staff member acting, their role, and the address they act from."""

    staff_id: int
    role: str
    address: str | None = None

    @property
    def name(self) -> str:
        """The actor as the audit log names it."""
        return f"staff:{self.staff_id}"


@dataclass(frozen=True, slots=True)
class Adjusted:
    """What an adjustment became: a posted entry, or a request awaiting approval."""

    entry_id: uuid.UUID | None = None
    request: AdjustmentRequest | None = None


def guardrails(programme: Programme, role: str, policy: Policy) -> Guardrails:
    """The limits ``role`` works within under ``programme`` and the server's settings."""
    return Guardrails.of(programme.staff, role, policy.max_points)


def adjust(
    session: Session,
    actor: Actor,
    member_id: int,
    points: int,
    reason: str,
    *,
    programme: Programme,
    version: int | None,
    policy: Policy,
    now: datetime,
    expires_at: datetime | None = None,
) -> Adjusted:
    """Post an adjustment within the actor's limit; above it, file a request for approval.

    An amount above the ceiling is refused (``adjustment_too_large``, naming the limit); so is a
    debit the member's balance cannot cover even now, which no approval could post.
    """
    limits = guardrails(programme, actor.role, policy)
    if limits.route(points) is Route.POST:
        posted = ledger.adjust(
            session,
            Origin(staff_id=actor.staff_id),
            member_id,
            points,
            reason,
            now,
            policy,
            expires_at,
        )
        _record(
            session,
            actor,
            Action.ADJUST,
            member_id,
            now,
            points=points,
            reason=reason,
            entry=str(posted.entry_id),
        )
        return Adjusted(entry_id=posted.entry_id)
    members.require_usable(session, member_id, allow_frozen=True)
    if expires_at is not None:
        checked_expiry(expires_at, now, policy)  # what the approval would refuse, refused now
    if points < 0:
        available = ledger.balance(session, member_id, now, programme.zone).available
        if available < -points:
            raise InsufficientPoints(
                f"Member {member_id} has {available} points; {-points} asked.",
                available=available,
            )
    filed = requests.file(
        session,
        requests.Filing(
            member_id=member_id,
            points=points,
            reason=reason.strip(),
            expires_at=expires_at,
            requester_id=actor.staff_id,
            requester_role=actor.role,
            role_limit=limits.role_limit,
            programme_version=version,
        ),
        now,
    )
    _record(
        session,
        actor,
        "adjustment.request",
        member_id,
        now,
        request=filed.id,
        points=points,
        reason=filed.reason,
        role_limit=limits.role_limit,
    )
    return Adjusted(request=filed)


def approve(
    session: Session,
    actor: Actor,
    request_id: int,
    *,
    programme: Programme,
    policy: Policy,
    now: datetime,
) -> AdjustmentRequest:
    """Approve another staff member's request and post its adjustment, exactly once.

    The request leaves ``pending`` by a conditional update before anything is posted: of two
    concurrent approvals one posts and the other is refused ``request_not_pending``. A posting
    that fails (the member spent the points meanwhile) rolls the approval back with it.
    """
    request = requests.get(session, request_id)
    limits = guardrails(programme, actor.role, policy)
    limits.check_decider(
        role=actor.role, staff_id=actor.staff_id, requester_id=request.requested_by
    )
    limits.check_ceiling(request.points)
    requests.decide(
        session, request, RequestStatus.APPROVED, staff_id=actor.staff_id, note=None, now=now
    )
    posted = ledger.adjust(
        session,
        Origin(staff_id=request.requested_by),
        request.member_id,
        request.points,
        request.reason,
        now,
        policy,
        request.expires_at,
    )
    requests.attach_entry(session, request, posted.entry_id)
    _record(
        session,
        actor,
        "adjustment.approve",
        request.member_id,
        now,
        request=request.id,
        points=request.points,
        requested_by=request.requested_by,
        entry=str(posted.entry_id),
    )
    return request


def reject(
    session: Session,
    actor: Actor,
    request_id: int,
    note: str,
    *,
    programme: Programme,
    policy: Policy,
    now: datetime,
) -> AdjustmentRequest:
    """Reject another staff member's request with a note; nothing is posted."""
    request = requests.get(session, request_id)
    limits = guardrails(programme, actor.role, policy)
    limits.check_decider(
        role=actor.role, staff_id=actor.staff_id, requester_id=request.requested_by
    )
    requests.decide(
        session, request, RequestStatus.REJECTED, staff_id=actor.staff_id, note=note, now=now
    )
    _record(
        session,
        actor,
        "adjustment.reject",
        request.member_id,
        now,
        request=request.id,
        points=request.points,
        requested_by=request.requested_by,
        note=note,
    )
    return request


def withdraw(session: Session, actor: Actor, request_id: int, now: datetime) -> AdjustmentRequest:
    """The requester takes back their pending request."""
    request = requests.get(session, request_id)
    requests.withdraw(session, request, actor.staff_id, now)
    _record(
        session,
        actor,
        "adjustment.withdraw",
        request.member_id,
        now,
        request=request.id,
        points=request.points,
    )
    return request


def _record(
    session: Session,
    actor: Actor,
    action: str,
    member_id: int,
    now: datetime,
    **details: object,
) -> None:
    audit.record(
        session,
        actor=actor.name,
        action=action,
        member_id=member_id,
        details=details,
        address=actor.address,
        now=now,
    )
