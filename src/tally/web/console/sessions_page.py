"""The console's sessions page: where the staff member is signed in, and ending those sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit.domain import Action
from tally.sessions import service as web_sessions
from tally.web import sessions
from tally.web.console.auth import CurrentStaff, Staff, record
from tally.web.console.pages import flash, page
from tally.web.http import redirect
from tally.web.i18n import N_

router = APIRouter()
PAGE_URL = "/console/sessions"
SessionId = Annotated[int, Path(gt=0, le=2**62)]
BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One open session as the page lists it."""

    id: int
    signed_in_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str
    browser: str
    user_agent: str
    is_current: bool


def describe(user_agent: str | None) -> str:
    """``"Chrome · macOS"`` from a user agent; the raw text when nothing is recognised."""
    if not user_agent:
        return "—"
    browser = next((name for marker, name in BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in SYSTEMS if marker in user_agent), None)
    found = [part for part in (browser, system) if part]
    return " · ".join(found) if found else user_agent[:60]


def rows_of(request: Request, staff: Staff) -> list[SessionRow]:
    """The staff member's open sessions, the one in use first."""
    with database(request).read() as session:
        found = web_sessions.open_of_staff(session, staff.id, sessions.now(request))
    rows = [
        SessionRow(
            id=row.id,
            signed_in_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            address=row.address or "—",
            browser=describe(row.user_agent),
            user_agent=row.user_agent or "",
            is_current=row.id == staff.session_id,
        )
        for row in found
    ]
    return sorted(rows, key=lambda row: not row.is_current)


@router.get("/sessions")
def my_sessions(request: Request, staff: CurrentStaff) -> Response:
    """Every open session of the signed-in staff member: when, from where, which browser."""
    context = {"rows": rows_of(request, staff), "page_url": PAGE_URL, "section": "sessions"}
    return page(request, "console/sessions.html", staff, context)


@router.post("/sessions/{session_id}/end")
def end_session(request: Request, staff: CurrentStaff, session_id: SessionId) -> Response:
    """End one of the staff member's other sessions (every copy of its cookie stops working)."""
    if session_id == staff.session_id:
        flash(request, "error", N_("To end the session you are using, sign out."))
        return redirect(request, PAGE_URL)
    with database(request).write() as session:
        ended = web_sessions.end_of_staff(session, staff.id, session_id, sessions.now(request))
        if ended:
            record(request, session, staff, Action.SESSION_END, details={"session": session_id})
    if ended:
        flash(request, "success", N_("The session was ended."))
    else:
        flash(request, "error", N_("That session had already ended."))
    return redirect(request, PAGE_URL)


@router.post("/sessions/end-others")
def end_other_sessions(request: Request, staff: CurrentStaff) -> Response:
    """End every session of the staff member but the one in use."""
    with database(request).write() as session:
        count = 0
        if staff.session_id is not None:
            count = web_sessions.end_others_of_staff(
                session, staff.id, staff.session_id, sessions.now(request)
            )
        if count:
            record(request, session, staff, Action.SESSION_END, details={"sessions": count})
    flash(request, "success", N_("Other sessions ended: %(count)s."), count=count)
    return redirect(request, PAGE_URL)
