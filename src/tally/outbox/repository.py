"""Writing events to the outbox: one statement for any number of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw, driver_of, is_sqlite
from tally.kit.clock import utcnow
from tally.outbox.domain import Event, EventType

_INSERT = Bulk.insert(
    "outbox_events",
    {
        "event_id": "uuid",
        "type": "text",
        "member_id": "bigint",
        "partner_id": "bigint",
        "subscription_id": "bigint",
        "dedupe_key": "text",
        "data": "json",
        "occurred_at": "timestamptz",
        "created_at": "timestamptz",
    },
    # A reminder already emitted (same dedupe key) is not emitted again.
    "ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
)


def emit(session: Session, events: Sequence[Event], now: datetime | None = None) -> int:
    """Write ``events`` in the caller's transaction, in one statement; returns how many were
    written (events whose ``dedupe_key`` was used before are not)."""
    if not events:
        return 0
    created = now or utcnow()
    return _INSERT.execute(
        session,
        [
            {
                "event_id": event.event_id,
                "type": event.type.value,
                "member_id": event.member_id,
                "partner_id": event.partner_id,
                "subscription_id": event.subscription_id,
                "dedupe_key": event.dedupe_key,
                "data": event.data,
                "occurred_at": event.occurred_at,
                "created_at": created,
            }
            for event in events
        ],
    )


# Events of rows staged in a table, one statement for all (bulk jobs), each with an event id made
# by the database: time-ordered, as tally.kit.ids.uuid7 makes them (UUID version 7: the
# milliseconds since the epoch, then random bits), so that the unique index on event ids is
# appended to rather than written at random places across the whole of it. On SQLite, as the
# 32 hex digits it stores.
_EMIT_STAGED = (
    "INSERT INTO outbox_events (event_id, type, member_id, data, occurred_at, created_at)"
    " SELECT {event_id}, :type, member_id, {data}, :occurred_at, :now"
    " FROM {table} ORDER BY member_id"
)
_POSTGRES_ID = (
    "CAST(encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING"
    " substring(int8send(CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT))"
    " FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex') AS UUID)"
)
_SQLITE_ID = (
    "printf('%012x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
    " || '7' || substr(lower(hex(randomblob(2))), 2)"
    " || substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2)"
    " || lower(hex(randomblob(6)))"
)


def emit_staged(
    session: Session,
    event_type: EventType,
    table: str,
    occurred_at: datetime,
    now: datetime | None = None,
) -> None:
    """Write an event of ``event_type`` for each row of ``table`` (its ``member_id``, and its
    ``data``: the event's document as JSON text), in member order, in the caller's transaction
    and one statement. ``table`` is a name from code, never input."""
    _staged(table, is_sqlite(driver_of(session))).execute(
        session, {"type": event_type.value, "occurred_at": occurred_at, "now": now or utcnow()}
    )


@cache
def _staged(table: str, sqlite: bool) -> Raw:
    return Raw(
        _EMIT_STAGED.format(
            event_id=_SQLITE_ID if sqlite else _POSTGRES_ID,
            data="data" if sqlite else "CAST(data AS JSON)",
            table=table,
        )
    )
