"""Every query of family accounts. Seats, invitations and monthly spend change only by
conditional updates whose row count is checked.

Lock order, kept by every use case so two never deadlock: a member row, then ``families``
rows (in id order), then invitations, then memberships; spends lock memberships (pool) or
their month row (share), then wallets.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, insert, select, text, update
from sqlalchemy.orm import Session

from tally.families.domain import FamilyMode, FamilyRole, FamilyStatus, InvitationStatus
from tally.families.models import (
    Family,
    FamilyInvitation,
    FamilyMembership,
    FamilyMonthSpend,
    FamilySpend,
)
from tally.ledger.models import JournalEntry, Lot
from tally.members.models import Member, MemberStatus
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType

# ``ON CONFLICT DO NOTHING`` runs on SQLite (3.24+) and PostgreSQL alike: two first spends of a
# month racing each other both find the row afterwards.
_ENSURE_MONTH = text(
    "INSERT INTO family_month_spends (family_id, member_id, month, spent)"
    " VALUES (:f, :m, :month, 0) ON CONFLICT DO NOTHING"
)
# The limit, the membership, the family's mode and status are all checked by the one
# statement that counts the spend: nothing is read and then decided on.
_COUNT_SPEND = text(
    "UPDATE family_month_spends SET spent = spent + :n"
    " WHERE family_id = :f AND member_id = :m AND month = :month"
    " AND spent + :n <= ("
    "   SELECT COALESCE(fm.monthly_limit, :default_limit) FROM family_memberships fm"
    "   WHERE fm.family_id = :f AND fm.member_id = :m AND fm.role = 'member')"
    " AND EXISTS (SELECT 1 FROM families f WHERE f.id = :f AND f.status = 'active'"
    "   AND f.mode = 'share')"
)


def lock_member(session: Session, member_id: int) -> MemberStatus | None:
    """Lock a member's row for the transaction (a merge racing a join waits or is waited for);
    its status, or ``None`` when there is no such member."""
    return session.scalar(select(Member.status).where(Member.id == member_id).with_for_update())


def lock_families(session: Session, family_ids: Sequence[int]) -> None:
    """Lock family rows in id order."""
    for family_id in sorted(set(family_ids)):
        session.execute(select(Family.id).where(Family.id == family_id).with_for_update())


def insert_family(session: Session, owner_id: int, mode: FamilyMode, now: datetime) -> int:
    result = session.execute(
        insert(Family)
        .values(
            owner_id=owner_id,
            mode=mode,
            status=FamilyStatus.ACTIVE,
            seats=1,
            created_at=now,
            updated_at=now,
        )
        .returning(Family.id)
    )
    return int(result.scalar_one())


def family(session: Session, family_id: int) -> Family | None:
    return session.scalar(select(Family).where(Family.id == family_id))


def take_seat(session: Session, family_id: int, max_members: int, now: datetime) -> bool:
    """One more seat (an invitation) unless the family is full or dissolved."""
    result = session.execute(
        update(Family)
        .where(
            Family.id == family_id,
            Family.status == FamilyStatus.ACTIVE,
            Family.seats + 1 <= max_members,
        )
        .values(seats=Family.seats + 1, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def free_seat(session: Session, family_id: int, now: datetime) -> bool:
    """One seat fewer (a declined or withdrawn invitation, a member gone)."""
    result = session.execute(
        update(Family)
        .where(Family.id == family_id, Family.status == FamilyStatus.ACTIVE, Family.seats > 0)
        .values(seats=Family.seats - 1, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def set_mode(session: Session, family_id: int, mode: FamilyMode, now: datetime) -> bool:
    result = session.execute(
        update(Family)
        .where(Family.id == family_id, Family.status == FamilyStatus.ACTIVE)
        .values(mode=mode, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def dissolve(session: Session, family_id: int, now: datetime) -> bool:
    result = session.execute(
        update(Family)
        .where(Family.id == family_id, Family.status == FamilyStatus.ACTIVE)
        .values(status=FamilyStatus.DISSOLVED, seats=0, dissolved_at=now, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def insert_membership(
    session: Session, family_id: int, member_id: int, role: FamilyRole, now: datetime
) -> None:
    """Put a member in a family; a member already in one makes the unique constraint refuse."""
    session.execute(
        insert(FamilyMembership).values(
            family_id=family_id, member_id=member_id, role=role, monthly_limit=None, joined_at=now
        )
    )
    _family_changed(session, family_id, [member_id], "joined", now, role=role.value)


def _family_changed(
    session: Session,
    family_id: int,
    member_ids: Sequence[int],
    change: str,
    now: datetime,
    *,
    role: str | None = None,
) -> None:
    """A ``family.changed`` event per member whose family changed."""
    outbox.emit(
        session,
        [
            Event(
                type=EventType.FAMILY_CHANGED,
                data={
                    "family_id": family_id,
                    "member_id": member_id,
                    "change": change,
                    "role": role,
                    "changed_at": now.isoformat(),
                },
                occurred_at=now,
                member_id=member_id,
            )
            for member_id in member_ids
        ],
        now,
    )


def membership_of(session: Session, member_id: int) -> FamilyMembership | None:
    return session.scalar(select(FamilyMembership).where(FamilyMembership.member_id == member_id))


def memberships(
    session: Session, family_id: int, *, for_update: bool = False
) -> list[FamilyMembership]:
    """A family's members, in the order they joined (the owner first)."""
    query = (
        select(FamilyMembership)
        .where(FamilyMembership.family_id == family_id)
        .order_by(FamilyMembership.id)
    )
    if for_update:
        query = query.with_for_update()
    return list(session.scalars(query))


def delete_membership(session: Session, family_id: int, member_id: int, now: datetime) -> bool:
    """Take a (non-owner) member out of a family."""
    result = session.execute(
        delete(FamilyMembership).where(
            FamilyMembership.family_id == family_id,
            FamilyMembership.member_id == member_id,
            FamilyMembership.role == FamilyRole.MEMBER,
        )
    )
    gone = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    if gone:
        _family_changed(session, family_id, [member_id], "left", now)
    return gone


def delete_memberships(session: Session, family_id: int, now: datetime) -> int:
    members = list(
        session.scalars(
            select(FamilyMembership.member_id).where(FamilyMembership.family_id == family_id)
        )
    )
    result = session.execute(
        delete(FamilyMembership).where(FamilyMembership.family_id == family_id)
    )
    _family_changed(session, family_id, sorted(members), "dissolved", now)
    return int(result.rowcount)  # type: ignore[attr-defined]


def set_limit(session: Session, family_id: int, member_id: int, limit: int | None) -> bool:
    result = session.execute(
        update(FamilyMembership)
        .where(
            FamilyMembership.family_id == family_id,
            FamilyMembership.member_id == member_id,
            FamilyMembership.role == FamilyRole.MEMBER,
        )
        .values(monthly_limit=limit)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def insert_invitation(
    session: Session, family_id: int, member_id: int, invited_by: int, now: datetime
) -> int:
    """A pending invitation; a second pending one for the same member makes the index refuse."""
    result = session.execute(
        insert(FamilyInvitation)
        .values(
            family_id=family_id,
            member_id=member_id,
            invited_by=invited_by,
            status=InvitationStatus.PENDING,
            created_at=now,
        )
        .returning(FamilyInvitation.id)
    )
    return int(result.scalar_one())


def pending_invitation(session: Session, family_id: int, member_id: int) -> FamilyInvitation | None:
    return session.scalar(
        select(FamilyInvitation).where(
            FamilyInvitation.family_id == family_id,
            FamilyInvitation.member_id == member_id,
            FamilyInvitation.status == InvitationStatus.PENDING,
        )
    )


def pending_invitations_of_member(session: Session, member_id: int) -> list[FamilyInvitation]:
    return list(
        session.scalars(
            select(FamilyInvitation)
            .where(
                FamilyInvitation.member_id == member_id,
                FamilyInvitation.status == InvitationStatus.PENDING,
            )
            .order_by(FamilyInvitation.family_id)
        )
    )


def pending_invitations(session: Session, family_id: int) -> list[FamilyInvitation]:
    return list(
        session.scalars(
            select(FamilyInvitation)
            .where(
                FamilyInvitation.family_id == family_id,
                FamilyInvitation.status == InvitationStatus.PENDING,
            )
            .order_by(FamilyInvitation.id)
        )
    )


def decide_invitation(
    session: Session, invitation_id: int, status: InvitationStatus, now: datetime
) -> bool:
    """Move a pending invitation to ``status``; accepting also needs the family still active."""
    conditions = [
        FamilyInvitation.id == invitation_id,
        FamilyInvitation.status == InvitationStatus.PENDING,
    ]
    if status is InvitationStatus.ACCEPTED:
        conditions.append(
            exists().where(
                Family.id == FamilyInvitation.family_id, Family.status == FamilyStatus.ACTIVE
            )
        )
    result = session.execute(
        update(FamilyInvitation).where(*conditions).values(status=status, decided_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def withdraw_pending(session: Session, family_id: int, now: datetime) -> int:
    """Every pending invitation of a (dissolving) family is withdrawn."""
    result = session.execute(
        update(FamilyInvitation)
        .where(
            FamilyInvitation.family_id == family_id,
            FamilyInvitation.status == InvitationStatus.PENDING,
        )
        .values(status=InvitationStatus.WITHDRAWN, decided_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_spend(
    session: Session,
    family_id: int,
    member_id: int,
    month: str,
    points: int,
    default_limit: int,
) -> bool:
    """Add ``points`` to the member's month unless that would pass the limit (see above)."""
    params = {"f": family_id, "m": member_id, "month": month}
    session.execute(_ENSURE_MONTH, params)
    result = session.execute(_COUNT_SPEND, {**params, "n": points, "default_limit": default_limit})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def uncount_spend(
    session: Session, family_id: int, member_id: int, month: str, points: int
) -> bool:
    result = session.execute(
        update(FamilyMonthSpend)
        .where(
            FamilyMonthSpend.family_id == family_id,
            FamilyMonthSpend.member_id == member_id,
            FamilyMonthSpend.month == month,
            FamilyMonthSpend.spent >= points,
        )
        .values(spent=FamilyMonthSpend.spent - points)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def month_spent(session: Session, family_id: int, month: str) -> dict[int, int]:
    """What each member has spent this month (counted, before pending returns)."""
    rows = session.execute(
        select(FamilyMonthSpend.member_id, FamilyMonthSpend.spent).where(
            FamilyMonthSpend.family_id == family_id, FamilyMonthSpend.month == month
        )
    )
    return {int(member_id): int(spent) for member_id, spent in rows}


def insert_spend(
    session: Session,
    *,
    entry_id: uuid.UUID,
    family_id: int,
    member_id: int,
    month: str,
    points: int,
    counted: bool,
    now: datetime,
) -> None:
    session.execute(
        insert(FamilySpend).values(
            entry_id=entry_id,
            family_id=family_id,
            member_id=member_id,
            month=month,
            points=points,
            counted=counted,
            created_at=now,
        )
    )


def reversed_unreturned(
    session: Session, family_id: int, member_id: int | None = None, month: str | None = None
) -> list[FamilySpend]:
    """Counted spends that have been reversed but whose allowance is not back yet."""
    query = select(FamilySpend).where(
        FamilySpend.family_id == family_id,
        FamilySpend.counted.is_(True),
        FamilySpend.returned_at.is_(None),
        exists().where(JournalEntry.reverses_id == FamilySpend.entry_id),
    )
    if member_id is not None:
        query = query.where(FamilySpend.member_id == member_id)
    if month is not None:
        query = query.where(FamilySpend.month == month)
    return list(session.scalars(query.order_by(FamilySpend.entry_id)))


def mark_returned(session: Session, entry_id: uuid.UUID, now: datetime) -> bool:
    """Claim a reversed spend's allowance for giving back (once, however many race)."""
    result = session.execute(
        update(FamilySpend)
        .where(FamilySpend.entry_id == entry_id, FamilySpend.returned_at.is_(None))
        .values(returned_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def spendable(session: Session, member_ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Unexpired points each member can spend (what their live lots hold)."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(Lot.member_id, func.sum(Lot.remaining))
        .where(
            and_(Lot.member_id.in_(member_ids), Lot.remaining > 0, Lot.expires_at > now),
        )
        .group_by(Lot.member_id)
    )
    found = {int(member_id): int(total) for member_id, total in rows}
    return {member_id: found.get(member_id, 0) for member_id in member_ids}


def statuses(session: Session, member_ids: Sequence[int]) -> dict[int, MemberStatus]:
    rows = session.execute(select(Member.id, Member.status).where(Member.id.in_(member_ids)))
    return {int(member_id): status for member_id, status in rows}
