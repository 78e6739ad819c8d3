"""SQL of paid memberships: look-ups, a named row lock, and conditional updates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tally.memberships.domain import OPEN_STATUSES, PENDING_TTL, MembershipStatus, State
from tally.memberships.models import Membership, MembershipEvent, MembershipPayment
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType


def membership(session: Session, membership_id: uuid.UUID) -> Membership | None:
    """A membership, read afresh (never a stale copy from the session)."""
    return session.scalar(
        select(Membership)
        .where(Membership.id == membership_id)
        .execution_options(populate_existing=True)
    )


def lock_membership(session: Session, membership_id: uuid.UUID) -> Membership | None:
    """A membership, locked for the rest of the transaction and read after the lock is held.

    PostgreSQL: ``FOR UPDATE`` (a concurrent writer waits, then reads what the first committed);
    SQLite drops it, but its write transactions already run one at a time.
    """
    return session.scalar(
        select(Membership)
        .where(Membership.id == membership_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def open_membership(session: Session, member_id: int, plan_code: str) -> Membership | None:
    """The member's pending-or-active membership of a plan (at most one exists)."""
    return session.scalar(
        select(Membership)
        .where(
            Membership.member_id == member_id,
            Membership.plan_code == plan_code,
            Membership.status.in_(OPEN_STATUSES),
        )
        .execution_options(populate_existing=True)
    )


def memberships_of(session: Session, member_id: int, limit: int = 200) -> list[Membership]:
    """A member's memberships, newest first."""
    return list(
        session.scalars(
            select(Membership)
            .where(Membership.member_id == member_id)
            .order_by(Membership.created_at.desc(), Membership.id.desc())
            .limit(limit)
        )
    )


def active_candidates(session: Session, member_id: int, now: datetime) -> list[Membership]:
    """A member's stored-active memberships whose period has not ended at ``now``."""
    return list(
        session.scalars(
            select(Membership)
            .where(
                Membership.member_id == member_id,
                Membership.status == MembershipStatus.ACTIVE,
                Membership.current_period_end > now,
            )
            .order_by(Membership.plan_code)
        )
    )


def active_plans(
    session: Session, member_ids: Sequence[int], as_of: datetime
) -> dict[int, list[str]]:
    """The plans in force at ``as_of`` of each of ``member_ids`` (one read; members without
    one are left out)."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(Membership.member_id, Membership.plan_code)
        .where(
            Membership.member_id.in_(list(member_ids)),
            Membership.status == MembershipStatus.ACTIVE,
            Membership.current_period_start <= as_of,
            Membership.current_period_end > as_of,
        )
        .order_by(Membership.member_id, Membership.plan_code)
    ).all()
    found: dict[int, list[str]] = {}
    for member_id, plan_code in rows:
        found.setdefault(int(member_id), []).append(str(plan_code))
    return found


def insert_membership(session: Session, values: dict[str, Any]) -> Membership:
    """Insert a membership; a concurrent duplicate fails on the open-membership index."""
    row = Membership(**values)
    session.add(row)
    session.flush()
    return row


def state_of(row: Membership) -> State:
    return State(
        status=row.status,
        created_at=row.created_at,
        period_start=row.current_period_start,
        period_end=row.current_period_end,
        anchor_at=row.anchor_at,
        cancel_at_period_end=row.cancel_at_period_end,
        ended_at=row.ended_at,
    )


def save_state(session: Session, row: Membership, new: State, now: datetime) -> bool:
    """Write ``new`` if the membership is still at the version ``row`` was read at."""
    result = session.execute(
        update(Membership)
        .where(Membership.id == row.id, Membership.version == row.version)
        .values(
            status=new.status,
            current_period_start=new.period_start,
            current_period_end=new.period_end,
            anchor_at=new.anchor_at,
            cancel_at_period_end=new.cancel_at_period_end,
            ended_at=new.ended_at,
            version=Membership.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    changed = result.rowcount == 1  # type: ignore[attr-defined]
    if changed:
        session.refresh(row)
    return bool(changed)


def close_if_due(
    session: Session, membership_id: uuid.UUID, status: MembershipStatus, as_of: datetime
) -> bool:
    """Expire an active membership whose period ended by ``as_of`` (it ended at its period's
    end), or abandon a pending one created at least :data:`PENDING_TTL` before ``as_of``:
    conditionally, so that only one of several racing jobs does it."""
    if status is MembershipStatus.EXPIRED:
        condition = [
            Membership.status == MembershipStatus.ACTIVE,
            Membership.current_period_end <= as_of,
        ]
        ended_at: Any = Membership.current_period_end
    else:
        condition = [
            Membership.status == MembershipStatus.PENDING,
            Membership.created_at <= as_of - PENDING_TTL,
        ]
        ended_at = as_of
    result = session.execute(
        update(Membership)
        .where(Membership.id == membership_id, *condition)
        .values(status=status, ended_at=ended_at, version=Membership.version + 1, updated_at=as_of)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def due_to_expire(
    session: Session, as_of: datetime, limit: int, *, skip: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Active memberships whose period ended by ``as_of`` (but those of ``skip``)."""
    query = select(Membership.id).where(
        Membership.status == MembershipStatus.ACTIVE, Membership.current_period_end <= as_of
    )
    if skip:
        query = query.where(Membership.id.not_in(skip))
    return list(
        session.scalars(query.order_by(Membership.current_period_end, Membership.id).limit(limit))
    )


def due_to_abandon(
    session: Session, as_of: datetime, limit: int, *, skip: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Pending memberships left unpaid for :data:`PENDING_TTL` by ``as_of`` (but those of
    ``skip``)."""
    query = select(Membership.id).where(
        Membership.status == MembershipStatus.PENDING,
        Membership.created_at <= as_of - PENDING_TTL,
    )
    if skip:
        query = query.where(Membership.id.not_in(skip))
    return list(session.scalars(query.order_by(Membership.created_at, Membership.id).limit(limit)))


def payment_by_reference(
    session: Session, partner_id: int, reference: str
) -> MembershipPayment | None:
    return session.scalar(
        select(MembershipPayment)
        .where(MembershipPayment.partner_id == partner_id, MembershipPayment.reference == reference)
        .execution_options(populate_existing=True)
    )


def payments_of(session: Session, membership_ids: list[uuid.UUID]) -> list[MembershipPayment]:
    """Payments of memberships, in the order they were confirmed."""
    if not membership_ids:
        return []
    return list(
        session.scalars(
            select(MembershipPayment)
            .where(MembershipPayment.membership_id.in_(membership_ids))
            .order_by(MembershipPayment.id)
            .execution_options(populate_existing=True)
        )
    )


def insert_payment(session: Session, values: dict[str, Any]) -> MembershipPayment:
    """Insert a payment; a reference the partner already used fails on its unique constraint."""
    row = MembershipPayment(**values)
    session.add(row)
    session.flush()
    return row


def add_refund(session: Session, payment_id: int, amount: int, revoke_at: datetime | None) -> bool:
    """Add ``amount`` to what was refunded of a payment, never beyond what was paid."""
    values: dict[str, Any] = {
        "refunded_minor_units": MembershipPayment.refunded_minor_units + amount
    }
    if revoke_at is not None:
        values["revoked_at"] = revoke_at
    result = session.execute(
        update(MembershipPayment)
        .where(
            MembershipPayment.id == payment_id,
            MembershipPayment.refunded_minor_units + amount <= MembershipPayment.minor_units,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def insert_event(session: Session, values: dict[str, Any]) -> None:
    """Record a change of a membership, and a ``membership.changed`` event for partners."""
    session.add(MembershipEvent(**values))
    session.flush()
    found = session.get(Membership, values["membership_id"])
    assert found is not None
    now: datetime = values["created_at"]
    period_end = values.get("period_end_after")
    outbox.emit(
        session,
        [
            Event(
                type=EventType.MEMBERSHIP_CHANGED,
                data={
                    "membership_id": str(found.id),
                    "member_id": found.member_id,
                    "plan": found.plan_code,
                    "kind": str(values["kind"]),
                    "status_before": values.get("status_before"),
                    "status": values["status_after"],
                    "period_end": period_end.isoformat() if period_end else None,
                    "partner_id": values.get("partner_id"),
                    "created_at": now.isoformat(),
                },
                occurred_at=now,
                member_id=found.member_id,
                partner_id=values.get("partner_id"),
            )
        ],
        now,
    )


def events_of(session: Session, membership_id: uuid.UUID) -> list[MembershipEvent]:
    return list(
        session.scalars(
            select(MembershipEvent)
            .where(MembershipEvent.membership_id == membership_id)
            .order_by(MembershipEvent.id)
        )
    )


def due_counts(session: Session, as_of: datetime) -> tuple[int, int]:
    """``(to expire, to abandon)`` by ``as_of``: what :func:`due_to_expire` and
    :func:`due_to_abandon` would find in all, counted in one read (for a dry run)."""
    expire, abandon = session.execute(
        select(
            func.count().filter(
                Membership.status == MembershipStatus.ACTIVE,
                Membership.current_period_end <= as_of,
            ),
            func.count().filter(
                Membership.status == MembershipStatus.PENDING,
                Membership.created_at <= as_of - PENDING_TTL,
            ),
        ).where(Membership.status.in_([MembershipStatus.ACTIVE, MembershipStatus.PENDING]))
    ).one()
    return int(expire), int(abandon)


def open_by_plan(session: Session, plan_codes: list[str]) -> dict[str, dict[str, int]]:
    """``{plan: {status: count}}`` of the pending and active memberships of ``plan_codes``."""
    rows = session.execute(
        select(Membership.plan_code, Membership.status, func.count())
        .where(Membership.plan_code.in_(plan_codes), Membership.status.in_(OPEN_STATUSES))
        .group_by(Membership.plan_code, Membership.status)
    ).all()
    found: dict[str, dict[str, int]] = {}
    for plan, status, count in rows:
        found.setdefault(str(plan), {})[MembershipStatus(status).value] = int(count)
    return found
