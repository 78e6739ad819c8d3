"""Spending a family's points: one ledger redemption over the wallets drawn on, counted against
the spender's monthly limit in share mode, in the one transaction. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import InsufficientPoints
from tally.families import domain as family_domain
from tally.families import repository as family_repository
from tally.families import service as families
from tally.families.domain import FamilyRole
from tally.ledger import repository as ledger_repository
from tally.ledger.domain import Leg, Origin, Policy, member_available, partner_redeemed
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.posting import (
    check_points,
    consume,
    lock_members,
    post,
    require_partner,
    source_key,
)
from tally.ledger.releases import lapse_due
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.programme.domain import Programme


@dataclass(frozen=True, slots=True)
class Spent:
    """A family spend: its journal entry and what it drew from whom."""

    entry_id: uuid.UUID
    family_id: int
    spent_by: int
    points: int
    drawn: list[tuple[int, int]]
    month: str
    remaining_this_month: int | None


def spend(
    session: Session,
    origin: Origin,
    family_id: int,
    spender_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
    programme: Programme,
) -> Spent:
    """Spend ``points`` of the family's with the calling partner, on ``spender_id``'s behalf.

    Pool mode, the owner spending: the owner's points first, then each member's in the order
    they joined. Share mode, a member spending: the owner's points, within the member's
    monthly limit. Lots are consumed earliest-expiring first; nothing is overdrawn.
    """
    partner_id = require_partner(origin)
    check_points(points, policy)
    found = families.active(session, family_id)
    members.require_usable(session, spender_id)  # early, to say why; checked again under lock
    membership = family_repository.membership_of(session, spender_id)
    is_member = membership is not None and membership.family_id == family_id
    draws_on_members, counted = family_domain.spend_source(
        found.mode, found.owner_id, spender_id, is_member
    )
    # The wallets it may draw on see a hold past its timeout as lapsed, as every reader does.
    drawable = (
        [row.member_id for row in family_repository.memberships(session, family_id)]
        if draws_on_members
        else [found.owner_id]
    )
    # Every wallet it may draw on and the spender's, locked in one statement (member-id
    # order); the spender (and, when the owner's points are counted against a limit, the
    # owner) checked under that lock, as the pool plan reads the members' statuses under it.
    require = {spender_id: False} | ({found.owner_id: False} if counted else {})
    lock_members(session, sorted({spender_id, *drawable}), require)
    lapse_due(session, drawable, now)
    month = family_domain.month_of(now, programme.zone)
    remaining: int | None = None
    if counted:
        remaining = families.count_spend(
            session, family_id, spender_id, month, points, programme.family, now
        )
        plan = [(found.owner_id, points)]
    elif draws_on_members:
        plan = _pool_plan(session, family_id, found.owner_id, points, now)
    else:
        plan = [(found.owner_id, points)]
    entry_id = post(
        session,
        kind=EntryKind.REDEEM,
        legs=[
            *(Leg(member_available(member_id), -taken) for member_id, taken in plan),
            Leg(partner_redeemed(partner_id), points),
        ],
        origin=origin,
        member_id=found.owner_id,
        now=now,
        reference=reference,
        source_key=source_key(EntryKind.REDEEM, origin, reference),
        details={
            "family_id": family_id,
            "owner_id": found.owner_id,
            "spent_by": spender_id,
            "mode": found.mode.value,
            "month": month,
            "drawn": [{"member_id": member_id, "points": taken} for member_id, taken in plan],
        },
    )
    for member_id, taken in plan:
        consume(session, entry_id, member_id, taken, now)
    family_repository.insert_spend(
        session,
        entry_id=entry_id,
        family_id=family_id,
        member_id=spender_id,
        month=month,
        points=points,
        counted=counted,
        now=now,
    )
    return Spent(entry_id, family_id, spender_id, points, plan, month, remaining)


@dataclass(frozen=True, slots=True)
class SpendNote:
    """What a history says of a family spend, in the history of every member it drew on: the
    family's points (``mode`` pool or share, held by ``owner_id``) spent by ``spent_by`` with
    ``partner_id``; ``points`` is the whole spend (each member's part is its own change)."""

    family_id: int
    mode: str
    owner_id: int
    spent_by: int
    partner_id: int | None
    points: int


def spend_note(entry: JournalEntry) -> SpendNote | None:
    """The family spend ``entry`` is, or ``None`` for any other entry.

    Entries written before ``owner_id`` was recorded name the owner as the entry's member.
    """
    details = entry.details or {}
    if entry.kind is not EntryKind.REDEEM or "family_id" not in details:
        return None
    drawn = details.get("drawn") or []
    return SpendNote(
        family_id=int(details["family_id"]),
        mode=str(details.get("mode", "")),
        owner_id=int(details.get("owner_id", entry.member_id or 0)),
        spent_by=int(details["spent_by"]),
        partner_id=entry.partner_id,
        points=sum(int(item["points"]) for item in drawn),
    )


def notes_of(session: Session, entries: Sequence[JournalEntry]) -> dict[uuid.UUID, SpendNote]:
    """The family spend each of ``entries`` is or, for a reversal, reverses (by entry id;
    entries that are neither are left out)."""
    found: dict[uuid.UUID, SpendNote] = {}
    for entry in entries:
        note = spend_note(entry)
        if note is None and entry.kind is EntryKind.REVERSAL and entry.reverses_id is not None:
            original = ledger_repository.entry(session, entry.reverses_id)
            note = spend_note(original) if original is not None else None
        if note is not None:
            found[entry.id] = note
    return found


def _pool_plan(
    session: Session, family_id: int, owner_id: int, points: int, now: datetime
) -> list[tuple[int, int]]:
    """Who gives how much: the owner first, then members in join order (frozen ones skipped).

    The memberships stay locked to the end of the transaction, so no one leaves mid-spend.
    """
    rows = family_repository.memberships(session, family_id, for_update=True)
    order = [row.member_id for row in rows if row.role is FamilyRole.OWNER] + [
        row.member_id for row in rows if row.role is FamilyRole.MEMBER
    ]
    statuses = family_repository.statuses(session, order)
    usable = [member_id for member_id in order if statuses.get(member_id) is MemberStatus.ACTIVE]
    spendable = family_repository.spendable(session, usable, now)
    plan = family_domain.plan_pool_draw([(m, spendable[m]) for m in usable], points)
    if plan is None:
        raise InsufficientPoints(
            f"Family {family_id} does not have enough points.",
            available=sum(spendable.values()),
        )
    return plan
