"""Reversals of earns, redemptions and captures. Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.errors import (
    AlreadyReversed,
    NotFound,
    NotReversible,
    PointsChanged,
)
from tally.ledger import repository
from tally.ledger.domain import (
    Leg,
    Origin,
    Policy,
    member_available,
    member_of,
    partner_issued,
    partner_redeemed,
)
from tally.ledger.models import EntryKind
from tally.ledger.posting import (
    Posted,
    current_member,
    post,
    restore,
    still_consumed,
    with_clawback,
)
from tally.members import repository as member_repository


def reverse(
    session: Session, origin: Origin, entry_id: uuid.UUID, now: datetime, policy: Policy
) -> Posted:
    """Undo an earn (claw back what is left, reporting any shortfall), a redemption or a capture.

    A redemption or capture gives every point back to the lots it came from (see ``restore``).
    """
    original = repository.entry(session, entry_id)
    if original is None or (
        origin.partner_id is not None and original.partner_id != origin.partner_id
    ):
        raise NotFound(f"Transaction {entry_id} does not exist.")
    if repository.entry_reversal(session, entry_id) is not None:
        raise AlreadyReversed(f"Transaction {entry_id} was already reversed.")
    if original.member_id is None:
        raise NotReversible("This transaction cannot be reversed.")
    member_id = _lock_owner(session, original.member_id)
    partner_id = original.partner_id or 0
    if original.kind is EntryKind.EARN:
        return _reverse_earn(session, origin, original.id, member_id, partner_id, now)
    if original.kind in (EntryKind.REDEEM, EntryKind.CAPTURE):
        consumed = still_consumed(
            session, _consuming_entries(session, original.id, original.kind, original.details)
        )
        points = sum(taken for _lot, _expiry, taken in consumed)
        if points == 0:
            raise NotReversible("Nothing of this transaction is left to return.")
        owners = _owners(session, original.id, member_id, consumed)
        details: dict[str, Any] = {"reversed_kind": original.kind.value, "returned": points}
        if len(owners) > 1:
            details["returned_to"] = [
                {"member_id": owner, "points": sum(taken for _lot, taken in portions)}
                for owner, portions in owners.items()
            ]
        new_id = post(
            session,
            kind=EntryKind.REVERSAL,
            legs=[
                Leg(partner_redeemed(partner_id), -points),
                *(
                    Leg(member_available(owner), sum(taken for _lot, taken in portions))
                    for owner, portions in owners.items()
                ),
            ],
            origin=origin,
            member_id=member_id,
            now=now,
            reverses_id=original.id,
            details=details,
        )
        clawed = sum(
            restore(session, new_id, owner, portions, now, policy)
            for owner, portions in owners.items()
        )
        result = {key: value for key, value in details.items() if key != "reversed_kind"}
        return Posted(new_id, member_id, with_clawback(result, clawed))
    raise NotReversible(f"A {original.kind.value} transaction cannot be reversed.")


def take_back(
    session: Session,
    origin: Origin,
    earn_id: uuid.UUID,
    points: int,
    now: datetime,
    *,
    reference: str | None = None,
    source_key: str | None = None,
    details: dict[str, Any] | None = None,
) -> Posted:
    """Take ``points`` back of an earn (part of its money was refunded): clawed from what is
    left of the lots it created, the rest reported as a shortfall (spent already). Recorded even
    when nothing is left to claw (a zero entry), so the shortfall reaches settlement."""
    original = repository.entry(session, earn_id)
    if original is None or original.kind is not EntryKind.EARN or original.member_id is None:
        raise NotFound(f"Transaction {earn_id} is not an earn.")
    if repository.entry_reversal(session, earn_id) is not None:
        raise AlreadyReversed(f"Transaction {earn_id} was already reversed.")
    member_id = _lock_owner(session, original.member_id)
    plan: list[tuple[int, int]] = []
    wanted = points
    for lot in repository.lots_created_by(session, earn_id):
        if wanted and lot.remaining > 0:
            plan.append((lot.id, min(wanted, lot.remaining)))
            wanted -= plan[-1][1]
    clawed = points - wanted
    result = {"takes_back": str(earn_id), "clawed_back": clawed, "shortfall": wanted}
    entry_id = post(
        session,
        kind=EntryKind.CLAWBACK,
        legs=[
            Leg(member_available(member_id), -clawed),
            Leg(partner_issued(original.partner_id or 0), clawed),
        ],
        origin=origin,
        member_id=member_id,
        now=now,
        reference=reference,
        source_key=source_key,
        details={**(details or {}), **result},
        record_only=clawed == 0,
    )
    if plan and not repository.change_lots(
        session, [(entry_id, lot_id, -taken) for lot_id, taken in plan]
    ):
        raise PointsChanged("The earned points changed during the take-back; retry.")
    return Posted(entry_id, member_id, result)


def _lock_owner(session: Session, member_id: int) -> int:
    """Lock the wallet of the member that now holds ``member_id``'s value (followed through
    merges) and return it, before anything of the original entry's lots is read: a spend (or a
    merge) waits for the reversal from then on. Followed again under the lock, as a merge may
    have moved the value before the lock was had."""
    owner = current_member(session, member_id)
    while True:
        repository.lock_wallets(session, [owner])
        moved_to = member_repository.merged_into_id(session, owner)
        if moved_to is None:
            return owner
        owner = current_member(session, moved_to)


def _owners(
    session: Session,
    entry_id: uuid.UUID,
    member_id: int,
    consumed: list[tuple[int, datetime, int]],
) -> dict[int, list[tuple[int, int]]]:
    """Whom each returned portion goes back to: ``{member_id: [(lot_id, points)]}``.

    An entry drawn on one wallet gives everything back to that wallet's member (followed
    through merges). One drawn on several (a family spend) gives each member back its own
    lots' points, each member followed through merges.
    """
    drawn_on = {
        account[0]
        for leg in repository.legs_of(session, [entry_id])[entry_id]
        if leg.amount < 0 and (account := member_of(leg.account)) is not None
    }
    if len(drawn_on) <= 1:
        return {member_id: [(lot_id, taken) for lot_id, _expiry, taken in consumed]}
    owners: dict[int, list[tuple[int, int]]] = {}
    for lot_id, _expiry, taken in consumed:
        lot = repository.lot(session, lot_id)
        owner = current_member(session, lot.member_id) if lot is not None else member_id
        owners.setdefault(owner, []).append((lot_id, taken))
    return dict(sorted(owners.items()))


def _consuming_entries(
    session: Session, entry_id: uuid.UUID, kind: EntryKind, details: dict[str, Any] | None
) -> list[uuid.UUID]:
    if kind is EntryKind.REDEEM:
        return [entry_id]
    held = repository.hold(session, uuid.UUID(str((details or {})["hold_id"])))
    assert held is not None
    return [held.entry_id, entry_id]


def _reverse_earn(
    session: Session,
    origin: Origin,
    entry_id: uuid.UUID,
    member_id: int,
    partner_id: int,
    now: datetime,
) -> Posted:
    lots = repository.lots_created_by(session, entry_id)
    earned = sum(lot.points for lot in lots)
    plan = [(lot.id, lot.remaining) for lot in lots if lot.remaining > 0]
    clawed = sum(points for _lot, points in plan)
    details = {"reversed_kind": "earn", "clawed_back": clawed, "shortfall": earned - clawed}
    # Even when nothing is left to claw back, the reversal is recorded (a zero entry), so the
    # shortfall reaches settlement and the earn cannot be reversed twice.
    reversal_id = post(
        session,
        kind=EntryKind.REVERSAL,
        legs=[
            Leg(member_available(member_id), -clawed),
            Leg(partner_issued(partner_id), clawed),
        ],
        origin=origin,
        member_id=member_id,
        now=now,
        reverses_id=entry_id,
        details=details,
        record_only=clawed == 0,
    )
    for lot_id, points in plan:
        if not repository.change_lot(session, reversal_id, lot_id, -points):
            raise PointsChanged("The earned points changed during the reversal; retry.")
    return Posted(reversal_id, member_id, {"clawed_back": clawed, "shortfall": earned - clawed})
