"""The member pages (``/m``), opened from a partner app's webview with a signed link."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.api.member_links import read_token
from tally.errors import LinkAlreadyUsed
from tally.kit.clock import utcnow
from tally.web import tier_views
from tally.web.errors import csrf_rejected
from tally.web.http import is_htmx, programme_in_force, redirect, render
from tally.web.member import auth, views

router = APIRouter(prefix="/m", include_in_schema=False)
MAX_TOKEN = 512


def _page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    block: str | None = None,
) -> Response:
    session = auth.member_session(request)
    signed_in = auth.signed_in_member(request) is not None
    full = {"csrf": session.csrf_token() if signed_in else "", **context}
    return render(request, name, full, status=status, block=block)


def _welcome(request: Request, reason: str, status: int = 200) -> Response:
    """The page for visitors without a session: open these pages from the app."""
    return _page(
        request, "member/welcome.html", {"reason": reason, "page_url": "/m"}, status=status
    )


@router.get("/sign-in")
def sign_in(request: Request, token: Annotated[str, Query(max_length=MAX_TOKEN)] = "") -> Response:
    """Exchange a member link's token for a session (once: a link signs in one browser, one
    time), then show the member's points. Reopening the link in the browser it signed in is fine.
    """
    member_id = read_token(request.app.state.secret, token) if token else None
    if member_id is None:
        return _welcome(request, "link_invalid", status=400)
    if auth.opened_by(request, token) != member_id:
        if not auth.can_sign_in(request, member_id):
            return _welcome(request, "unavailable", status=403)
        try:
            auth.sign_in(request, member_id, token)
        except LinkAlreadyUsed:
            return _welcome(request, "link_used", status=409)
    response = redirect(request, "/m")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("")
def my_points(request: Request) -> Response:
    """Available points, held points, what expires soon, the expiry schedule, latest activity."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return _welcome(request, "signed_out")
    now = utcnow()
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        points = views.my_points(
            session,
            member_id,
            now,
            programme.zone,
            programme.reminders.expiry.days_before,
            programme,
        )
        status = tier_views.status_of(session, member_id, now, programme)
    context = {"points": points, "status": status, "theme": status.theme, "page_url": "/m"}
    return _page(request, "member/points.html", context)


@router.get("/status")
def my_membership(request: Request) -> Response:
    """The member's tier, progress to the next, benefits, paid membership and family."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return _welcome(request, "signed_out")
    with database(request).read() as session:
        status = tier_views.status_of(
            session, member_id, utcnow(), programme_in_force(request, session)
        )
    context = {"status": status, "theme": status.theme, "page_url": "/m/status"}
    return _page(request, "member/status.html", context)


@router.get("/history")
def history(
    request: Request, before: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """Everything that happened to the member's points, newest first; htmx loads more."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return _welcome(request, "signed_out")
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        page = views.activity(session, member_id, before, views.HISTORY_PAGE, programme)
        theme = tier_views.theme_of(session, member_id, programme)
    block = "items" if is_htmx(request) else None
    context = {"page": page, "theme": theme, "page_url": "/m/history"}
    return _page(request, "member/history.html", context, block=block)


@router.post("/sign-out")
def sign_out(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the member's session."""
    if not auth.member_session(request).csrf_matches(csrf):
        raise csrf_rejected()
    auth.sign_out(request)
    return redirect(request, "/m")
