"""Pure rules of family accounts: modes, roles, months, who may do what, how a pool is drawn.

No I/O here: the service reads and writes, these functions decide.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tally.errors import (
    NotFamilyMember,
    NotFamilyOwner,
    NotInvitee,
    NotMemberItself,
    ValidationFailed,
)
from tally.kit.clock import as_utc


class FamilyMode(enum.StrEnum):
    """``pool``: the owner may spend the members' points; ``share``: members may spend the
    owner's points, each within a monthly limit."""

    POOL = "pool"
    SHARE = "share"


class FamilyStatus(enum.StrEnum):
    ACTIVE = "active"
    DISSOLVED = "dissolved"


class FamilyRole(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"


def month_of(at: datetime, zone: ZoneInfo) -> str:
    """The calendar month (``YYYY-MM``) of instant ``at`` in the programme's zone."""
    local = as_utc(at).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def effective_limit(own_limit: int | None, default_limit: int) -> int:
    """A member's monthly limit: the one the owner set, else the programme's default."""
    return default_limit if own_limit is None else own_limit


def remaining(limit: int, spent: int) -> int:
    """What is left of a monthly limit (never negative: a lowered limit may be below spent)."""
    return max(limit - spent, 0)


def plan_pool_draw(
    spendable: Sequence[tuple[int, int]], points: int
) -> list[tuple[int, int]] | None:
    """Draw ``points`` from ``[(member_id, spendable)]`` in the order given (owner first, then
    members in the order they joined).

    Returns ``[(member_id, drawn)]`` (only members drawn on) or ``None`` when the family holds
    too few points.
    """
    if points <= 0:
        raise ValueError("points must be positive")
    plan: list[tuple[int, int]] = []
    needed = points
    for member_id, available in spendable:
        if needed == 0:
            break
        taken = min(max(available, 0), needed)
        if taken > 0:
            plan.append((member_id, taken))
            needed -= taken
    return plan if needed == 0 else None


@dataclass(frozen=True, slots=True)
class Seat:
    """What the rules need to know of someone in a family."""

    member_id: int
    role: FamilyRole


def require_owner(owner_id: int, acting_member_id: int, action: str) -> None:
    """Only the owner may invite, withdraw, remove, change settings or dissolve
    (``not_family_owner``)."""
    if acting_member_id != owner_id:
        raise NotFamilyOwner(
            f"Only the family's owner can {action}.", acting_member_id=acting_member_id
        )


def require_invitee(member_id: int, acting_member_id: int, action: str) -> None:
    """Only the member invited may accept or decline the invitation (``not_invitee``)."""
    if acting_member_id != member_id:
        raise NotInvitee(
            f"Only member {member_id}, who was invited, can {action}.",
            acting_member_id=acting_member_id,
        )


def require_self(member_id: int, acting_member_id: int, action: str) -> None:
    """Only the member concerned may leave (``not_member_itself``)."""
    if acting_member_id != member_id:
        raise NotMemberItself(
            f"Only member {member_id} can {action}.", acting_member_id=acting_member_id
        )


def check_limit(value: int) -> None:
    """A monthly limit is a whole number of points from 0 to 10⁹."""
    if not 0 <= value <= 1_000_000_000:
        raise ValidationFailed(
            "monthly_limit must be a whole number from 0 to 1000000000.", field="monthly_limit"
        )


def spend_source(
    mode: FamilyMode, owner_id: int, spender_id: int, is_member: bool
) -> tuple[bool, bool]:
    """Who a family spend draws on: ``(draws_on_members, counts_against_limit)``.

    - the owner, in pool mode: the owner's points first, then the members'; no limit;
    - the owner, in share mode: the owner's own points; no limit;
    - a member, in share mode: the owner's points, within the member's monthly limit;
    - a member, in pool mode, or anyone not in the family: refused.
    """
    if spender_id == owner_id:
        return mode is FamilyMode.POOL, False
    if not is_member:
        raise NotFamilyMember(f"Member {spender_id} is not in this family.", member_id=spender_id)
    if mode is FamilyMode.POOL:
        raise NotFamilyOwner("In pool mode only the owner can spend the family's points.")
    return False, True
