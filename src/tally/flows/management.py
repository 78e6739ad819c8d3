"""The console's management of partners, API keys and staff accounts: each change made by a
staff member and written to the audit log in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tally.audit import service as audit
from tally.errors import NotFound
from tally.flows.staff_adjustments import Actor
from tally.partners import service as partners
from tally.partners.models import ApiKey, Partner
from tally.programme.domain import Programme
from tally.staff import service as staff
from tally.staff.models import StaffRole, StaffUser


def _record(session: Session, actor: Actor, action: str, now: datetime, **details: object) -> None:
    audit.record(
        session, actor=actor.name, action=action, details=details, address=actor.address, now=now
    )


def register_partner(
    session: Session, actor: Actor, code: str, name: str, now: datetime
) -> Partner:
    """Register a partner (it has no key until one is created)."""
    partner = partners.create_partner(session, code.strip(), name, now)
    _record(session, actor, "partner.register", now, partner=partner.code, name=partner.name)
    return partner


def set_partner_active(
    session: Session, actor: Actor, code: str, active: bool, now: datetime
) -> Partner:
    """Deactivate a partner (its keys stop working at once) or reactivate it."""
    partner = partners.set_active(session, code, active)
    action = "partner.activate" if active else "partner.deactivate"
    _record(session, actor, action, now, partner=partner.code)
    return partner


def issue_key(
    session: Session,
    actor: Actor,
    code: str,
    scopes: str,
    label: str | None,
    *,
    programme: Programme,
    secret: str,
    now: datetime,
) -> tuple[ApiKey, str]:
    """Create an API key for partner ``code``; the plain key is returned once and never stored.
    The operator's scopes (``transfer``) only for the programme's operator channels."""
    partner = partners.partner_by_code(session, code)
    key, plain = partners.issue_key(
        session,
        partner,
        partners.parse_scopes(scopes),
        secret,
        now,
        label,
        operator_channel=programme.is_operator_channel(partner.code),
    )
    _record(
        session,
        actor,
        "api_key.create",
        now,
        partner=partner.code,
        prefix=key.prefix,
        scopes=key.scopes,
        label=label,
    )
    return key, plain


def revoke_key(session: Session, actor: Actor, code: str, prefix: str, now: datetime) -> None:
    """Revoke one of partner ``code``'s keys; it is refused from the next request on."""
    partner = partners.partner_by_code(session, code)
    if prefix not in {key.prefix for key in partners.keys_of(session, partner.id)}:
        raise NotFound(f"Partner {code} has no key {prefix}.")
    partners.revoke_key(session, prefix, now)
    _record(session, actor, "api_key.revoke", now, partner=partner.code, prefix=prefix)


def create_staff(
    session: Session,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: StaffRole,
    display_name: str,
    now: datetime,
) -> StaffUser:
    """Add a staff account (the password is stored only as an argon2 hash)."""
    user = staff.create(session, username, password, role, display_name, now)
    _record(
        session,
        actor,
        "staff.create",
        now,
        staff=user.id,
        username=user.username,
        role=user.role.value,
    )
    return user


def change_staff_role(
    session: Session, actor: Actor, staff_id: int, role: StaffRole, now: datetime
) -> StaffUser:
    """Give another staff member another role (never oneself, never the last administrator)."""
    before = staff.get(session, staff_id)
    previous = before.role.value if before is not None else None
    user = staff.change_role(session, staff_id, role, by=actor.staff_id)
    _record(
        session,
        actor,
        "staff.role_change",
        now,
        staff=user.id,
        username=user.username,
        role=user.role.value,
        previous=previous,
    )
    return user


def set_staff_active(
    session: Session, actor: Actor, staff_id: int, active: bool, now: datetime
) -> StaffUser:
    """Deactivate another staff member (signed out at once) or reactivate them."""
    user = staff.set_active(session, staff_id, active, by=actor.staff_id)
    action = "staff.activate" if active else "staff.deactivate"
    _record(session, actor, action, now, staff=user.id, username=user.username)
    return user
