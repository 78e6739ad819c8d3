"""The console's member page, and opening the member pages as that member."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.api.member_links import link_for
from tally.audit.domain import Action
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.staff.service import Permission
from tally.web import tier_views
from tally.web.console import adjustment_views, once, views
from tally.web.console.auth import CurrentStaff, Staff, record, record_view, require
from tally.web.console.consent_views import CONSENT_FORM
from tally.web.console.consent_views import card as consent_card
from tally.web.console.once import ADJUST_FORM
from tally.web.console.pages import page
from tally.web.http import is_htmx, programme_in_force, redirect
from tally.web.sessions import Flash

router = APIRouter()
MemberId = Annotated[int, Path(gt=0, le=2**62)]
Opener = Annotated[Staff, Depends(require(Permission.OPEN_AS_MEMBER))]
EMPTY_FORM = {
    "points": "",
    "reason": "",
    "freeze_reason": "",
    "merge_member": "",
    "merge_reason": "",
    "confirm": "",
    "expires": "",
}


def member_url(member_id: int) -> str:
    """The console page of a member."""
    return f"/console/members/{member_id}"


def member_page(
    request: Request,
    staff: Staff,
    member_id: int,
    *,
    cursor: str | None = None,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
    block: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Response:
    """Render the member page (after a failed action: with the error and the typed values;
    ``context`` adds to what the template gets, e.g. the confirmation of a large adjustment)."""
    now = utcnow()
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        detail = views.member_detail(
            session,
            member_id,
            reveal_phone=staff.sees_full_phone,
            cursor=cursor,
            now=now,
            zone=programme.zone,
        )
        tiers = None if block else tier_views.tier_detail(session, member_id, now, programme)
        consents = (
            None
            if block
            else consent_card(
                session,
                member_id,
                programme,
                can_record=staff.can(Permission.RECORD_CONSENT),
                nonce=once.issue(request, CONSENT_FORM),
            )
        )
        pending = (
            [] if block else adjustment_views.pending_for_member(request, session, member_id, staff)
        )
    usable = not detail.is_merged
    full = {
        "member": detail,
        "tiers": tiers,
        "consents": consents,
        "can_adjust": usable and staff.can(Permission.ADJUST),
        "can_freeze": usable and staff.can(Permission.FREEZE),
        "can_merge": usable and staff.can(Permission.MERGE),
        "can_unmerge": staff.can(Permission.MERGE),
        "nonce": once.issue(request, ADJUST_FORM),
        "form": {**EMPTY_FORM, **(form or {})},
        "page_url": member_url(member_id),
        "limits": adjustment_views.limits_for(request, staff),
        "pending_requests": pending,
        "confirm": None,
        **(context or {}),
    }
    return page(
        request, "console/member.html", staff, full, status=status, block=block, flashes=flashes
    )


@router.get("/members/{member_id}")
def show_member(
    request: Request,
    staff: CurrentStaff,
    member_id: MemberId,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Status, identities, profile, balance, lots, holds, history and the actions allowed
    (the look at the member's personal data is audited; more history is not)."""
    block = "history" if is_htmx(request) else None
    response = member_page(request, staff, member_id, cursor=before, block=block)
    if block is None:
        record_view(request, staff, Action.MEMBER_VIEW, member_id=member_id)
    return response


@router.get("/members/{member_id}/open-as-member")
def open_as_member(request: Request, staff: Opener, member_id: MemberId) -> Response:
    """Sign a short-lived member link and follow it (opens the member's own pages), audited;
    not for roles without ``open_as_member`` (auditors)."""
    with database(request).write() as session:
        members.require_usable(session, member_id, allow_frozen=True)
        record(request, session, staff, Action.OPEN_AS_MEMBER, member_id=member_id)
    return redirect(request, link_for(request.app.state.secret, member_id, utcnow()).url)
