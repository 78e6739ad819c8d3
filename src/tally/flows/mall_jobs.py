"""The mall's deadline sweeps: unpaid orders lapse at ``pay_by``, orders not shipped by
``ship_by`` are refunded (the 48-hour rule). Idempotent, and safe with several workers: each
order is changed under its lock and only from the state the sweep expects, so it is changed
once whoever runs; a batch that fails is split until the order that fails stands alone (passed
over, recorded in job_failures)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.flows import mall_orders
from tally.job_failures.service import Failure, isolating
from tally.job_failures.service import record as record_failures
from tally.ledger.domain import Policy
from tally.mall import repository

UnitOfWork = Callable[[], AbstractContextManager[Session]]
Finder = Callable[[Session, datetime, int, Sequence[uuid.UUID]], list[uuid.UUID]]
Change = Callable[[Session, uuid.UUID, datetime, Policy], bool]


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep did: orders changed, and those it could not change."""

    done: int
    failures: tuple[Failure, ...] = ()


def _sweep(
    unit_of_work: UnitOfWork,
    as_of: datetime,
    policy: Policy,
    find: Finder,
    change: Change,
    job: str,
    batch: int,
) -> SweepReport:
    done = 0
    failed: list[Failure] = []
    seen: set[uuid.UUID] = set()
    while True:
        skip = [uuid.UUID(failure.row_id) for failure in failed]
        with unit_of_work() as session:
            ids = [item for item in find(session, as_of, batch, skip) if item not in seen]
        if not ids:
            break
        seen.update(ids)  # an order another worker holds is not asked for again in this run

        def work(session: Session, part: Sequence[uuid.UUID]) -> int:
            return sum(change(session, order_id, as_of, policy) for order_id in part)

        results, failures = isolating(unit_of_work, ids, work, "order")
        done += sum(results)
        failed.extend(failures)
    record_failures(unit_of_work, job, failed)
    return SweepReport(done, tuple(failed))


def lapse_unpaid(
    unit_of_work: UnitOfWork, as_of: datetime, policy: Policy, batch: int = 200
) -> SweepReport:
    """Lapse every order still unpaid at its ``pay_by <= as_of``: points and stock back."""
    return _sweep(
        unit_of_work, as_of, policy, repository.due_unpaid, mall_orders.lapse, "orders", batch
    )


def refund_late(
    unit_of_work: UnitOfWork, as_of: datetime, policy: Policy, batch: int = 200
) -> SweepReport:
    """Refund in full every paid order not shipped (nor confirmed) by ``ship_by <= as_of``,
    telling the member (``order.refunded``)."""
    return _sweep(
        unit_of_work,
        as_of,
        policy,
        repository.due_refunds,
        mall_orders.auto_refund,
        "refunds",
        batch,
    )


def due(
    session: Session, as_of: datetime, sample: int = 5
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """A sample of the orders each sweep would take at ``as_of`` (``--dry-run``; reads only)."""
    return (
        repository.due_unpaid(session, as_of, sample),
        repository.due_refunds(session, as_of, sample),
    )
