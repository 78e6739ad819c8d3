"""Every query of stored events: a batch's outcomes written in one statement, repeats found in
one, and the members' windowed counts and sums the rules' conditions read."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw, as_datetime, as_uuid
from tally.events.models import StoredEvent

EVENT_COLUMNS = {  # name → PostgreSQL type
    "id": "uuid",
    "source": "text",
    "event_id": "text",
    "partner_id": "bigint",
    "type": "text",
    "member_id": "bigint",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "amount_minor": "bigint",
    "currency": "text",
    "channel": "text",
    "refers_to": "text",
    "payload": "json",
    "points": "bigint",
    "growth": "bigint",
    "outcome": "json",
    "transaction_id": "uuid",
    "programme_version": "integer",
    "refunded_minor": "bigint",
}
# A repeat that raced past the lookup loses here and is answered from the winner's row.
_INSERT = Bulk.insert(
    "events", EVENT_COLUMNS, "ON CONFLICT (source, event_id) DO NOTHING RETURNING id"
)
_FIND = Raw("SELECT event_id, id FROM events WHERE source = :source AND event_id = ANY(:ids)")
_ADD_REFUNDED = Bulk(
    "UPDATE events SET refunded_minor = refunded_minor + :minor WHERE id = :id",
    "UPDATE events e SET refunded_minor = e.refunded_minor + v.minor"
    " FROM unnest(:id::uuid[], :minor::bigint[]) AS v(id, minor) WHERE e.id = v.id",
)

_SET_TRANSACTIONS = Bulk(
    "UPDATE events SET transaction_id = :tx WHERE id = :id",
    "UPDATE events e SET transaction_id = v.tx"
    " FROM unnest(:id::uuid[], :tx::uuid[]) AS v(id, tx) WHERE e.id = v.id",
)


def source_of(partner_id: int | None) -> str:
    """The source of events a partner reports (``None``: events Tally raises itself)."""
    return "tally" if partner_id is None else f"p{partner_id}"


def insert(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Store events with their outcomes, in one statement; the ids stored (a row whose
    ``(source, event_id)`` another transaction stored first is not)."""
    return {as_uuid(row[0]) for row in _INSERT.returning(session, rows)}


def find(session: Session, source: str, event_ids: Sequence[str]) -> dict[str, uuid.UUID]:
    """The stored events of ``source`` among ``event_ids``: event_id → id."""
    if not event_ids:
        return {}
    found = _FIND.all(session, {"source": source, "ids": sorted(set(event_ids))})
    return {str(event_id): as_uuid(row_id) for event_id, row_id in found}


def by_ids(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredEvent]:
    """Stored events by id."""
    if not ids:
        return {}
    rows = session.scalars(select(StoredEvent).where(StoredEvent.id.in_(list(ids))))
    return {row.id: row for row in rows}


def lock_referred(
    session: Session, source: str, event_ids: Sequence[str]
) -> dict[str, StoredEvent]:
    """The stored events of ``source`` that refunds refer to, locked until commit (two refunds
    of one purchase take back in turn): event_id → event."""
    if not event_ids:
        return {}
    rows = session.scalars(
        select(StoredEvent)
        .where(StoredEvent.source == source, StoredEvent.event_id.in_(sorted(set(event_ids))))
        .order_by(StoredEvent.id)
        .with_for_update()
    )
    return {row.event_id: row for row in rows}


def of_transactions(
    session: Session, entries: Sequence[tuple[uuid.UUID, int | None, str | None]]
) -> dict[uuid.UUID, StoredEvent]:
    """The stored events that posted ``entries`` (``(id, partner_id, reference)`` of an event's
    earn or a refund's take-back), by entry id: found by the entries' references
    (``event:<event_id>``) in one statement."""
    wanted = {
        (source_of(partner_id), reference.removeprefix("event:")): entry_id
        for entry_id, partner_id, reference in entries
        if reference and reference.startswith("event:")
    }
    if not wanted:
        return {}
    rows = session.scalars(
        select(StoredEvent).where(
            tuple_(StoredEvent.source, StoredEvent.event_id).in_(sorted(wanted))
        )
    )
    return {
        wanted[(row.source, row.event_id)]: row
        for row in rows
        if row.transaction_id == wanted[(row.source, row.event_id)]
    }


def set_transactions(session: Session, transactions: Mapping[uuid.UUID, uuid.UUID]) -> None:
    """Record the transaction each stored event's points were posted in, in one statement."""
    _SET_TRANSACTIONS.execute(
        session, [{"id": event, "tx": tx} for event, tx in sorted(transactions.items())]
    )


def add_refunded(session: Session, refunded: Mapping[uuid.UUID, int]) -> None:
    """Add refunded minor units to purchases, in one statement."""
    _ADD_REFUNDED.execute(
        session, [{"id": event, "minor": minor} for event, minor in sorted(refunded.items())]
    )


@dataclass(frozen=True, slots=True)
class Window:
    """A windowed aggregate of a member's events: ``measure`` (``count`` or ``sum_amount``) of
    the events of ``types`` in the ``days`` before the event."""

    code: str
    types: tuple[str, ...]
    measure: str
    days: int


def aggregates(
    session: Session, member_ids: Sequence[int], windows: Sequence[Window], now: datetime
) -> dict[int, dict[str, int]]:
    """Each member's value of each window as of ``now`` (a count, or a sum in minor units),
    in one statement per window, money refunded since left out; members without events have
    zeros."""
    result: dict[int, dict[str, int]] = {
        member_id: {window.code: 0 for window in windows} for member_id in member_ids
    }
    if not member_ids:
        return result
    for window in windows:
        since = now - timedelta(days=window.days)  # exact: a float timestamp drifts by a µs
        spent = "COALESCE(SUM(amount_minor - refunded_minor), 0)"
        measure = "COUNT(*)" if window.measure == "count" else spent
        statement = Raw(
            f"SELECT member_id, {measure} FROM events"  # noqa: S608  (measure is Tally's)
            " WHERE member_id = ANY(:ms) AND type = ANY(:types)"
            " AND occurred_at > :since AND occurred_at <= :now GROUP BY member_id"
        )
        rows = statement.all(
            session,
            {
                "ms": sorted(set(member_ids)),
                "types": list(window.types),
                "since": since,
                "now": now,
            },
        )
        for member_id, value in rows:
            result[int(member_id)][window.code] = int(value)
    return result


def in_period(
    session: Session, since: datetime | None, until: datetime | None
) -> list[StoredEvent]:
    """The stored events that occurred at or after ``since`` and before ``until`` (``None``:
    unbounded), in the order they were taken in (received, then id), in one statement."""
    query = select(StoredEvent)
    if since is not None:
        query = query.where(StoredEvent.occurred_at >= since)
    if until is not None:
        query = query.where(StoredEvent.occurred_at < until)
    return list(session.scalars(query.order_by(StoredEvent.received_at, StoredEvent.id)))


_OF_MEMBERS = Raw(
    "SELECT member_id, type, occurred_at, received_at, COALESCE(amount_minor, 0) - refunded_minor"
    " FROM events WHERE member_id = ANY(:ms) AND type = ANY(:types)"
)


def of_members(
    session: Session, member_ids: Sequence[int], types: Sequence[str]
) -> list[tuple[int, str, datetime, datetime, int]]:
    """The members' events of ``types``: member, type, when it occurred and was taken in, and
    its amount less what was refunded of it (minor units; 0 without one), in one statement."""
    if not member_ids or not types:
        return []
    rows = _OF_MEMBERS.all(session, {"ms": sorted(set(member_ids)), "types": sorted(set(types))})
    return [
        (int(member), str(kind), as_datetime(occurred), as_datetime(received), int(spent))
        for member, kind, occurred, received, spent in rows
    ]


def history(
    session: Session, member_id: int, *, limit: int = 50, before: datetime | None = None
) -> list[StoredEvent]:
    """A member's events, newest first."""
    query = select(StoredEvent).where(StoredEvent.member_id == member_id)
    if before is not None:
        query = query.where(StoredEvent.occurred_at < before)
    return list(
        session.scalars(query.order_by(StoredEvent.occurred_at.desc(), StoredEvent.id).limit(limit))
    )
