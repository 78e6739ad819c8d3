"""Holds that lapse at their timeout: what every reader sees from that moment, and the lapse
recorded (by the job, or by the next write that moves the member's points). Voids are orders
(:mod:`tally.ledger.orders`). Never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import ConcurrentChange, NotFound, PointsChanged
from tally.ledger import repository
from tally.ledger.domain import (
    HeldRow,
    HoldPortion,
    HoldState,
    HoldStatus,
    Leg,
    Origin,
    member_available,
    member_held,
    partner_issued,
    plan_release,
)
from tally.ledger.models import EntryKind, Hold
from tally.ledger.posting import Draft, Journal
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType


def lapse(session: Session, due: Sequence[tuple[uuid.UUID, int]], now: datetime) -> int:
    """Record the lapse of the holds ``due`` (``(hold_id, member_id)``) past their timeout, in
    a constant number of statements: every held point goes back to the lot it came from, with
    that lot's expiry (see :func:`lapse_returns`), as the hold's partner's transaction made by
    the job. Returns how many lapsed; a hold closed meanwhile is passed over.

    The members' wallets are locked first (member order, one statement), then the holds and
    what they took from lots are read under that lock; a hold that a merge moved to another
    member meanwhile refuses the whole call (``ConcurrentChange``).
    """
    if not due:
        return 0
    wallets, _statuses = repository.lock_wallets(session, [member_id for _hold, member_id in due])
    found = repository.holds(session, [hold_id for hold_id, _member in due])
    lapsing: list[HeldRow] = []
    for hold_id, member_id in due:
        row = found.get(hold_id)
        if row is None:
            raise NotFound(f"Hold {hold_id} does not exist.")
        if row.hold.member_id != member_id:
            raise ConcurrentChange(f"Hold {hold_id} moved to another member meanwhile; retry.")
        if row.hold.status is HoldStatus.ACTIVE:
            lapsing.append(row)
    portions = repository.hold_portions(session, [row.entry_id for row in lapsing])
    plan = _LapsePlan(Journal(wallets), now)
    for row in lapsing:
        plan.add(row.hold, portions[row.entry_id])
    plan.journal.write(session)
    if repository.lapse_holds(session, plan.closed) != len(plan.closed):
        raise ConcurrentChange("A hold was closed meanwhile; retry.")
    if not repository.change_lots(session, plan.changes):
        raise PointsChanged("The released points changed meanwhile; retry.")
    repository.insert_lots(session, plan.lots, now)
    outbox.emit(session, plan.events, now)
    return len(plan.closed)


class _LapsePlan:
    """The writes of a batch of lapses, worked out in memory against the lots as read (each
    lot's ``remaining`` moves as the batch's lapses give points back to it)."""

    def __init__(self, journal: Journal, now: datetime) -> None:
        self.journal = journal
        self.now = now
        self.closed: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.changes: list[tuple[uuid.UUID, int, int]] = []
        self.lots: list[tuple[int, uuid.UUID, int, datetime]] = []
        self.events: list[Event] = []
        self._remaining: dict[int, int] = {}

    def add(self, hold: HoldState, portions: list[HoldPortion]) -> None:
        """Lapse ``hold``: its entry, its lot changes (or new lots where a lot cannot take its
        points back), the clawback of reversed earns' points, its ``hold.lapsed`` event."""
        member_id = hold.member_id
        entry_id = self.journal.add(
            Draft(
                kind=EntryKind.LAPSE,
                legs=[
                    Leg(member_held(member_id), -hold.points),
                    Leg(member_available(member_id), hold.points),
                ],
                origin=Origin(partner_id=hold.partner_id),
                member_id=member_id,
                now=self.now,
                reference=hold.reference,
                details={"hold_id": str(hold.id), "released": hold.points},
            )
        )
        self.closed.append((hold.id, entry_id))
        self.events.append(_lapsed_event(hold, entry_id))
        by_lot = {portion.lot_id: portion for portion in portions}
        consumed = [(item.lot_id, item.expires_at, item.taken) for item in portions]
        kept: dict[datetime, int] = defaultdict(int)
        clawed: dict[int, tuple[list[str], list[tuple[int, int]]]] = {}
        for lot_id, points in plan_release(consumed, hold.points):
            lot = by_lot[lot_id]
            if lot.reversed_earn is not None and self._give_back(entry_id, lot, points):
                # Released into the lot (so what the lapse gave back is on record), then clawed.
                partner_id, earn_id = lot.reversed_earn
                earns, taken = clawed.setdefault(partner_id, ([], []))
                earns.append(str(earn_id))
                taken.append((lot_id, points))
            elif not (lot.lot_member_id == member_id and self._give_back(entry_id, lot, points)):
                kept[lot.expires_at] += points
        self.lots.extend(
            (member_id, entry_id, points, expires_at) for expires_at, points in sorted(kept.items())
        )
        for partner_id, (earns, taken) in sorted(clawed.items()):
            points = sum(part for _lot, part in taken)
            claw_id = self.journal.add(
                Draft(
                    kind=EntryKind.REVERSAL,
                    legs=[
                        Leg(member_available(member_id), -points),
                        Leg(partner_issued(partner_id), points),
                    ],
                    origin=Origin(),
                    member_id=member_id,
                    now=self.now,
                    details={"late_clawback_of": sorted(set(earns)), "clawed_back": points},
                )
            )
            for lot_id, part in taken:
                self._remaining[lot_id] -= part
                self.changes.append((claw_id, lot_id, -part))

    def _give_back(self, entry_id: uuid.UUID, lot: HoldPortion, points: int) -> bool:
        """Return ``points`` to ``lot`` if it can take them (never above its size)."""
        remaining = self._remaining.get(lot.lot_id, lot.lot_remaining)
        if remaining + points > lot.lot_points:
            return False
        self._remaining[lot.lot_id] = remaining + points
        self.changes.append((entry_id, lot.lot_id, points))
        return True


def _lapsed_event(hold: HoldState, entry_id: uuid.UUID) -> Event:
    return Event(
        type=EventType.HOLD_LAPSED,
        data={
            "hold_id": str(hold.id),
            "member_id": hold.member_id,
            "points": hold.points,
            "partner_id": hold.partner_id,
            "reference": hold.reference,
            "entry_id": str(entry_id),
            "expired_at": hold.expires_at.isoformat(),
        },
        occurred_at=hold.expires_at,
        member_id=hold.member_id,
        partner_id=hold.partner_id,
    )


def effective_status(found: Hold | HoldState, now: datetime) -> HoldStatus:
    """A hold's status as every reader sees it: an active hold past its timeout has lapsed,
    whether or not the lapse job has recorded it yet."""
    if found.status is HoldStatus.ACTIVE and found.expires_at <= now:
        return HoldStatus.LAPSED
    return found.status


@dataclass(frozen=True, slots=True)
class LapseReturns:
    """What a member's timed-out holds give back once their lapse is recorded: ``held`` points
    leave the held balance, ``lots`` are ``(expires_at, points)`` that come back to the lots
    they were taken from (points of a reversed earn are clawed back instead, so not counted)."""

    held: int
    lots: list[tuple[datetime, int]]


def lapse_returns(session: Session, member_id: int, now: datetime) -> LapseReturns:
    """The effect of the member's holds timed out by ``now`` that the job has not lapsed yet."""
    held = 0
    lots: list[tuple[datetime, int]] = []
    for points, portions in repository.timed_out_holds(session, member_id, now):
        held += points
        lots.extend(
            (expires_at, taken) for expires_at, taken, is_clawed in portions if not is_clawed
        )
    return LapseReturns(held, lots)


def lapse_due(session: Session, member_ids: Sequence[int], now: datetime) -> int:
    """Record the lapse of the members' holds timed out by ``now`` (what the job would do), so a
    write about to move their points sees what every reader sees; returns how many lapsed.

    Each lapse is conditional on the hold being active, so the job running meanwhile is harmless.
    """
    due = repository.timed_out_hold_ids(session, member_ids, now)
    return lapse(session, [(hold_id, member_id) for member_id, hold_id in due], now)
