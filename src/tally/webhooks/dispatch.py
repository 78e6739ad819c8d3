"""Fan-out: the outbox's new events become deliveries to every subscription that may receive
them, in one transaction per batch, set-based."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.orm import Session

from tally.programme.domain import Programme
from tally.webhooks import repository
from tally.webhooks.domain import DeliveryStatus, Receiver, receives

BATCH = 1000


def fan_out(session: Session, now: datetime, programme: Programme, limit: int = BATCH) -> int:
    """Make the deliveries of up to ``limit`` undispatched events and mark them dispatched;
    returns how many events were dispatched (0 when another dispatcher holds the turn)."""
    if not repository.take_dispatch_lock(session):
        return 0
    events = repository.undispatched(session, limit)
    if not events:
        return 0
    receivers = [
        Receiver(
            id=sub_id,
            partner_id=partner_id,
            event_types=frozenset(types),
            is_operator_channel=programme.is_operator_channel(code),
        )
        for sub_id, partner_id, types, code in repository.active_receivers(session)
    ]
    rows = []
    if receivers:
        consents = repository.consented_pairs(
            session, [event.member_id for event in events if event.member_id is not None]
        )
        for event in events:
            for receiver in receivers:
                if receives(
                    receiver,
                    event_type=event.type,
                    partner_id=event.partner_id,
                    member_id=event.member_id,
                    subscription_id=event.subscription_id,
                    consented=(event.member_id, receiver.partner_id) in consents,
                ):
                    rows.append(
                        {
                            "subscription_id": receiver.id,
                            "outbox_id": event.id,
                            "member_id": event.member_id,
                            "status": DeliveryStatus.PENDING.value,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
    repository.insert_deliveries(session, rows)
    return repository.mark_dispatched(session, [event.id for event in events], now)


def dispatch(
    write: Callable[[], AbstractContextManager[Session]],
    now: datetime,
    programme: Programme,
    *,
    max_batches: int = 20,
) -> int:
    """Fan out everything waiting, a batch per transaction; returns how many events."""
    total = 0
    for _ in range(max_batches):
        with write() as session:
            done = fan_out(session, now, programme)
        total += done
        if done < BATCH:
            break
    return total
