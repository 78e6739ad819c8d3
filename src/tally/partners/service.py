"""Partners and their API keys: shown once, stored as a keyed hash, scoped, revocable."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tally.accounts import service as accounts
from tally.db.raw import Raw
from tally.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from tally.kit.crypto import constant_time_equal, keyed_hash, random_token
from tally.partners.domain import OPERATOR_SCOPES, KeyHolder, Scope
from tally.partners.models import ApiKey, Partner

__all__ = [  # KeyHolder and Scope are re-exported: callers import them from here
    "CODE_PATTERN",
    "KEY_PREFIX",
    "KeyHolder",
    "Scope",
    "authenticate",
    "create_partner",
    "issue_key",
    "key_by_id",
    "key_owners",
    "keys_of",
    "parse_scopes",
    "partner_by_code",
    "partners",
    "revoke_key",
    "set_active",
]

KEY_PREFIX = "tly"
_KEY_BY_PREFIX = Raw(
    "SELECT k.id, k.key_hash, k.scopes, k.revoked_at, p.id, p.code, p.is_active"
    " FROM api_keys k JOIN partners p ON p.id = k.partner_id WHERE k.prefix = :prefix"
)
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def parse_scopes(text: str) -> frozenset[Scope]:
    """``"earn,redeem"`` → scopes; unknown names are refused."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValidationFailed("At least one scope is needed.", field="scopes")
    try:
        return frozenset(Scope(name) for name in names)
    except ValueError as exc:
        known = ", ".join(scope.value for scope in Scope)
        raise ValidationFailed(
            f"Unknown scope in {text!r}; known: {known}.", field="scopes"
        ) from exc


def create_partner(session: Session, code: str, name: str, now: datetime) -> Partner:
    """Register a partner, with its accounts; codes are unique."""
    if not CODE_PATTERN.match(code):
        raise ValidationFailed("A partner code is letters, digits, '-' or '_'.", field="code")
    if session.scalar(select(Partner.id).where(Partner.code == code)) is not None:
        raise Conflict(f"Partner {code} already exists.")
    partner = Partner(code=code, name=name.strip() or code, is_active=True, created_at=now)
    session.add(partner)
    session.flush()
    accounts.open_for_partner(session, partner.id)
    return partner


def partner_by_code(session: Session, code: str) -> Partner:
    partner = session.scalar(select(Partner).where(Partner.code == code))
    if partner is None:
        raise NotFound(f"Partner {code} does not exist.")
    return partner


def partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.id)))


def set_active(session: Session, code: str, active: bool) -> Partner:
    """Deactivate (or reactivate) a partner: while inactive, every one of its keys is refused."""
    partner = partner_by_code(session, code)
    partner.is_active = active
    session.flush()
    return partner


def issue_key(
    session: Session,
    partner: Partner,
    scopes: frozenset[Scope],
    secret: str,
    now: datetime,
    label: str | None = None,
    *,
    operator_channel: bool = False,
) -> tuple[ApiKey, str]:
    """Create an API key; the returned plain key is never stored and cannot be shown again.

    ``operator_channel`` says whether the partner is one of the operator's own channels in the
    programme in force: only those may hold the operator's scopes (``transfer``).
    """
    reserved = sorted(scope.value for scope in scopes & OPERATOR_SCOPES)
    if reserved and not operator_channel:
        raise ValidationFailed(
            f"Partner {partner.code} is not one of the operator's channels (partners[]."
            f"operator_channel in the programme), so its keys cannot have the "
            f"{', '.join(repr(name) for name in reserved)} scope.",
            field="scopes",
        )
    prefix = f"{KEY_PREFIX}_{secrets.token_hex(6)}"
    plain = f"{prefix}.{random_token(24)}"
    key = ApiKey(
        partner_id=partner.id,
        prefix=prefix,
        key_hash=keyed_hash(secret, plain),
        scopes=",".join(sorted(scope.value for scope in scopes)),
        label=label,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, plain


def keys_of(session: Session, partner_id: int) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.partner_id == partner_id).order_by(ApiKey.id))
    )


def key_by_id(session: Session, key_id: int) -> ApiKey:
    """The API key ``key_id`` (revoked or not), or ``not_found``."""
    found = session.get(ApiKey, key_id)
    if found is None:
        raise NotFound(f"API key {key_id} does not exist.")
    return found


def key_owners(session: Session, key_ids: set[int]) -> dict[int, tuple[str, str]]:
    """``{key id: (key prefix, partner code)}`` of ``key_ids``, with one statement."""
    if not key_ids:
        return {}
    rows = session.execute(
        select(ApiKey.id, ApiKey.prefix, Partner.code)
        .join(Partner, Partner.id == ApiKey.partner_id)
        .where(ApiKey.id.in_(sorted(key_ids)))
    )
    return {key_id: (prefix, code) for key_id, prefix, code in rows}


def revoke_key(session: Session, prefix: str, now: datetime) -> None:
    """Revoke a key by its prefix; it stops working at once."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"No active key {prefix}.")


def authenticate(session: Session, plain: str, secret: str) -> KeyHolder:
    """The partner holding ``plain``, or ``unauthorized``."""
    prefix, dot, _rest = plain.partition(".")
    if not dot or not prefix.startswith(f"{KEY_PREFIX}_"):
        raise Unauthorized("The API key is malformed.")
    row = _KEY_BY_PREFIX.one(session, {"prefix": prefix})
    if row is None:
        raise Unauthorized("The API key is not valid.")
    key_id, key_hash, scopes, revoked_at, partner_id, code, is_active = row
    if not constant_time_equal(key_hash, keyed_hash(secret, plain)):
        raise Unauthorized("The API key is not valid.")
    if revoked_at is not None or not is_active:
        raise Unauthorized("The API key was revoked.")
    return KeyHolder(
        partner_id=partner_id,
        partner_code=code,
        key_id=key_id,
        scopes=frozenset(Scope(name) for name in scopes.split(",") if name),
    )
