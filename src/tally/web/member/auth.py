"""The member's session: started by a signed member link, kept in its own signed cookie."""

from __future__ import annotations

import time

from starlette.requests import Request

from tally.api.deps import database
from tally.errors import MemberMerged, NotFound
from tally.members import service as members
from tally.web import sessions

#: A member session lasts this long; the app opens a fresh link whenever it needs more.
SESSION_LIFETIME = 2 * 3600


def member_session(request: Request) -> sessions.SignedSession:
    """The member pages' signed-cookie session."""
    return sessions.load(request, sessions.MEMBER)


def sign_in(request: Request, member_id: int) -> None:
    """Start a fresh session for ``member_id``."""
    session = member_session(request)
    session.clear()
    session.set("member", member_id)
    session.set("since", int(time.time()))
    session.rotate_csrf()


def sign_out(request: Request) -> None:
    """End the session."""
    member_session(request).clear()


def can_sign_in(request: Request, member_id: int) -> bool:
    """Whether ``member_id`` may use the pages: it exists and was not merged away."""
    try:
        with database(request).read() as session:
            members.require_usable(session, member_id, allow_frozen=True)
    except (NotFound, MemberMerged):
        return False
    return True


def signed_in_member(request: Request) -> int | None:
    """The member of a current session who may still use the pages, else ``None``."""
    session = member_session(request)
    member_id = session.get("member")
    since = session.get("since")
    if not isinstance(member_id, int) or not isinstance(since, int):
        return None
    if time.time() - since > SESSION_LIFETIME or not can_sign_in(request, member_id):
        sign_out(request)
        return None
    return member_id
