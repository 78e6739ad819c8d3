"""Holds that lapse at their timeout: what every reader sees from that moment, and the lapse
recorded (by the job, or by the next write that moves the member's points). Voids are orders
(:mod:`tally.ledger.orders`). Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import (
    ConcurrentChange,
    HoldNotActive,
    NotFound,
)
from tally.kit.ids import uuid7
from tally.ledger import repository
from tally.ledger.domain import (
    HoldState,
    HoldStatus,
    Leg,
    Origin,
    Policy,
    member_available,
    member_held,
    plan_release,
)
from tally.ledger.models import EntryKind, Hold
from tally.ledger.posting import (
    Posted,
    post,
    restore,
    still_consumed,
    with_clawback,
)
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType


def lapse_hold(
    session: Session, hold_id: uuid.UUID, now: datetime, policy: Policy
) -> tuple[Hold, Posted]:
    """Record the lapse of a hold past its timeout: every held point goes back to the lot it
    came from, with that lot's expiry (see :func:`lapse_returns`), as the hold's partner's
    transaction made by the job. ``hold_not_active`` when it was closed meanwhile."""
    found = repository.hold(session, hold_id)
    if found is None:
        raise NotFound(f"Hold {hold_id} does not exist.")
    # Lock the member's wallet, then read the hold again under that lock: a merge (which locks
    # both wallets) may have moved it to the survivor meanwhile.
    member_id = found.member_id
    repository.lock_wallets(session, [member_id])
    session.refresh(found)
    if found.member_id != member_id:
        raise ConcurrentChange(f"Hold {found.id} moved to another member meanwhile; retry.")
    entry_id = uuid7()
    if not repository.close_hold(
        session,
        hold_id,
        status=HoldStatus.LAPSED,
        captured=0,
        closed_entry_id=entry_id,
        now=None,
    ):
        raise HoldNotActive(f"Hold {hold_id} is not active.")
    post(
        session,
        kind=EntryKind.LAPSE,
        legs=[
            Leg(member_held(found.member_id), -found.points),
            Leg(member_available(found.member_id), found.points),
        ],
        origin=Origin(partner_id=found.partner_id),
        member_id=found.member_id,
        now=now,
        entry_id=entry_id,
        reference=found.reference,
        details={"hold_id": str(hold_id), "released": found.points},
    )
    outbox.emit(
        session,
        [
            Event(
                type=EventType.HOLD_LAPSED,
                data={
                    "hold_id": str(hold_id),
                    "member_id": found.member_id,
                    "points": found.points,
                    "partner_id": found.partner_id,
                    "reference": found.reference,
                    "entry_id": str(entry_id),
                    "expired_at": found.expires_at.isoformat(),
                },
                occurred_at=found.expires_at,
                member_id=found.member_id,
                partner_id=found.partner_id,
            )
        ],
        now,
    )
    portions = plan_release(still_consumed(session, [found.entry_id]), found.points)
    clawed = restore(session, entry_id, found.member_id, portions, now, policy, keep_expiry=True)
    session.refresh(found)
    outcome = with_clawback({"released": found.points}, clawed)
    return found, Posted(entry_id, found.member_id, outcome)


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


def lapse_due(session: Session, member_ids: Sequence[int], now: datetime, policy: Policy) -> int:
    """Record the lapse of the members' holds timed out by ``now`` (what the job would do), so a
    write about to move their points sees what every reader sees; returns how many lapsed.

    Each lapse is conditional on the hold being active, so the job running meanwhile is harmless.
    """
    lapsed = 0
    for _member_id, hold_id in repository.timed_out_hold_ids(session, member_ids, now):
        try:
            with savepoint(session):
                lapse_hold(session, hold_id, now, policy)
            lapsed += 1
        except HoldNotActive:
            continue
    return lapsed
