"""Adjustments within guardrails, whoever asks: a staff member in the console (the role's
limit) or an operator channel's API key (``staff.api_adjustment_limit``). Within the limit an
adjustment posts at once; above it, it is filed as a request that expires after
``staff.request_ttl_hours`` and that a staff member in an approving role — never the requester —
approves (posting it, exactly once, attributed to the requester) or rejects before then. Every
step is written to the audit log in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from tally.adjustments import service as requests
from tally.adjustments.domain import Guardrails, RequestStatus, Route
from tally.adjustments.models import AdjustmentRequest
from tally.adjustments.service import Filing
from tally.audit import service as audit
from tally.audit.domain import Action
from tally.errors import InsufficientPoints, ValidationFailed
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import Posted, checked_expiry
from tally.members import service as members
from tally.partners import service as partners
from tally.programme.domain import Programme


class Requester(Protocol):
    """Who asks for an adjustment: the limits they work within, the origin of what they post,
    and how a request they file names them."""

    @property
    def address(self) -> str | None:
        """Where they act from (for the audit log)."""
        ...

    @property
    def name(self) -> str:
        """The requester as the audit log names it."""
        ...

    @property
    def origin(self) -> Origin:
        """The origin of the adjustments they post (and that an approval posts for them)."""
        ...

    def limits(self, programme: Programme, policy: Policy) -> Guardrails:
        """Their guardrails under ``programme`` and the server's settings."""
        ...

    def filing(self, request: Filing) -> Filing:
        """``request`` naming them as its requester."""
        ...


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

    @property
    def origin(self) -> Origin:
        return Origin(staff_id=self.staff_id)

    def limits(self, programme: Programme, policy: Policy) -> Guardrails:
        return guardrails(programme, self.role, policy)

    def filing(self, request: Filing) -> Filing:
        return replace(request, requester_id=self.staff_id, requester_role=self.role)


@dataclass(frozen=True, slots=True)
class KeyActor:
    """An operator channel's API key adjusting through the partner API (its partner, the key,
    and the address it calls from): limited by ``staff.api_adjustment_limit``."""

    partner_id: int
    key_id: int
    key_prefix: str
    address: str | None = None

    @property
    def name(self) -> str:
        return f"partner:{self.partner_id}"

    @property
    def origin(self) -> Origin:
        return Origin(partner_id=self.partner_id)

    def limits(self, programme: Programme, policy: Policy) -> Guardrails:
        return Guardrails.of_api(programme.staff, policy.max_points)

    def filing(self, request: Filing) -> Filing:
        return replace(request, requester_key_id=self.key_id)


@dataclass(frozen=True, slots=True)
class Adjusted:
    """What an adjustment became: a posted entry, or a request awaiting approval."""

    entry_id: uuid.UUID | None = None
    request: AdjustmentRequest | None = None
    posted: Posted | None = None


def guardrails(programme: Programme, role: str, policy: Policy) -> Guardrails:
    """The limits ``role`` works within under ``programme`` and the server's settings."""
    return Guardrails.of(programme.staff, role, policy.max_points)


def adjust(
    session: Session,
    actor: Requester,
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
    """Post an adjustment within the actor's limit; above it, file a request for approval that
    expires after the programme's ``request_ttl_hours``.

    An amount above the ceiling is refused (``adjustment_too_large``, naming the limit); so is a
    debit the member's balance cannot cover even now, which no approval could post.
    """
    limits = actor.limits(programme, policy)
    route = limits.route(points)
    if not reason.strip():
        raise ValidationFailed("An adjustment needs a reason.", field="reason")
    if route is Route.POST:
        posted = ledger.adjust(
            session, actor.origin, member_id, points, reason, now, policy, expires_at
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
        return Adjusted(entry_id=posted.entry_id, posted=posted)
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
        actor.filing(
            Filing(
                member_id=member_id,
                points=points,
                reason=reason.strip(),
                expires_at=expires_at,
                role_limit=limits.role_limit,
                programme_version=version,
                deadline=limits.deadline(now),
            )
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
        deadline=filed.deadline.isoformat(),
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
        requester_origin(session, request),
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
        requested_by=requester_name(session, request),
        entry=str(posted.entry_id),
    )
    return request


def requester_origin(session: Session, request: AdjustmentRequest) -> Origin:
    """Who an approved request's adjustment is posted for: the staff member who asked, or the
    partner whose key did."""
    if request.requested_by is not None:
        return Origin(staff_id=request.requested_by)
    return Origin(partner_id=_key_partner(session, request))


def requester_name(session: Session, request: AdjustmentRequest) -> int | str:
    """The requester as the audit details name it: the staff id, or ``partner:<id>``."""
    if request.requested_by is not None:
        return request.requested_by
    return f"partner:{_key_partner(session, request)}"


def _key_partner(session: Session, request: AdjustmentRequest) -> int:
    assert request.requested_by_key_id is not None
    return partners.key_by_id(session, request.requested_by_key_id).partner_id


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
        requested_by=requester_name(session, request),
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
    actor: Requester,
    action: str,
    member_id: int,
    now: datetime,
    **details: object,
) -> None:
    if isinstance(actor, KeyActor):
        details["key"] = actor.key_prefix  # which of the partner's keys (never the key itself)
    audit.record(
        session,
        actor=actor.name,
        action=action,
        member_id=member_id,
        details=details,
        address=actor.address,
        now=now,
    )
