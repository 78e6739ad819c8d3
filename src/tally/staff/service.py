"""Staff accounts: argon2 passwords and roles."""

from __future__ import annotations

import enum
import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.errors import Conflict, NotFound, Unauthorized, ValidationFailed, WouldLockOut
from tally.staff.models import StaffRole, StaffUser

_hasher = PasswordHasher()
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
MIN_PASSWORD = 10
# A valid hash to verify against when the user does not exist, so timing reveals nothing.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class Permission(enum.StrEnum):
    VIEW = "view"
    ADJUST = "adjust"
    FREEZE = "freeze"
    MERGE = "merge"
    MANAGE = "manage"
    OPEN_AS_MEMBER = "open_as_member"  # sign in to the member pages as the member
    AUDIT = "audit"  # browse the audit log
    RECORD_CONSENT = "record_consent"  # record a member's consent told at the desk or by phone
    ACCOUNTS = "accounts"  # read partner and system accounts and the outstanding liability
    CAMPAIGNS = "campaigns"  # pause and resume campaigns
    MALL = "mall"  # manage the mall's catalog, code pools and orders (ship, cancel, refund)


ROLE_PERMISSIONS: dict[StaffRole, frozenset[Permission]] = {
    StaffRole.ADMIN: frozenset(Permission),
    StaffRole.SUPPORT: frozenset(
        {
            Permission.VIEW,
            Permission.ADJUST,
            Permission.FREEZE,
            Permission.MERGE,
            Permission.OPEN_AS_MEMBER,
            Permission.RECORD_CONSENT,
        }
    ),
    StaffRole.OPS: frozenset(
        {
            Permission.VIEW,
            Permission.ADJUST,
            Permission.OPEN_AS_MEMBER,
            Permission.CAMPAIGNS,
            Permission.MALL,
        }
    ),
    StaffRole.FINANCE: frozenset({Permission.VIEW, Permission.ADJUST, Permission.ACCOUNTS}),
    StaffRole.AUDITOR: frozenset({Permission.VIEW, Permission.AUDIT, Permission.ACCOUNTS}),
}


def can(role: StaffRole, permission: Permission) -> bool:
    """Whether ``role`` carries ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


def create(
    session: Session,
    username: str,
    password: str,
    role: StaffRole,
    display_name: str,
    now: datetime,
) -> StaffUser:
    """Add a staff member; the password is stored only as an argon2 hash."""
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        raise ValidationFailed(
            "A username is 2–64 lower-case letters, digits, '.', '-' or '_'.", field="username"
        )
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            f"A password has at least {MIN_PASSWORD} characters.", field="password"
        )
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise Conflict(f"Staff member {username} already exists.")
    user = StaffUser(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=_hasher.hash(password),
        role=role,
        is_active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> StaffUser:
    """The active staff member with these credentials, or ``unauthorized``."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as exc:
        raise Unauthorized("Wrong username or password.") from exc
    if user is None or not user.is_active:
        raise Unauthorized("Wrong username or password.")
    return user


def id_of(session: Session, username: str) -> int | None:
    """The id of the staff member with this username (any status), if there is one."""
    found = session.scalar(
        select(StaffUser.id).where(StaffUser.username == username.strip().lower())
    )
    return None if found is None else int(found)


def get(session: Session, staff_id: int) -> StaffUser | None:
    return session.get(StaffUser, staff_id)


def display_names(session: Session, ids: set[int]) -> dict[int, str]:
    """``{staff id: display name}`` of the staff members ``ids``."""
    if not ids:
        return {}
    query = select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    return dict(session.execute(query).all())


def users(session: Session) -> list[StaffUser]:
    """Every staff account, active first, then by username."""
    query = select(StaffUser).order_by(StaffUser.is_active.desc(), StaffUser.username)
    return list(session.scalars(query))


def _require(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound(f"Staff member {staff_id} does not exist.")
    return user


def _keep_an_administrator(session: Session, target: StaffUser, by: int) -> None:
    """Refuse to change ``target`` when it is the acting staff member themselves, or when it is
    the last active administrator. The active administrators are locked (in id order) first, so
    two administrators demoting each other at once cannot both succeed."""
    if target.id == by:
        raise WouldLockOut("Staff cannot change their own role or deactivate themselves.")
    admins = session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == StaffRole.ADMIN, StaffUser.is_active.is_(True))
        .order_by(StaffUser.id)
        .with_for_update()
    ).all()
    if target.id in admins and len(admins) == 1:
        raise WouldLockOut("The console needs at least one active administrator.")


def change_role(session: Session, staff_id: int, role: StaffRole, *, by: int) -> StaffUser:
    """Give another staff member ``role`` (never oneself; never the last administrator away)."""
    user = _require(session, staff_id)
    if user.role is role:
        return user
    if user.role is StaffRole.ADMIN or user.id == by:
        _keep_an_administrator(session, user, by)
    user.role = role
    session.flush()
    return user


def set_active(session: Session, staff_id: int, active: bool, *, by: int) -> StaffUser:
    """Deactivate (or reactivate) another staff member; a deactivated one is signed out at once
    (every request checks the account) and cannot sign in."""
    user = _require(session, staff_id)
    if user.is_active is active:
        return user
    if not active:
        _keep_an_administrator(session, user, by)
    user.is_active = active
    session.flush()
    return user
