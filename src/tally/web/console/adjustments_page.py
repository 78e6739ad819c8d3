"""The console's adjustment requests: those awaiting a decision and those decided lately, with
approve, reject (with a note) and withdraw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.adjustments import service as requests
from tally.api.deps import database, policy
from tally.errors import TallyError
from tally.flows import staff_adjustments as flow
from tally.staff.service import Permission
from tally.web.console import adjustment_views, forms
from tally.web.console.auth import Staff, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, now

router = APIRouter()
PAGE_URL = "/console/adjustments"
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Adjuster = Annotated[Staff, Depends(require(Permission.ADJUST))]
RequestId = Annotated[int, Path(gt=0, le=2**62)]
Note = Annotated[str, Form(max_length=2000)]


def requests_page(
    request: Request, staff: Staff, *, status: int = 200, flashes: list[Flash] | None = None
) -> Response:
    """Render the pending requests (oldest first) and the recently decided ones."""
    at = now(request)
    with database(request).read() as session:
        pending = adjustment_views.rows(request, session, requests.pending(session, at), staff)
        decided = adjustment_views.rows(
            request, session, requests.recently_decided(session, at), staff
        )
    context = {
        "pending": pending,
        "decided": decided,
        "limits": adjustment_views.limits_for(request, staff),
        "page_url": PAGE_URL,
        "section": "adjustments",
    }
    return page(request, "console/adjustments.html", staff, context, status=status, flashes=flashes)


@router.get("/adjustments")
def list_requests(request: Request, staff: Viewer) -> Response:
    """Requests awaiting a decision, and the last ones decided."""
    return requests_page(request, staff)


def _decide(
    request: Request,
    staff: Staff,
    decision: Callable[[Session, flow.Actor], object],
    message: str,
    **params: object,
) -> Response:
    try:
        with database(request).write() as session:
            decision(session, adjustment_views.actor_of(request, staff))
    except TallyError as error:
        return requests_page(
            request, staff, status=error.status, flashes=[error_flash(request, error)]
        )
    flash(request, "success", message, **params)
    return redirect(request, PAGE_URL)


@router.post("/adjustments/{request_id}/approve")
def approve(request: Request, staff: Adjuster, request_id: RequestId) -> Response:
    """Approve another staff member's request: its adjustment is posted, once."""

    def decision(session: Session, actor: flow.Actor) -> object:
        return flow.approve(
            session,
            actor,
            request_id,
            programme=programme_in_force(request, session),
            policy=policy(request),
            now=now(request),
        )

    return _decide(
        request, staff, decision, N_("Request #%(number)s approved and posted."), number=request_id
    )


@router.post("/adjustments/{request_id}/reject")
def reject(request: Request, staff: Adjuster, request_id: RequestId, note: Note = "") -> Response:
    """Reject another staff member's request with a note; nothing is posted."""

    def decision(session: Session, actor: flow.Actor) -> object:
        return flow.reject(
            session,
            actor,
            request_id,
            forms.reason(note),
            programme=programme_in_force(request, session),
            policy=policy(request),
            now=now(request),
        )

    return _decide(request, staff, decision, N_("Request #%(number)s rejected."), number=request_id)


@router.post("/adjustments/{request_id}/withdraw")
def withdraw(request: Request, staff: Adjuster, request_id: RequestId) -> Response:
    """Take back one's own pending request."""

    def decision(session: Session, actor: flow.Actor) -> object:
        return flow.withdraw(session, actor, request_id, now(request))

    return _decide(
        request, staff, decision, N_("Request #%(number)s withdrawn."), number=request_id
    )
