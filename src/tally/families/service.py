"""Family use cases: create, invite, accept, decline, withdraw, leave, remove, dissolve,
settings, the monthly allowance, and the family as a member or the console sees it.

Every member action names the acting member (a partner app acts on the member's behalf) and
checks that member's right. Never commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import (
    AlreadyInFamily,
    ConcurrentChange,
    Conflict,
    FamilyDissolved,
    FamilyFull,
    FamilyLimitExceeded,
    InvitationNotPending,
    MemberMerged,
    NotFamilyMember,
    NotFamilyOwner,
    NotFound,
    ValidationFailed,
)
from tally.families import domain, repository
from tally.families.domain import (
    FamilyMode,
    FamilyRole,
    FamilyStatus,
    InvitationStatus,
)
from tally.families.models import Family
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.programme.domain import FamilyRules, Programme


@dataclass(frozen=True, slots=True)
class MemberLine:
    """Someone in a family, with this month's spend from the shared balance (share mode)."""

    member_id: int
    role: FamilyRole
    joined_at: datetime
    available: int
    monthly_limit: int | None
    limit_is_default: bool
    spent_this_month: int
    remaining_this_month: int | None


@dataclass(frozen=True, slots=True)
class InvitationLine:
    member_id: int
    invited_by: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FamilyView:
    """A family as the API, the CLI and the member status page show it."""

    id: int
    owner_id: int
    mode: FamilyMode
    status: FamilyStatus
    created_at: datetime
    dissolved_at: datetime | None
    max_members: int
    seats_taken: int
    month: str
    members: list[MemberLine]
    invitations: list[InvitationLine]
    pooled_available: int

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "mode": self.mode.value,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "dissolved_at": self.dissolved_at.isoformat() if self.dissolved_at else None,
            "max_members": self.max_members,
            "seats_taken": self.seats_taken,
            "month": self.month,
            "pooled_available": self.pooled_available,
            "members": [
                {
                    "member_id": line.member_id,
                    "role": line.role.value,
                    "joined_at": line.joined_at.isoformat(),
                    "available": line.available,
                    "monthly_limit": line.monthly_limit,
                    "limit_is_default": line.limit_is_default,
                    "spent_this_month": line.spent_this_month,
                    "remaining_this_month": line.remaining_this_month,
                }
                for line in self.members
            ],
            "invitations": [
                {
                    "member_id": item.member_id,
                    "invited_by": item.invited_by,
                    "created_at": item.created_at.isoformat(),
                }
                for item in self.invitations
            ],
        }


# --- Reading ----------------------------------------------------------------------------------


def get(session: Session, family_id: int) -> Family:
    found = repository.family(session, family_id)
    if found is None:
        raise NotFound(f"Family {family_id} does not exist.")
    return found


def active(session: Session, family_id: int) -> Family:
    """A family that has not been dissolved."""
    found = get(session, family_id)
    if found.status is not FamilyStatus.ACTIVE:
        raise FamilyDissolved(f"Family {family_id} was dissolved.")
    return found


def view(session: Session, family_id: int, now: datetime, programme: Programme) -> FamilyView:
    """Members, roles, status, mode, limits, this month's spend and the pooled total."""
    found = get(session, family_id)
    rules = programme.family
    month = domain.month_of(now, programme.zone)
    rows = repository.memberships(session, family_id)
    ids = [row.member_id for row in rows]
    spendable = repository.spendable(session, ids, now)
    spent = repository.month_spent(session, family_id, month)
    for member_id, points in pending_returns(session, family_id, month).items():
        spent[member_id] = max(spent.get(member_id, 0) - points, 0)
    lines = []
    for row in sorted(rows, key=lambda item: (item.role is not FamilyRole.OWNER, item.id)):
        is_owner = row.role is FamilyRole.OWNER
        limit = (
            None
            if is_owner
            else domain.effective_limit(row.monthly_limit, rules.default_monthly_limit)
        )
        used = spent.get(row.member_id, 0)
        lines.append(
            MemberLine(
                member_id=row.member_id,
                role=row.role,
                joined_at=row.joined_at,
                available=spendable[row.member_id],
                monthly_limit=limit,
                limit_is_default=not is_owner and row.monthly_limit is None,
                spent_this_month=used,
                remaining_this_month=None if limit is None else domain.remaining(limit, used),
            )
        )
    invitations = (
        [
            InvitationLine(item.member_id, item.invited_by, item.created_at)
            for item in repository.pending_invitations(session, family_id)
        ]
        if found.status is FamilyStatus.ACTIVE
        else []
    )
    return FamilyView(
        id=found.id,
        owner_id=found.owner_id,
        mode=found.mode,
        status=found.status,
        created_at=found.created_at,
        dissolved_at=found.dissolved_at,
        max_members=rules.max_members,
        seats_taken=found.seats,
        month=month,
        members=lines,
        invitations=invitations,
        pooled_available=sum(spendable.values()),
    )


def family_of(
    session: Session, member_id: int, now: datetime, *, programme: Programme
) -> FamilyView | None:
    """The family ``member_id`` is in now, or ``None``."""
    membership = repository.membership_of(session, member_id)
    if membership is None:
        return None
    return view(session, membership.family_id, now, programme)


# --- Membership -------------------------------------------------------------------------------


def _lock_usable(session: Session, member_id: int) -> None:
    """Lock the member's row and refuse unknown, merged or frozen members.

    The lock orders a join against a concurrent merge of the same member.
    """
    status = repository.lock_member(session, member_id)
    if status is None:
        raise NotFound(f"Member {member_id} does not exist.")
    if status is MemberStatus.MERGED:
        raise MemberMerged(f"Member {member_id} was merged into another member.")
    members.require_usable(session, member_id)


def _refuse_if_in_family(session: Session, member_id: int) -> None:
    current = repository.membership_of(session, member_id)
    if current is not None:
        raise AlreadyInFamily(
            f"Member {member_id} is already in family {current.family_id}.",
            family_id=current.family_id,
        )


def create(session: Session, owner_id: int, mode: FamilyMode, now: datetime) -> int:
    """A new family, owned by ``owner_id`` (who must not be in a family)."""
    _lock_usable(session, owner_id)
    _refuse_if_in_family(session, owner_id)
    family_id = repository.insert_family(session, owner_id, mode, now)
    # A concurrent join of the same member makes the unique constraint refuse one of the two.
    repository.insert_membership(session, family_id, owner_id, FamilyRole.OWNER, now)
    return family_id


def invite(
    session: Session,
    family_id: int,
    acting_member_id: int,
    member_id: int,
    now: datetime,
    rules: FamilyRules,
) -> None:
    """The owner invites a member; the invitation takes a seat until declined or withdrawn."""
    found = active(session, family_id)
    domain.require_owner(found.owner_id, acting_member_id, "invite members")
    if member_id == found.owner_id:
        raise ValidationFailed("The owner cannot invite itself.", field="member_id")
    members.require_usable(session, member_id)
    _refuse_if_in_family(session, member_id)
    if repository.pending_invitation(session, family_id, member_id) is not None:
        raise Conflict(f"Member {member_id} already has a pending invitation to this family.")
    if not repository.take_seat(session, family_id, rules.max_members, now):
        _refuse_changed(session, family_id)
        raise FamilyFull(
            f"Family {family_id} already has {rules.max_members} members and invitations.",
            max_members=rules.max_members,
        )
    repository.insert_invitation(session, family_id, member_id, acting_member_id, now)


def accept(
    session: Session, family_id: int, acting_member_id: int, member_id: int, now: datetime
) -> None:
    """The invitee joins. Its other pending invitations are cancelled (their seats freed)."""
    domain.require_invitee(member_id, acting_member_id, "accept this invitation")
    active(session, family_id)
    _lock_usable(session, member_id)
    invitation = repository.pending_invitation(session, family_id, member_id)
    if invitation is None:
        raise InvitationNotPending(f"Member {member_id} has no pending invitation to this family.")
    _refuse_if_in_family(session, member_id)
    # The unique constraint on the member makes a concurrent second join fail here.
    repository.insert_membership(session, family_id, member_id, FamilyRole.MEMBER, now)
    if not repository.decide_invitation(session, invitation.id, InvitationStatus.ACCEPTED, now):
        raise InvitationNotPending("The invitation was withdrawn or the family dissolved.")
    cancel_invitations(session, member_id, now)


def cancel_invitations(session: Session, member_id: int, now: datetime) -> int:
    """Cancel the member's other pending invitations, freeing their seats."""
    others = repository.pending_invitations_of_member(session, member_id)
    repository.lock_families(session, [item.family_id for item in others])
    cancelled = 0
    for item in others:
        if repository.decide_invitation(session, item.id, InvitationStatus.CANCELLED, now):
            repository.free_seat(session, item.family_id, now)
            cancelled += 1
    return cancelled


def decline(
    session: Session, family_id: int, acting_member_id: int, member_id: int, now: datetime
) -> None:
    domain.require_invitee(member_id, acting_member_id, "decline this invitation")
    _close_invitation(session, family_id, member_id, InvitationStatus.DECLINED, now)


def withdraw(
    session: Session, family_id: int, acting_member_id: int, member_id: int, now: datetime
) -> None:
    found = get(session, family_id)
    domain.require_owner(found.owner_id, acting_member_id, "withdraw invitations")
    _close_invitation(session, family_id, member_id, InvitationStatus.WITHDRAWN, now)


def _close_invitation(
    session: Session, family_id: int, member_id: int, status: InvitationStatus, now: datetime
) -> None:
    active(session, family_id)
    invitation = repository.pending_invitation(session, family_id, member_id)
    if invitation is None:
        raise InvitationNotPending(f"Member {member_id} has no pending invitation to this family.")
    repository.lock_families(session, [family_id])
    if not repository.decide_invitation(session, invitation.id, status, now):
        raise InvitationNotPending("The invitation was answered or withdrawn meanwhile.")
    repository.free_seat(session, family_id, now)


def leave(
    session: Session, family_id: int, acting_member_id: int, member_id: int, now: datetime
) -> None:
    """A member leaves; its points stay its own (nothing moves)."""
    domain.require_self(member_id, acting_member_id, "leave the family")
    found = active(session, family_id)
    if member_id == found.owner_id:
        raise Conflict("The owner cannot leave the family; dissolve it instead.")
    _take_out(session, family_id, member_id, now)


def remove(
    session: Session, family_id: int, acting_member_id: int, member_id: int, now: datetime
) -> None:
    """The owner removes a member; its points stay its own."""
    found = active(session, family_id)
    domain.require_owner(found.owner_id, acting_member_id, "remove members")
    if member_id == found.owner_id:
        raise Conflict("The owner cannot remove itself; dissolve the family instead.")
    _take_out(session, family_id, member_id, now)


def _take_out(session: Session, family_id: int, member_id: int, now: datetime) -> None:
    if not repository.free_seat(session, family_id, now):
        _refuse_changed(session, family_id)
        raise ConcurrentChange("The family changed meanwhile; retry.")
    if not repository.delete_membership(session, family_id, member_id, now):
        raise NotFound(f"Member {member_id} is not in family {family_id}.")


def dissolve(session: Session, family_id: int, acting_member_id: int, now: datetime) -> None:
    """The owner ends the family: everyone keeps their own points, invitations are withdrawn."""
    found = active(session, family_id)
    domain.require_owner(found.owner_id, acting_member_id, "dissolve the family")
    if not repository.dissolve(session, family_id, now):
        raise FamilyDissolved(f"Family {family_id} was dissolved.")
    repository.withdraw_pending(session, family_id, now)
    repository.delete_memberships(session, family_id, now)


def change_settings(
    session: Session,
    family_id: int,
    acting_member_id: int,
    mode: FamilyMode | None,
    limits: dict[int, int | None],
    now: datetime,
) -> None:
    """The owner switches mode and/or sets members' monthly limits (``None``: the default)."""
    found = active(session, family_id)
    domain.require_owner(found.owner_id, acting_member_id, "change the family's settings")
    for value in limits.values():
        if value is not None:
            domain.check_limit(value)
    repository.lock_families(session, [family_id])
    if mode is not None and not repository.set_mode(session, family_id, mode, now):
        raise FamilyDissolved(f"Family {family_id} was dissolved.")
    for member_id, value in sorted(limits.items()):
        if member_id == found.owner_id:
            raise ValidationFailed("The owner has no monthly limit.", field="limits")
        if not repository.set_limit(session, family_id, member_id, value):
            raise NotFound(f"Member {member_id} is not in family {family_id}.")


def _refuse_changed(session: Session, family_id: int) -> None:
    """After a conditional update found nothing: a dissolved family says so."""
    session.expire_all()
    if get(session, family_id).status is not FamilyStatus.ACTIVE:
        raise FamilyDissolved(f"Family {family_id} was dissolved.")


def before_merge(session: Session, merged_id: int, now: datetime) -> None:
    """A member in a family cannot be merged into another (it must leave, or the family be
    dissolved, first); its pending invitations are cancelled."""
    current = repository.membership_of(session, merged_id)
    if current is not None:
        raise AlreadyInFamily(
            f"Member {merged_id} is in family {current.family_id}; it must leave it (or the "
            "owner dissolve it) before it can be merged.",
            family_id=current.family_id,
        )
    cancel_invitations(session, merged_id, now)


# --- The monthly allowance ----------------------------------------------------------------------


def pending_returns(session: Session, family_id: int, month: str) -> dict[int, int]:
    """Points of the month's reversed spends whose allowance has not been given back yet."""
    returns: dict[int, int] = defaultdict(int)
    for spend in repository.reversed_unreturned(session, family_id, month=month):
        returns[spend.member_id] += spend.points
    return dict(returns)


def give_back(session: Session, family_id: int, member_id: int, month: str, now: datetime) -> int:
    """Give back the allowance of the member's reversed spends of ``month`` (each once)."""
    returned = 0
    for spend in repository.reversed_unreturned(session, family_id, member_id, month):
        if repository.mark_returned(session, spend.entry_id, now):
            if not repository.uncount_spend(session, family_id, member_id, month, spend.points):
                raise ConcurrentChange("The family's monthly spend changed meanwhile; retry.")
            returned += spend.points
    return returned


def count_spend(
    session: Session,
    family_id: int,
    member_id: int,
    month: str,
    points: int,
    rules: FamilyRules,
    now: datetime,
) -> int:
    """Count a member's spend of the owner's points against its monthly limit, or refuse.

    Returns what is left of the limit afterwards.
    """
    give_back(session, family_id, member_id, month, now)
    if repository.count_spend(
        session, family_id, member_id, month, points, rules.default_monthly_limit
    ):
        row = repository.membership_of(session, member_id)
        limit = domain.effective_limit(
            row.monthly_limit if row else None, rules.default_monthly_limit
        )
        return domain.remaining(limit, repository.month_spent(session, family_id, month)[member_id])
    # Refused: say why, from what is committed now.
    session.expire_all()
    found = active(session, family_id)
    row = repository.membership_of(session, member_id)
    if row is None or row.family_id != family_id:
        raise NotFamilyMember(f"Member {member_id} is not in this family.", member_id=member_id)
    if found.mode is not FamilyMode.SHARE:
        raise NotFamilyOwner("In pool mode only the owner can spend the family's points.")
    limit = domain.effective_limit(row.monthly_limit, rules.default_monthly_limit)
    left = domain.remaining(
        limit, repository.month_spent(session, family_id, month).get(member_id, 0)
    )
    raise FamilyLimitExceeded(
        f"Member {member_id} may spend {left} more of the family's points in {month}.",
        monthly_limit=limit,
        remaining=left,
        month=month,
    )
