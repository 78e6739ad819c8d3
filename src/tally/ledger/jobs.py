"""Scheduled ledger jobs: expire due lots and lapse timed-out holds. Idempotent, batch-wise.

Both are set-based: a batch of members (or holds) is one transaction of a constant number of
statements, however many rows it holds. The batch's wallets are locked in one statement (member
order), its due lots (or its holds and what they took from lots) are read in one more under
that lock, every entry is added to one :class:`~tally.ledger.posting.Journal` (the hash chains
are built in memory) and written together with its postings, account deltas, chain links,
``entry.posted`` events and wallets; the lot changes and their allocations, the closed holds,
new lots and ``hold.lapsed`` events take one statement each. A lot is taken to zero, and a hold
closed, only by a conditional update under the wallet lock, so re-running, or running
concurrently, is harmless. A batch that fails is split until its failing rows stand alone,
which are passed over and recorded in job_failures.

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

from tally.job_failures.service import Failure, isolating
from tally.job_failures.service import record as record_failures
from tally.ledger import repository
from tally.ledger.domain import SYSTEM_EXPIRED, Leg, Origin, member_available
from tally.ledger.models import EntryKind
from tally.ledger.posting import Draft, Journal
from tally.ledger.releases import lapse

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


def expire(unit_of_work: UnitOfWork, as_of: datetime, batch: int = 2000) -> ExpiryReport:
    """Expire every lot due by ``as_of``, then lapse every hold timed out by then; a member or
    hold that cannot be processed is passed over (recorded, reported) and the rest go on."""
    members, lots, points, failed = expire_lots(unit_of_work, as_of, batch)
    lapses = lapse_holds(unit_of_work, as_of, batch)
    return ExpiryReport(members, lots, points, lapses.lapsed, (*failed, *lapses.failures))


def expire_lots(
    unit_of_work: UnitOfWork, as_of: datetime, batch: int = 2000
) -> tuple[int, int, int, tuple[Failure, ...]]:
    """Expire every lot due by ``as_of``: ``(members, lots, points)`` expired, and the members
    whose lots could not be (recorded in job_failures; the next run tries them again).

    Members are taken in member order, ``batch`` at a time (keyset pagination), each batch in
    one transaction.
    """
    members = lots = points = 0
    failed: list[Failure] = []
    after = 0
    while True:
        with unit_of_work() as session:
            due_members = repository.members_with_due_lots(session, as_of, batch, after=after)
        if not due_members:
            record_failures(unit_of_work, "expiry", failed)
            return members, lots, points, tuple(failed)
        done, failures = isolating(
            unit_of_work,
            due_members,
            lambda session, part: _expire(session, part, as_of),
            "member",
        )
        for expired_members, expired_lots, expired_points in done:
            members += expired_members
            lots += expired_lots
            points += expired_points
        failed.extend(failures)
        after = due_members[-1]


def _expire(session: Session, member_ids: Sequence[int], as_of: datetime) -> tuple[int, int, int]:
    """Expire the members' lots due by ``as_of`` in the caller's transaction, one ``expire``
    entry per member: ``(members, lots, points)`` expired."""
    wallets, _statuses = repository.lock_wallets(session, member_ids)
    due = repository.due_lots(session, member_ids, as_of)
    journal = Journal(wallets)
    changes: list[tuple[uuid.UUID, int, int]] = []
    points = 0
    for member_id, member_lots in due.items():
        total = sum(remaining for _lot, remaining in member_lots)
        entry_id = journal.add(
            Draft(
                kind=EntryKind.EXPIRE,
                legs=[Leg(member_available(member_id), -total), Leg(SYSTEM_EXPIRED, total)],
                origin=Origin(),
                member_id=member_id,
                now=as_of,
                details={"lots": len(member_lots)},
            )
        )
        changes.extend((entry_id, lot_id, -remaining) for lot_id, remaining in member_lots)
        points += total
    journal.write(session)
    if not repository.change_lots(session, changes):
        raise RuntimeError("a lot changed while its member's wallet was locked")
    return len(due), len(changes), points


def lapse_holds(unit_of_work: UnitOfWork, as_of: datetime, batch: int = 2000) -> LapseReport:
    """Lapse every hold timed out by ``as_of`` (its points go back): how many lapsed, and the
    holds that could not be (recorded in job_failures; the next run tries them again).

    Holds are taken soonest timeout first, ``batch`` at a time, each batch in one transaction
    (:func:`tally.ledger.releases.lapse`); a hold captured, voided or lapsed meanwhile is
    passed over.
    """
    lapsed = 0
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            skip = [uuid.UUID(failure.row_id) for failure in failed]
            due = repository.lapsed_holds(session, as_of, batch, skip=skip)
        if not due:
            record_failures(unit_of_work, "lapses", failed)
            return LapseReport(lapsed, tuple(failed))
        done, failures = isolating(
            unit_of_work,
            due,
            lambda session, part: lapse(session, part, as_of),
            "hold",
            lambda row: row[0],
        )
        lapsed += sum(done)
        failed.extend(failures)


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
    return _expire(session, [member_id], as_of)[2]
