"""Member use cases: enrol, look up, link and unlink identities, freeze. Never commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.errors import (
    Conflict,
    IdentityConflict,
    MemberFrozen,
    MemberMerged,
    NotFound,
    ValidationFailed,
)
from tally.members import repository
from tally.members.domain import normalise_identity
from tally.members.models import Member, MemberStatus


@dataclass(frozen=True, slots=True)
class Identity:
    namespace: str
    external_id: str


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member with its identities and profile."""

    id: int
    status: MemberStatus
    merged_into_id: int | None
    created_at: datetime
    identities: list[Identity]
    profile: dict[str, Any] = field(default_factory=dict)


PROFILE_FIELDS = ("name", "phone", "birthday", "city")


def find_or_create(
    session: Session, identity: Identity, profile: dict[str, Any], now: datetime
) -> tuple[int, bool]:
    """The member owning ``identity``, created with ``profile`` if new: ``(member_id, created)``."""
    namespace, external_id = normalise_identity(identity.namespace, identity.external_id)
    existing = repository.find_by_identity(session, namespace, external_id)
    if existing is not None:
        return existing, False
    member_id = repository.insert_member(session, now)
    repository.insert_identity(session, member_id, namespace, external_id, now)
    values = {name: profile[name] for name in PROFILE_FIELDS if profile.get(name) is not None}
    if values:
        repository.save_profile(session, member_id, values, now)
    return member_id, True


def lookup(session: Session, namespace: str, external_id: str) -> int:
    """The member an identity belongs to, or ``not_found``."""
    namespace, external_id = normalise_identity(namespace, external_id)
    member_id = repository.find_by_identity(session, namespace, external_id)
    if member_id is None:
        raise NotFound("No member has this identity.", namespace=namespace)
    return member_id


def get(session: Session, member_id: int) -> Member:
    """A member, or ``not_found``."""
    member = repository.member(session, member_id)
    if member is None:
        raise NotFound(f"Member {member_id} does not exist.")
    return member


def view(session: Session, member_id: int) -> MemberView:
    """The member with identities and profile."""
    member = get(session, member_id)
    profile = repository.profile(session, member_id)
    profile_values: dict[str, Any] = {}
    if profile is not None:
        for name in PROFILE_FIELDS:
            value = getattr(profile, name)
            profile_values[name] = value.isoformat() if isinstance(value, date) else value
    return MemberView(
        id=member.id,
        status=member.status,
        merged_into_id=member.merged_into_id,
        created_at=member.created_at,
        identities=[
            Identity(item.namespace, item.external_id)
            for item in repository.identities(session, [member_id])
        ],
        profile=profile_values,
    )


def require_usable(session: Session, member_id: int, *, allow_frozen: bool = False) -> None:
    """Refuse unknown, merged and (unless allowed) frozen members."""
    check_usable(member_id, repository.status_of(session, member_id), allow_frozen=allow_frozen)


def lock(session: Session, member_id: int, *, allow_frozen: bool = False) -> None:
    """Lock the member until commit (its wallet row, the lock every writer of the member takes)
    and refuse it, under that lock, when unknown, merged or (unless allowed) frozen."""
    check_usable(member_id, repository.lock(session, member_id), allow_frozen=allow_frozen)


def check_usable(
    member_id: int, status: MemberStatus | None, *, allow_frozen: bool = False
) -> None:
    """Refuse a member of ``status`` (``None``: no such member) that is unknown, merged or
    (unless allowed) frozen."""
    if status is None:
        raise NotFound(f"Member {member_id} does not exist.")
    if status is MemberStatus.MERGED:
        raise MemberMerged(f"Member {member_id} was merged into another member.")
    if status is MemberStatus.FROZEN and not allow_frozen:
        raise MemberFrozen(f"Member {member_id} is frozen.")


def link(session: Session, member_id: int, identity: Identity, now: datetime) -> None:
    """Attach an identity; linking one the member already has is a no-op. The member is
    locked first (a merge moving its identities waits, or is waited for)."""
    lock(session, member_id, allow_frozen=True)
    namespace, external_id = normalise_identity(identity.namespace, identity.external_id)
    owner = repository.find_by_identity(session, namespace, external_id)
    if owner == member_id:
        return
    if owner is not None:
        raise IdentityConflict("This identity belongs to another member.", member_id=owner)
    repository.insert_identity(session, member_id, namespace, external_id, now)


def unlink(session: Session, member_id: int, identity: Identity) -> None:
    """Detach an identity; a member keeps at least one. The member is locked first, so two
    unlinks of its last two identities cannot both see the other one left."""
    lock(session, member_id, allow_frozen=True)
    namespace, external_id = normalise_identity(identity.namespace, identity.external_id)
    if len(repository.identities(session, [member_id])) <= 1:
        raise Conflict("A member keeps at least one identity.")
    if not repository.delete_identity(session, member_id, namespace, external_id):
        raise NotFound("The member has no such identity.")


def update_profile(session: Session, member_id: int, values: dict[str, Any], now: datetime) -> None:
    """Change profile fields (personal data, kept apart from the ledger)."""
    unknown = set(values) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown profile fields: {sorted(unknown)}")
    get(session, member_id)
    repository.save_profile(session, member_id, values, now)


def freeze(session: Session, member_id: int, reason: str, now: datetime) -> None:
    """Stop a member from earning and spending until unfrozen. The member is locked first, so
    a write that read it active under that lock commits before the freeze does."""
    get(session, member_id)
    repository.lock(session, member_id)
    if not repository.set_status(
        session,
        member_id,
        expected=[MemberStatus.ACTIVE],
        status=MemberStatus.FROZEN,
        now=now,
        frozen_reason=reason,
    ):
        raise Conflict("Only an active member can be frozen.")


def unfreeze(session: Session, member_id: int, now: datetime) -> None:
    """Let a frozen member earn and spend again."""
    get(session, member_id)
    repository.lock(session, member_id)
    if not repository.set_status(
        session,
        member_id,
        expected=[MemberStatus.FROZEN],
        status=MemberStatus.ACTIVE,
        now=now,
        frozen_reason=None,
    ):
        raise Conflict("The member is not frozen.")
