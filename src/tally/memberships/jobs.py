"""Scheduled membership job: expire ended periods, abandon unpaid subscriptions. Idempotent.

:func:`preview` reads what the job would take and writes nothing (``--dry-run``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session

from tally.job_failures.service import Failure, isolating
from tally.job_failures.service import record as record_failures
from tally.memberships import repository
from tally.memberships.domain import EventKind, MembershipStatus

UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class MembershipReport:
    expired: int
    abandoned: int
    # Memberships the run could not close (passed over, recorded in job_failures).
    failures: tuple[Failure, ...] = ()


def expire(unit_of_work: UnitOfWork, as_of: datetime, batch: int = 500) -> MembershipReport:
    """Expire every membership whose period ended by ``as_of`` (a period ``[start, end)`` is over
    at ``end`` exactly) and abandon pending ones unpaid for a day.

    Each batch is one transaction (a failing batch is split until the memberships it cannot
    close stand alone, which are passed over and recorded); each change is a conditional
    update, and its event is written only by the run that made it, so re-running, or running
    concurrently, is harmless.
    """
    counts = {MembershipStatus.EXPIRED: 0, MembershipStatus.ABANDONED: 0}
    failed: list[Failure] = []
    for status, find, kind in (
        (MembershipStatus.EXPIRED, repository.due_to_expire, EventKind.EXPIRED),
        (MembershipStatus.ABANDONED, repository.due_to_abandon, EventKind.ABANDONED),
    ):
        while True:
            with unit_of_work() as session:
                skip = [uuid.UUID(failure.row_id) for failure in failed]
                ids = find(session, as_of, batch, skip=skip)
            if not ids:
                break
            done, failures = isolating(
                unit_of_work,
                ids,
                partial(_close, status=status, kind=kind, as_of=as_of),
                "membership",
            )
            counts[status] += sum(done)
            failed.extend(failures)
    record_failures(unit_of_work, "memberships", failed)
    return MembershipReport(
        expired=counts[MembershipStatus.EXPIRED],
        abandoned=counts[MembershipStatus.ABANDONED],
        failures=tuple(failed),
    )


def _close(
    session: Session,
    ids: Sequence[uuid.UUID],
    status: MembershipStatus,
    kind: EventKind,
    as_of: datetime,
) -> int:
    """Close the due memberships of ``ids`` in the caller's transaction; how many it closed."""
    closed = 0
    if True:
        if True:
            if True:
                for membership_id in ids:
                    if not repository.close_if_due(session, membership_id, status, as_of):
                        continue  # another run (or a payment) got there first
                    row = repository.membership(session, membership_id)
                    assert row is not None
                    repository.insert_event(
                        session,
                        {
                            "membership_id": membership_id,
                            "kind": kind,
                            "status_before": (
                                MembershipStatus.ACTIVE
                                if status is MembershipStatus.EXPIRED
                                else MembershipStatus.PENDING
                            ).value,
                            "status_after": status.value,
                            "period_end_before": row.current_period_end,
                            "period_end_after": row.current_period_end,
                            "details": {"cancelled": True} if row.cancel_at_period_end else None,
                            "created_at": as_of,
                        },
                    )
                    closed += 1
    return closed


@dataclass(frozen=True, slots=True)
class MembershipPreview:
    """What :func:`expire` would do at ``as_of``: counts and the first few of each."""

    expired: int
    abandoned: int
    expired_sample: tuple[uuid.UUID, ...]
    abandoned_sample: tuple[uuid.UUID, ...]


def preview(session: Session, as_of: datetime, sample: int = 5) -> MembershipPreview:
    """The memberships :func:`expire` would expire and abandon at ``as_of`` (reads only)."""
    expired, abandoned = repository.due_counts(session, as_of)
    return MembershipPreview(
        expired,
        abandoned,
        tuple(repository.due_to_expire(session, as_of, sample)),
        tuple(repository.due_to_abandon(session, as_of, sample)),
    )
