"""Read-only queries the pages need and the domain services do not (yet) offer.

Kept here so the web layer never edits another domain; each is a candidate to move into its
domain's repository.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.ledger.models import EntryKind, JournalEntry, LotAllocation
from tally.members import repository as member_repository
from tally.members import service as members
from tally.members.domain import PHONE_NAMESPACE, normalise_identity
from tally.members.models import MemberMerge
from tally.partners.models import Partner
from tally.staff.models import StaffUser


def search_members(session: Session, text: str, limit: int = 20) -> list[int]:
    """Members matching ``text`` by Tally id, any identity, phone or name.

    A phone number typed with spaces, dashes or ``+86`` also matches its normalised form.
    """
    text = text.strip()
    found = member_repository.search(session, text, limit)
    _namespace, phone = normalise_identity(PHONE_NAMESPACE, text)
    if phone and phone != text:
        found += member_repository.search(session, phone, limit)
    return list(dict.fromkeys(found))[:limit]


def partner_names(session: Session, partner_ids: Iterable[int | None]) -> dict[int, str]:
    """``{partner_id: name}`` for the given partners."""
    wanted = {item for item in partner_ids if item is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(wanted)))
    return {int(row[0]): str(row[1]) for row in rows}


def staff_names(session: Session, staff_ids: Iterable[int | None]) -> dict[int, str]:
    """``{staff_id: display name}`` for the given staff members."""
    wanted = {item for item in staff_ids if item is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(wanted))
    )
    return {int(row[0]): str(row[1]) for row in rows}


def expired_points_by_lot(session: Session, lot_ids: Iterable[int]) -> dict[int, int]:
    """Points the expiry job took from each lot (lots never expired are absent)."""
    wanted = list(set(lot_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(LotAllocation.lot_id, func.sum(-LotAllocation.points))
        .join(JournalEntry, JournalEntry.id == LotAllocation.entry_id)
        .where(LotAllocation.lot_id.in_(wanted), JournalEntry.kind == EntryKind.EXPIRE)
        .group_by(LotAllocation.lot_id)
    )
    return {int(row[0]): int(row[1] or 0) for row in rows}


def merges_of(session: Session, member_id: int) -> list[MemberMerge]:
    """Merges in which the member survived or was merged, newest first."""
    return member_repository.merges_of(session, member_id)


def member_names(session: Session, member_ids: Iterable[int]) -> dict[int, str]:
    """``{member_id: name}`` of the given members that have a name in their profile."""
    names = {}
    for member_id in sorted(set(member_ids)):
        name = members.view(session, member_id).profile.get("name")
        if name:
            names[member_id] = str(name)
    return names
