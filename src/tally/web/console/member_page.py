"""The console's member page, and opening the member pages as that member."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.api.member_links import link_for
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.staff.service import Permission
from tally.web import tier_views
from tally.web.console import views
from tally.web.console.auth import CurrentStaff, Staff
from tally.web.console.forms import new_nonce
from tally.web.console.pages import page
from tally.web.http import is_htmx, programme_in_force, redirect
from tally.web.sessions import Flash

router = APIRouter()
MemberId = Annotated[int, Path(gt=0, le=2**62)]
EMPTY_FORM = {
    "points": "",
    "reason": "",
    "freeze_reason": "",
    "merge_member": "",
    "merge_reason": "",
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
) -> Response:
    """Render the member page (after a failed action: with the error and the typed values)."""
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
    usable = not detail.is_merged
    context = {
        "member": detail,
        "tiers": tiers,
        "can_adjust": usable and staff.can(Permission.ADJUST),
        "can_freeze": usable and staff.can(Permission.FREEZE),
        "can_merge": usable and staff.can(Permission.MERGE),
        "can_unmerge": staff.can(Permission.MERGE),
        "nonce": new_nonce(),
        "form": {**EMPTY_FORM, **(form or {})},
        "page_url": member_url(member_id),
    }
    return page(
        request, "console/member.html", staff, context, status=status, block=block, flashes=flashes
    )


@router.get("/members/{member_id}")
def show_member(
    request: Request,
    staff: CurrentStaff,
    member_id: MemberId,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Status, identities, profile, balance, lots, holds, history and the actions allowed."""
    block = "history" if is_htmx(request) else None
    return member_page(request, staff, member_id, cursor=before, block=block)


@router.get("/members/{member_id}/open-as-member")
def open_as_member(request: Request, _staff: CurrentStaff, member_id: MemberId) -> Response:
    """Sign a short-lived member link and follow it (opens the member's own pages)."""
    with database(request).read() as session:
        members.require_usable(session, member_id, allow_frozen=True)
    return redirect(request, link_for(request.app.state.secret, member_id, utcnow()).url)
