"""Who is using the console: the signed-in staff member, their permissions, and CSRF checks.

A sign-in is a server-side session (:mod:`tally.sessions`): the cookie names it by a random token,
and every request finds the live row again, so signing out (or ending the session from another
one) stops every copy of the cookie at once.

Every console route except the sign-in form depends on :func:`current_staff` (the router adds it),
so a new route is closed to the public unless it is deliberately put on the public router.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tally.api.deps import database
from tally.audit import service as audit
from tally.audit.domain import Action, staff_actor
from tally.errors import Forbidden
from tally.sessions import service as web_sessions
from tally.sessions.domain import needs_touch
from tally.sessions.models import SessionKind
from tally.staff import service as staff_service
from tally.staff.models import StaffRole, StaffUser
from tally.staff.service import Permission
from tally.web import sessions
from tally.web.errors import SignInRequired, csrf_rejected

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Roles that see members' phone numbers in full; everyone else sees them masked.
FULL_PHONE_ROLES = frozenset({StaffRole.ADMIN, StaffRole.SUPPORT})
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in staff member (and the id of the session they use)."""

    id: int
    username: str
    display_name: str
    role: StaffRole
    session_id: int | None = None

    def can(self, permission: Permission) -> bool:
        """Whether this staff member's role carries ``permission``."""
        return staff_service.can(self.role, permission)

    @property
    def sees_full_phone(self) -> bool:
        """Whether phone numbers are shown unmasked."""
        return self.role in FULL_PHONE_ROLES

    @property
    def actor(self) -> str:
        """This staff member as the audit log names them."""
        return staff_actor(self.id)


def console_session(request: Request) -> sessions.BrowserSession:
    """The console's session cookie (its token, CSRF token and flashes)."""
    return sessions.load(request, sessions.CONSOLE)


def record(
    request: Request,
    session: Session,
    staff: Staff,
    action: str,
    *,
    member_id: int | None = None,
    details: dict[str, object] | None = None,
) -> None:
    """Write an audit entry for ``staff`` from this request's address, in ``session``."""
    audit.record(
        session,
        actor=staff.actor,
        action=action,
        member_id=member_id,
        details=details,
        address=sessions.client_of(request).address,
        now=sessions.now(request),
    )


def trail(
    request: Request, staff: Staff, action: str, member_id: int | None = None, **details: object
) -> Callable[[Session], None]:
    """The audit entry of a change, to be written inside the change's own transaction."""

    def write(session: Session) -> None:
        record(request, session, staff, action, member_id=member_id, details=details or None)

    return write


def record_view(
    request: Request,
    staff: Staff,
    action: str,
    *,
    member_id: int | None = None,
    details: dict[str, object] | None = None,
) -> None:
    """Audit a look at personal data (a read, so the entry gets a transaction of its own)."""
    with database(request).write() as session:
        record(request, session, staff, action, member_id=member_id, details=details)


def sign_in(request: Request, session: Session, user: StaffUser) -> None:
    """Start a new server session for ``user`` (a new token, so a new CSRF token), audited."""
    browser = console_session(request)
    web_sessions.sign_out_token(session, SessionKind.CONSOLE, browser.token, sessions.now(request))
    token = browser.renew()
    row = web_sessions.start(
        session,
        SessionKind.CONSOLE,
        token,
        sessions.now(request),
        sessions.client_of(request),
        staff_id=user.id,
    )
    staff = Staff(user.id, user.username, user.display_name, user.role, row.id)
    record(request, session, staff, Action.SIGN_IN, details={"session": row.id})


def sign_out(request: Request, staff: Staff) -> None:
    """End this session for every copy of its cookie, audited; the cookie is forgotten."""
    if staff.session_id is not None:
        with database(request).write() as session:
            if web_sessions.sign_out(session, staff.session_id, sessions.now(request)):
                details: dict[str, object] = {"session": staff.session_id}
                record(request, session, staff, Action.SIGN_OUT, details=details)
    console_session(request).clear()


def _load(request: Request) -> Staff | None:
    browser = console_session(request)
    now = sessions.now(request)
    with database(request).read() as session:
        row = web_sessions.live(session, SessionKind.CONSOLE, browser.token, now)
        staff_id = None if row is None else row.staff_id
        user = None if staff_id is None else staff_service.get(session, staff_id)
    if row is None or user is None or not user.is_active:
        return None
    if needs_touch(row.last_seen_at, now):
        with database(request).write() as session:
            web_sessions.touch_if_stale(session, row, now)
    return Staff(user.id, user.username, user.display_name, user.role, row.id)


def signed_in(request: Request) -> Staff | None:
    """The staff member of this request's live session, if any (looked up once a request)."""
    browser = console_session(request)
    if not browser.is_resolved:
        browser.resolved = None if browser.token is None else _load(request)
        browser.is_resolved = True
    found: Staff | None = browser.resolved
    return found


def signed_in_id(request: Request) -> int | None:
    """The staff id of a live sign-in, if any."""
    staff = signed_in(request)
    return None if staff is None else staff.id


def _here(request: Request) -> str:
    if request.method in SAFE_METHODS:
        query = f"?{request.url.query}" if request.url.query else ""
        return request.url.path + query
    return "/console"


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose form lacks the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not isinstance(submitted, str) or not console_session(request).csrf_matches(submitted):
        raise csrf_rejected()


async def current_staff(request: Request) -> Staff:
    """The signed-in, active staff member; otherwise off to the sign-in form."""
    staff = await run_in_threadpool(signed_in, request)
    if staff is None:
        raise SignInRequired(_here(request))
    await verify_csrf(request)
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Staff]]:
    """A dependency admitting only staff whose role carries ``permission``."""

    async def dependency(staff: CurrentStaff) -> Staff:
        if not staff.can(permission):
            raise Forbidden(
                f"The {staff.role.value} role lacks the '{permission.value}' permission.",
                permission=permission.value,
            )
        return staff

    dependency.__name__ = f"require_{permission.value}"
    return dependency
