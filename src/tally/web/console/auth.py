"""Who is using the console: the signed-in staff member, their permissions, and CSRF checks.

Every console route except the sign-in form depends on :func:`current_staff` (the router adds it),
so a new route is closed to the public unless it is deliberately put on the public router.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tally.api.deps import database
from tally.errors import Forbidden
from tally.staff import service as staff_service
from tally.staff.models import StaffRole, StaffUser
from tally.staff.service import Permission
from tally.web import sessions
from tally.web.errors import SignInRequired, csrf_rejected

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A sign-in lasts this long however active the staff member is (seconds).
SIGN_IN_LIFETIME = 12 * 3600
#: Roles that see members' phone numbers in full; everyone else sees them masked.
FULL_PHONE_ROLES = frozenset({StaffRole.ADMIN, StaffRole.SUPPORT})
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in staff member."""

    id: int
    username: str
    display_name: str
    role: StaffRole

    def can(self, permission: Permission) -> bool:
        """Whether this staff member's role carries ``permission``."""
        return staff_service.can(self.role, permission)

    @property
    def sees_full_phone(self) -> bool:
        """Whether phone numbers are shown unmasked."""
        return self.role in FULL_PHONE_ROLES


def console_session(request: Request) -> sessions.SignedSession:
    """The console's signed-cookie session."""
    return sessions.load(request, sessions.CONSOLE)


def sign_in(request: Request, user: StaffUser) -> None:
    """Start a fresh session for ``user`` (with a new CSRF token)."""
    session = console_session(request)
    session.clear()
    session.set("staff", user.id)
    session.set("since", int(time.time()))
    session.rotate_csrf()


def sign_out(request: Request) -> None:
    """End the session."""
    console_session(request).clear()


def _load(request: Request, staff_id: int) -> Staff | None:
    with database(request).read() as session:
        user = staff_service.get(session, staff_id)
        if user is None or not user.is_active:
            return None
        return Staff(user.id, user.username, user.display_name, user.role)


def _here(request: Request) -> str:
    if request.method in SAFE_METHODS:
        query = f"?{request.url.query}" if request.url.query else ""
        return request.url.path + query
    return "/console"


def signed_in_id(request: Request) -> int | None:
    """The staff id of a current (unexpired) sign-in, if any."""
    session = console_session(request)
    staff_id = session.get("staff")
    since = session.get("since")
    if not isinstance(staff_id, int) or not isinstance(since, int):
        return None
    if time.time() - since > SIGN_IN_LIFETIME:
        return None
    return staff_id


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
    staff_id = signed_in_id(request)
    staff = None if staff_id is None else await run_in_threadpool(_load, request, staff_id)
    if staff is None:
        if console_session(request).get("staff") is not None:
            sign_out(request)
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
