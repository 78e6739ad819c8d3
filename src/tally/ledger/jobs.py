"""Scheduled ledger jobs: expire due lots and lapse timed-out holds. Idempotent, batch-wise.

Each job has a preview (:func:`preview_expiry`, :func:`preview_lapses`) that reads what the job
would take, in one read transaction, and writes nothing: what ``--dry-run`` prints.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import HoldNotActive
from tally.job_failures.service import Failure, isolating
from tally.job_failures.service import record as record_failures
from tally.ledger import repository
from tally.ledger.domain import SYSTEM_EXPIRED, Leg, Origin, Policy, member_available
from tally.ledger.models import EntryKind
from tally.ledger.posting import post
from tally.ledger.releases import lapse_hold

UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    members: int
    lots: int
    points: int
    holds_lapsed: int
    # Rows the job could not process (passed over, recorded in job_failures): members whose
    # lots did not expire, then holds that did not lapse.
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True, slots=True)
class LapseReport:
    lapsed: int
    failures: tuple[Failure, ...] = ()


def expire(
    unit_of_work: UnitOfWork, as_of: datetime, policy: Policy, batch: int = 2000
) -> ExpiryReport:
    """Expire every lot due by ``as_of``, then lapse every hold timed out by then; a member or
    hold that cannot be processed is passed over (recorded, reported) and the rest go on."""
    members, lots, points, failed = expire_lots(unit_of_work, as_of, batch)
    lapses = lapse_holds(unit_of_work, as_of, policy, batch)
    return ExpiryReport(members, lots, points, lapses.lapsed, (*failed, *lapses.failures))


def expire_lots(
    unit_of_work: UnitOfWork, as_of: datetime, batch: int = 2000
) -> tuple[int, int, int, tuple[Failure, ...]]:
    """Expire every lot due by ``as_of``: ``(members, lots, points)`` expired, and the members
    whose lots could not be (recorded in job_failures; the next run tries them again).

    Each batch of members is one transaction (a failing batch is split until its failing
    members stand alone); a lot is only ever expired once (its ``remaining`` is taken to zero
    by a conditional update), so re-running, or running concurrently, is harmless.
    """
    members = lots = points = 0
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            skip = [int(failure.row_id) for failure in failed]
            due_members = repository.members_with_due_lots(session, as_of, batch, skip=skip)
        if not due_members:
            record_failures(unit_of_work, "expiry", failed)
            return members, lots, points, tuple(failed)
        done, failures = isolating(
            unit_of_work,
            due_members,
            lambda session, part: _expire_members(session, part, as_of),
            "member",
        )
        for expired_members, expired_lots, expired_points in done:
            members += expired_members
            lots += expired_lots
            points += expired_points
        failed.extend(failures)


def _expire_members(
    session: Session, member_ids: Sequence[int], as_of: datetime
) -> tuple[int, int, int]:
    members = lots = points = 0
    for member_id in member_ids:
        repository.lock_wallet(session, member_id)
        member_lots = repository.due_lots_of(session, member_id, as_of)
        if member_lots:
            members += 1
            lots += len(member_lots)
            points += _expire_member(session, member_id, member_lots, as_of)
    return members, lots, points


def lapse_holds(
    unit_of_work: UnitOfWork, as_of: datetime, policy: Policy, batch: int = 2000
) -> LapseReport:
    """Lapse every hold timed out by ``as_of`` (its points go back): how many lapsed, and the
    holds that could not be (recorded in job_failures; the next run tries them again).

    A hold is closed by a conditional update, so a hold captured, voided or lapsed meanwhile
    is skipped; re-running, or running concurrently, is harmless.
    """
    lapsed = 0
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            skip = [uuid.UUID(failure.row_id) for failure in failed]
            hold_ids = repository.lapsed_hold_ids(session, as_of, batch, skip=skip)
        if not hold_ids:
            record_failures(unit_of_work, "lapses", failed)
            return LapseReport(lapsed, tuple(failed))
        done, failures = isolating(
            unit_of_work,
            hold_ids,
            lambda session, part: _lapse(session, part, as_of, policy),
            "hold",
        )
        lapsed += sum(done)
        failed.extend(failures)


def _lapse(session: Session, hold_ids: Sequence[uuid.UUID], as_of: datetime, policy: Policy) -> int:
    lapsed = 0
    for hold_id in hold_ids:
        try:
            with savepoint(session):
                lapse_hold(session, hold_id, as_of, policy)
            lapsed += 1
        except HoldNotActive:
            continue
    return lapsed


@dataclass(frozen=True, slots=True)
class DueLots:
    """One member's lots a dry run found due."""

    member_id: int
    lots: int
    points: int


@dataclass(frozen=True, slots=True)
class DueHold:
    """A timed-out hold a dry run found."""

    hold_id: uuid.UUID
    member_id: int
    points: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LapsePreview:
    """What :func:`lapse_holds` would do at ``as_of``: holds, their points, the first few."""

    holds: int
    points: int
    sample: tuple[DueHold, ...]


@dataclass(frozen=True, slots=True)
class ExpiryPreview:
    """What :func:`expire` would do at ``as_of``, read without writing."""

    members: int
    lots: int
    points: int
    sample: tuple[DueLots, ...]
    lapses: LapsePreview


def preview_lapses(session: Session, as_of: datetime, sample: int = 5) -> LapsePreview:
    """The holds :func:`lapse_holds` would lapse at ``as_of`` (reads only)."""
    holds, points = repository.lapsed_holds_totals(session, as_of)
    found = repository.lapsed_holds_sample(session, as_of, sample)
    return LapsePreview(
        holds,
        points,
        tuple(DueHold(hold.id, hold.member_id, hold.points, hold.expires_at) for hold in found),
    )


def preview_expiry(session: Session, as_of: datetime, sample: int = 5) -> ExpiryPreview:
    """The lots and holds :func:`expire` would expire and lapse at ``as_of`` (reads only)."""
    members, lots, points = repository.due_lots_totals(session, as_of)
    first = repository.due_lots_sample(session, as_of, sample)
    return ExpiryPreview(
        members,
        lots,
        points,
        tuple(DueLots(*row) for row in first),
        preview_lapses(session, as_of, sample),
    )


def expire_member(session: Session, member_id: int, as_of: datetime) -> int:
    """Expire one member's lots due by ``as_of`` in the caller's transaction (the demo replays
    a member's history in order); returns the points expired."""
    repository.lock_wallet(session, member_id)
    member_lots = repository.due_lots_of(session, member_id, as_of)
    return _expire_member(session, member_id, member_lots, as_of) if member_lots else 0


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
