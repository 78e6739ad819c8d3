"""Scheduled ledger jobs: expire due lots and lapse timed-out holds. Idempotent, batch-wise."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import HoldNotActive
from tally.ledger import repository
from tally.ledger.domain import SYSTEM_EXPIRED, Leg, Origin, Policy, member_available
from tally.ledger.holds import release_hold
from tally.ledger.models import EntryKind
from tally.ledger.posting import post

UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    members: int
    lots: int
    points: int
    holds_lapsed: int


def expire(
    unit_of_work: UnitOfWork, as_of: datetime, policy: Policy, batch: int = 2000
) -> ExpiryReport:
    """Expire every lot due by ``as_of`` and lapse every hold timed out by then.

    Each batch is one transaction; a lot is only ever expired once (its ``remaining`` is taken
    to zero by a conditional update), so re-running, or running concurrently, is harmless.
    """
    members = lots = points = lapsed = 0
    while True:
        with unit_of_work() as session:
            due_members = repository.members_with_due_lots(session, as_of, batch)
            for member_id in due_members:
                repository.lock_wallet(session, member_id)
                member_lots = repository.due_lots_of(session, member_id, as_of)
                if member_lots:
                    members += 1
                    lots += len(member_lots)
                    points += _expire_member(session, member_id, member_lots, as_of)
        if not due_members:
            break
    while True:
        with unit_of_work() as session:
            hold_ids = repository.lapsed_hold_ids(session, as_of, batch)
            for hold_id in hold_ids:
                try:
                    with savepoint(session):
                        release_hold(session, Origin(), hold_id, as_of, policy, lapse=True)
                    lapsed += 1
                except HoldNotActive:
                    continue
        if not hold_ids:
            break
    return ExpiryReport(members=members, lots=lots, points=points, holds_lapsed=lapsed)


def _expire_member(
    session: Session, member_id: int, member_lots: list[tuple[int, int]], as_of: datetime
) -> int:
    total = sum(remaining for _lot, remaining in member_lots)
    entry_id = post(
        session,
        kind=EntryKind.EXPIRE,
        legs=[Leg(member_available(member_id), -total), Leg(SYSTEM_EXPIRED, total)],
        origin=Origin(),
        member_id=member_id,
        now=as_of,
        details={"lots": len(member_lots)},
    )
    for lot_id, remaining in member_lots:
        if not repository.change_lot(session, entry_id, lot_id, -remaining):
            raise RuntimeError(f"lot {lot_id} changed while its member's wallet was locked")
    return total
