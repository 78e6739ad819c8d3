"""The member's session: started by a member link (once per link), kept on the server."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request

from tally.api.deps import database
from tally.errors import MemberMerged, NotFound
from tally.members import service as members
from tally.sessions import service as web_sessions
from tally.sessions.domain import needs_touch, new_token
from tally.sessions.models import SessionKind
from tally.web import sessions


def member_session(request: Request) -> sessions.BrowserSession:
    """The member pages' session cookie."""
    return sessions.load(request, sessions.MEMBER)


def is_usable(session: Session, member_id: int) -> bool:
    """Whether ``member_id`` may use the pages: it exists and was not merged away."""
    try:
        members.require_usable(session, member_id, allow_frozen=True)
    except (NotFound, MemberMerged):
        return False
    return True


def can_sign_in(request: Request, member_id: int) -> bool:
    """Whether ``member_id`` may use the pages."""
    with database(request).read() as session:
        return is_usable(session, member_id)


def sign_in(request: Request, member_id: int, link_token: str) -> None:
    """Start a server session for ``member_id`` with a member link (``link_already_used``)."""
    token = new_token()
    browser = member_session(request)
    with database(request).write() as session:
        web_sessions.sign_out_token(
            session, SessionKind.MEMBER, browser.token, sessions.now(request)
        )
        web_sessions.start(
            session,
            SessionKind.MEMBER,
            token,
            sessions.now(request),
            sessions.client_of(request),
            member_id=member_id,
            link_token=link_token,
        )
    browser.renew(token)


def opened_by(request: Request, link_token: str) -> int | None:
    """The member whose live session in this browser was opened by ``link_token``, if any."""
    browser = member_session(request)
    with database(request).read() as session:
        row = web_sessions.live(session, SessionKind.MEMBER, browser.token, sessions.now(request))
        linked = web_sessions.opened_by_link(session, link_token)
    if row is None or linked is None or row.id != linked.id:
        return None
    return row.member_id


def sign_out(request: Request) -> None:
    """End this session for every copy of its cookie."""
    browser = member_session(request)
    now = sessions.now(request)
    with database(request).write() as session:
        row = web_sessions.live(session, SessionKind.MEMBER, browser.token, now)
        if row is not None:
            web_sessions.sign_out(session, row.id, now)
    browser.clear()


def _resolve(request: Request) -> int | None:
    browser = member_session(request)
    now = sessions.now(request)
    with database(request).read() as session:
        row = web_sessions.live(session, SessionKind.MEMBER, browser.token, now)
        member_id = None if row is None else row.member_id
        if member_id is None or not is_usable(session, member_id):
            return None
    if row is not None and needs_touch(row.last_seen_at, now):
        with database(request).write() as session:
            web_sessions.touch_if_stale(session, row, now)
    return member_id


def signed_in_member(request: Request) -> int | None:
    """The member of a live session who may still use the pages, else ``None``."""
    browser = member_session(request)
    if browser.token is None:
        return None
    if not browser.is_resolved:
        browser.resolved = _resolve(request)
        browser.is_resolved = True
    found: int | None = browser.resolved
    return found
