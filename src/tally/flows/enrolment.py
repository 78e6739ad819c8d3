"""Enrolment and merging: use cases that span members and the ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tally.errors import ConcurrentChange, Conflict, NotFound, ValidationFailed
from tally.families import service as families
from tally.ledger import repository as ledger_repository
from tally.ledger.domain import HoldStatus, Leg, Origin, member_available, member_held
from tally.ledger.models import EntryKind, Hold, Lot
from tally.ledger.posting import lock_members, post
from tally.members import repository as member_repository
from tally.members import service as members
from tally.members.domain import normalise_identity
from tally.members.models import MemberMerge, MemberStatus
from tally.privacy import service as privacy
from tally.privacy.domain import CollectionMethod
from tally.programme.domain import Programme
from tally.tiers import service as tiers


def enrol(
    session: Session,
    identity: members.Identity,
    profile: dict[str, Any],
    now: datetime,
    *,
    partner_id: int | None = None,
) -> tuple[int, bool]:
    """The member for ``identity``, created with an empty wallet if new: ``(id, created)``.

    A new member enrolled by ``partner_id`` is recorded as collected by it (the identity and
    the profile came from it); finding an existing member collects nothing.
    """
    member_id, created = members.find_or_create(session, identity, profile, now)
    if created:
        ledger_repository.create_wallet(session, member_id)
        if partner_id is not None:
            namespace, _external_id = normalise_identity(identity.namespace, identity.external_id)
            privacy.collected(
                session, member_id, partner_id, CollectionMethod.ENROL, namespace, now
            )
    return member_id, created


def link(
    session: Session, member_id: int, identity: members.Identity, partner_id: int, now: datetime
) -> None:
    """Attach ``identity`` to the member, recorded as collected by ``partner_id``."""
    members.link(session, member_id, identity, now)
    namespace, _external_id = normalise_identity(identity.namespace, identity.external_id)
    privacy.collected(session, member_id, partner_id, CollectionMethod.LINK, namespace, now)


def merge(
    session: Session,
    survivor_id: int,
    merged_id: int,
    staff_id: int,
    reason: str,
    now: datetime,
    programme: Programme,
) -> MemberMerge:
    """Fold ``merged_id`` into ``survivor_id``: identities, lots, holds, balance and growth value
    move, and the survivor is upgraded at once if its growth now qualifies. The partners' ties
    to the merged member — collection records, consents, open checkout windows — are written
    on the survivor too (:func:`tally.privacy.service.carry_over`), so a partner tied to the
    merged member is tied to the survivor, read from the survivor's rows alone.

    The move is one journal entry, and the merge record keeps what moved and which ties were
    added (``moved["ties"]``) so it can be undone (growth entries keep the member they were
    credited to, which is how an unmerge finds them).
    """
    if survivor_id == merged_id:
        raise ValidationFailed("A member cannot be merged into itself.")
    if not reason.strip():
        raise ValidationFailed("A merge needs a reason.", field="reason")
    # Both members locked in member-id order (one statement: two merges never deadlock) and
    # checked under the lock, which every writer of either member waits for.
    lock_members(session, [survivor_id, merged_id], {survivor_id: True, merged_id: True})
    if not member_repository.set_status(
        session,
        merged_id,
        expected=[MemberStatus.ACTIVE, MemberStatus.FROZEN],
        status=MemberStatus.MERGED,
        now=now,
        merged_into_id=survivor_id,
    ):
        raise ConcurrentChange(f"Member {merged_id} changed meanwhile; retry.")
    families.before_merge(session, merged_id, now)  # a member in a family is not merged
    ledger_repository.lock_wallet(session, merged_id)
    wallet = ledger_repository.wallet(session, merged_id)
    assert wallet is not None
    session.refresh(wallet)
    lot_ids = list(
        session.scalars(select(Lot.id).where(Lot.member_id == merged_id, Lot.remaining > 0))
    )
    hold_ids = [
        str(hold_id)
        for hold_id in session.scalars(
            select(Hold.id).where(Hold.member_id == merged_id, Hold.status == HoldStatus.ACTIVE)
        )
    ]
    identity_ids = [item.id for item in member_repository.identities(session, [merged_id])]
    entry_id = _move_value(
        session,
        EntryKind.MERGE,
        merged_id,
        survivor_id,
        wallet.available,
        wallet.held,
        staff_id,
        now,
    )
    _reassign(session, lot_ids, hold_ids, survivor_id)
    member_repository.move_identities(session, identity_ids, survivor_id)
    ties = privacy.carry_over(session, merged_id, survivor_id, staff_id, now)
    record = MemberMerge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        entry_id=entry_id,
        moved={"identities": identity_ids, "lots": lot_ids, "holds": hold_ids, "ties": ties},
        staff_id=staff_id,
        reason=reason.strip(),
        created_at=now,
    )
    member_repository.insert_merge(session, record)
    tiers.merge(session, survivor_id, merged_id, now, programme)
    return record


def unmerge(
    session: Session,
    merge_id: int,
    staff_id: int,
    now: datetime,
    programme: Programme,
) -> MemberMerge:
    """Undo a merge: the merged member gets back its identities, what is left of its value and
    the growth entries credited to it (the survivor's tier moves down only at evaluation), and
    the ties the merge wrote on the survivor are removed (the merged member kept its own)."""
    record = member_repository.merge_record(session, merge_id)
    if record is None:
        raise NotFound(f"Merge {merge_id} does not exist.")
    if record.reversed_at is not None:
        raise Conflict("This merge was already reversed.")
    if not member_repository.set_status(
        session,
        record.merged_id,
        expected=[MemberStatus.MERGED],
        status=MemberStatus.ACTIVE,
        now=now,
        merged_into_id=None,
    ):
        raise Conflict("The merged member is no longer merged.")
    lock_members(session, [record.survivor_id, record.merged_id])  # member-id order
    lot_ids = [int(lot_id) for lot_id in record.moved.get("lots", [])]
    live_lots = list(
        session.scalars(
            select(Lot).where(
                Lot.id.in_(lot_ids), Lot.member_id == record.survivor_id, Lot.remaining > 0
            )
        )
    )
    hold_ids = [str(hold_id) for hold_id in record.moved.get("holds", [])]
    holds = [
        hold
        for hold in session.scalars(select(Hold).where(Hold.member_id == record.survivor_id))
        if str(hold.id) in hold_ids and hold.status is HoldStatus.ACTIVE
    ]
    available = sum(lot.remaining for lot in live_lots)
    held = sum(hold.points for hold in holds)
    entry_id = _move_value(
        session,
        EntryKind.UNMERGE,
        record.survivor_id,
        record.merged_id,
        available,
        held,
        staff_id,
        now,
    )
    _reassign(
        session, [lot.id for lot in live_lots], [str(hold.id) for hold in holds], record.merged_id
    )
    identity_ids = [int(item) for item in record.moved.get("identities", [])]
    still_with_survivor = [
        item.id
        for item in member_repository.identities(session, [record.survivor_id])
        if item.id in identity_ids
    ]
    member_repository.move_identities(session, still_with_survivor, record.merged_id)
    privacy.take_back(session, record.survivor_id, record.moved.get("ties", {}))
    record.reversed_at = now
    record.reversal_entry_id = entry_id
    session.flush()
    tiers.unmerge(session, record.survivor_id, record.merged_id, now, programme)
    return record


def _move_value(
    session: Session,
    kind: EntryKind,
    source: int,
    target: int,
    available: int,
    held: int,
    staff_id: int,
    now: datetime,
) -> uuid.UUID | None:
    """Move a member's whole balance to another in one entry (none when there is nothing)."""
    legs = []
    if available:
        legs += [
            Leg(member_available(source), -available),
            Leg(member_available(target), available),
        ]
    if held:
        legs += [Leg(member_held(source), -held), Leg(member_held(target), held)]
    if not legs:
        return None
    return post(
        session,
        kind=kind,
        legs=legs,
        origin=Origin(staff_id=staff_id),
        member_id=target,
        now=now,
        details={"from_member_id": source, "to_member_id": target},
    )


def _reassign(session: Session, lot_ids: list[int], hold_ids: list[str], member_id: int) -> None:
    if lot_ids:
        session.execute(update(Lot).where(Lot.id.in_(lot_ids)).values(member_id=member_id))
    for hold_id in hold_ids:
        session.execute(
            update(Hold).where(Hold.id == uuid.UUID(hold_id)).values(member_id=member_id)
        )
