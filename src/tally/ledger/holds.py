"""Holds: reserve points, then capture all or part, void, or let them lapse. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import (
    ConcurrentChange,
    HoldNotActive,
    NotFound,
    ValidationFailed,
)
from tally.kit.ids import uuid7
from tally.ledger import repository
from tally.ledger.domain import (
    Leg,
    Origin,
    Policy,
    member_available,
    member_held,
    partner_redeemed,
    plan_release,
)
from tally.ledger.models import EntryKind, Hold, HoldStatus
from tally.ledger.posting import (
    Posted,
    check_points,
    consume,
    lock_members,
    post,
    require_partner,
    restore,
    source_key,
    still_consumed,
    with_clawback,
)
from tally.members import service as members
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType


def create_hold(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    expires_in_seconds: int,
    now: datetime,
    policy: Policy,
    max_seconds: int,
) -> tuple[Hold, Posted]:
    """Reserve points until captured, voided or lapsed."""
    partner_id = require_partner(origin)
    check_points(points, policy)
    if not 1 <= expires_in_seconds <= max_seconds:
        raise ValidationFailed(
            f"expires_in_seconds must be from 1 to {max_seconds}.", field="expires_in_seconds"
        )
    lock_members(session, [member_id], {member_id: False})  # checked under the wallet's lock
    lapse_due(session, [member_id], now, policy)
    entry_id = post(
        session,
        kind=EntryKind.HOLD,
        legs=[Leg(member_available(member_id), -points), Leg(member_held(member_id), points)],
        origin=origin,
        member_id=member_id,
        now=now,
        reference=reference,
        source_key=source_key(EntryKind.HOLD, origin, reference),
    )
    consume(session, entry_id, member_id, points, now)
    hold_id = uuid7()
    repository.insert_hold(
        session,
        {
            "id": hold_id,
            "member_id": member_id,
            "partner_id": partner_id,
            "points": points,
            "captured_points": 0,
            "status": HoldStatus.ACTIVE,
            "reference": reference,
            "expires_at": now + timedelta(seconds=expires_in_seconds),
            "created_at": now,
            "entry_id": entry_id,
        },
    )
    created = repository.hold(session, hold_id)
    assert created is not None
    return created, Posted(entry_id, member_id, {"points": points, "hold_id": str(hold_id)})


def _own_hold(session: Session, origin: Origin, hold_id: uuid.UUID) -> Hold:
    found = repository.hold(session, hold_id)
    if found is None or (origin.partner_id is not None and found.partner_id != origin.partner_id):
        raise NotFound(f"Hold {hold_id} does not exist.")
    return found


def _lock_holder(session: Session, found: Hold, *, spending: bool) -> None:
    """Lock the wallet of the hold's member before the hold changes, then read the hold again
    under that lock: a merge (which locks both wallets) may have moved it to the survivor
    meanwhile. A capture spends, so the member's status is checked under the lock too."""
    member_id = found.member_id
    _wallets, statuses = repository.lock_wallets(session, [member_id])
    session.refresh(found)
    if found.member_id != member_id:
        raise ConcurrentChange(f"Hold {found.id} moved to another member meanwhile; retry.")
    if spending:
        members.check_usable(member_id, statuses.get(member_id))


def capture_hold(
    session: Session,
    origin: Origin,
    hold_id: uuid.UUID,
    points: int | None,
    now: datetime,
    policy: Policy,
) -> tuple[Hold, Posted]:
    """Spend all or part of a hold; the rest goes back to the member."""
    found = _own_hold(session, origin, hold_id)
    captured = found.points if points is None else points
    if not 1 <= captured <= found.points:
        raise ValidationFailed(f"points must be from 1 to the held {found.points}.", field="points")
    _lock_holder(session, found, spending=True)
    entry_id = uuid7()
    if not repository.close_hold(
        session,
        hold_id,
        status=HoldStatus.CAPTURED,
        captured=captured,
        closed_entry_id=entry_id,
        now=now,
    ):
        raise HoldNotActive(f"Hold {hold_id} is not active.")
    rest = found.points - captured
    legs = [
        Leg(member_held(found.member_id), -found.points),
        Leg(partner_redeemed(found.partner_id or 0), captured),
    ]
    if rest:
        legs.append(Leg(member_available(found.member_id), rest))
    post(
        session,
        kind=EntryKind.CAPTURE,
        legs=legs,
        origin=origin,
        member_id=found.member_id,
        now=now,
        entry_id=entry_id,
        reference=found.reference,
        details={"hold_id": str(hold_id), "captured": captured, "released": rest},
    )
    clawed = 0
    if rest:
        portions = plan_release(still_consumed(session, [found.entry_id]), rest)
        clawed = restore(session, entry_id, found.member_id, portions, now, policy)
    session.refresh(found)
    outcome = with_clawback({"captured": captured, "released": rest}, clawed)
    return found, Posted(entry_id, found.member_id, outcome)


def release_hold(
    session: Session,
    origin: Origin,
    hold_id: uuid.UUID,
    now: datetime,
    policy: Policy,
    *,
    lapse: bool = False,
) -> tuple[Hold, Posted]:
    """Void a hold (or, for the lapse job, let it lapse): every held point goes back.

    A hold whose timeout has passed has lapsed already, so it cannot be voided; its lapse gives
    every point back to the lot it came from, with that lot's expiry (see :func:`lapse_returns`).
    """
    found = _own_hold(session, origin, hold_id)
    _lock_holder(session, found, spending=False)
    entry_id = uuid7()
    status = HoldStatus.LAPSED if lapse else HoldStatus.VOIDED
    if not repository.close_hold(
        session,
        hold_id,
        status=status,
        captured=0,
        closed_entry_id=entry_id,
        now=None if lapse else now,
    ):
        raise HoldNotActive(f"Hold {hold_id} is not active.")
    post(
        session,
        kind=EntryKind.LAPSE if lapse else EntryKind.VOID,
        legs=[
            Leg(member_held(found.member_id), -found.points),
            Leg(member_available(found.member_id), found.points),
        ],
        # A lapse is the hold's partner's transaction (in its history), made by the job.
        origin=Origin(partner_id=found.partner_id) if lapse else origin,
        member_id=found.member_id,
        now=now,
        entry_id=entry_id,
        reference=found.reference,
        details={"hold_id": str(hold_id), "released": found.points},
    )
    if lapse:
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
    clawed = restore(session, entry_id, found.member_id, portions, now, policy, keep_expiry=lapse)
    session.refresh(found)
    outcome = with_clawback({"released": found.points}, clawed)
    return found, Posted(entry_id, found.member_id, outcome)


def effective_status(found: Hold, now: datetime) -> HoldStatus:
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
                release_hold(session, Origin(), hold_id, now, policy, lapse=True)
            lapsed += 1
        except HoldNotActive:
            continue
    return lapsed
