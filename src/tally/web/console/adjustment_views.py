"""What the console shows of the adjustment guardrails: a staff member's limits, the
confirmation step for a large amount, refusals that state the real limit, and request rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session
from starlette.requests import Request

from tally.adjustments import service as requests
from tally.adjustments.domain import Guardrails, RequestStatus, worth
from tally.adjustments.models import AdjustmentRequest
from tally.api.deps import policy
from tally.errors import AdjustmentTooLarge, TallyError
from tally.flows import staff_adjustments
from tally.kit.clock import end_of_day
from tally.partners import service as partners
from tally.programme.domain import Money
from tally.programme.runtime import ProgrammeCache
from tally.staff import service as staff_service
from tally.staff.service import Permission
from tally.web.console.auth import Staff
from tally.web.console.pages import error_flash
from tally.web.http import gettext
from tally.web.i18n import N_
from tally.web.sessions import Flash, client_of, now


def limits_for(request: Request, staff: Staff) -> Guardrails:
    """The guardrails of ``staff``'s role under the programme in force."""
    cache: ProgrammeCache = request.app.state.programme
    return staff_adjustments.guardrails(cache.current, staff.role.value, policy(request))


def actor_of(request: Request, staff: Staff) -> staff_adjustments.Actor:
    """The staff member as the adjustment flow (and the audit log) names them."""
    return staff_adjustments.Actor(staff.id, staff.role.value, client_of(request).address)


def valid_through(request: Request, day: date | None) -> datetime | None:
    """The end of ``day`` in the programme's zone: credited points are usable all that day."""
    if day is None:
        return None
    cache: ProgrammeCache = request.app.state.programme
    return end_of_day(day, cache.zone)


def value_of(request: Request, points: int) -> Money:
    """What ``points`` are worth at the programme's point value."""
    cache: ProgrammeCache = request.app.state.programme
    return worth(points, cache.current.currency.point_value.rate)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The step that asks the operator to re-type a large amount."""

    points: int
    value: Money  # of the amount, whichever the sign
    becomes_request: bool
    role_limit: int


def confirmation(request: Request, staff: Staff, points: int) -> Confirmation:
    """The confirmation step for ``points``, saying what it is worth and what it becomes."""
    limits = limits_for(request, staff)
    return Confirmation(
        points=points,
        value=value_of(request, abs(points)),
        becomes_request=abs(points) > limits.role_limit,
        role_limit=limits.role_limit,
    )


def refusal(request: Request, error: TallyError) -> Flash:
    """The message for a refused adjustment; an impossible amount names the real limit."""
    if isinstance(error, AdjustmentTooLarge):
        message = N_("An adjustment moves at most %(limit)s points. Nothing was changed.")
        limit = format(error.extra["limit"], ",")
        return Flash("error", gettext(request, message, limit=limit))
    return error_flash(request, error)


@dataclass(frozen=True, slots=True)
class RequestRow:
    """An adjustment request as the console lists it: asked by a staff member
    (``requester_role``) or through the API by a partner's key (``requester_key``)."""

    id: int
    member_id: int
    points: int
    value: Money
    reason: str
    expires_at: datetime | None
    status: str
    requested_by: str
    requester_role: str | None
    requester_key: str | None
    role_limit: int
    requested_at: datetime
    deadline: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    is_own: bool
    can_decide: bool


def rows(
    request: Request, session: Session, found: Sequence[AdjustmentRequest], viewer: Staff
) -> list[RequestRow]:
    """``found`` as rows at the page's time, with the names of who asked (a staff member, or a
    partner and its key's prefix) and who decided, and whether ``viewer`` may decide on each
    (another's request still open, an approving role)."""
    staff_ids = {row.requested_by for row in found if row.requested_by is not None}
    names = staff_service.display_names(
        session, staff_ids | {row.decided_by for row in found if row.decided_by}
    )
    keys = partners.key_owners(
        session, {row.requested_by_key_id for row in found if row.requested_by_key_id}
    )
    limits = limits_for(request, viewer)
    approver = viewer.role.value in limits.approver_roles and viewer.can(Permission.ADJUST)
    at = now(request)
    listed = []
    for row in found:
        status = requests.status_of(row, at)
        key = keys.get(row.requested_by_key_id) if row.requested_by_key_id else None
        if row.requested_by is not None:
            asked_by = names.get(row.requested_by, f"#{row.requested_by}")
        else:
            asked_by = key[1] if key else "?"
        expired_unrecorded = status is RequestStatus.EXPIRED and row.decided_at is None
        listed.append(
            RequestRow(
                id=row.id,
                member_id=row.member_id,
                points=row.points,
                value=value_of(request, row.points),
                reason=row.reason,
                expires_at=row.expires_at,
                status=status.value,
                requested_by=asked_by,
                requester_role=row.requester_role,
                requester_key=key[0] if key else None,
                role_limit=row.role_limit,
                requested_at=row.requested_at,
                deadline=row.deadline,
                decided_by=names.get(row.decided_by) if row.decided_by else None,
                decided_at=row.deadline if expired_unrecorded else row.decided_at,
                note=row.decision_note,
                is_own=row.requested_by == viewer.id,
                can_decide=approver
                and row.requested_by != viewer.id
                and status is RequestStatus.PENDING,
            )
        )
    return listed


def pending_for_member(
    request: Request, session: Session, member_id: int, viewer: Staff
) -> list[RequestRow]:
    """The member's requests open for a decision."""
    return rows(request, session, requests.pending(session, now(request), member_id), viewer)
