"""Outbox retention: events fanned out before the cutoff whose deliveries are all final go,
with their deliveries, a bounded chunk per transaction; an event with a pending delivery, one
not fanned out yet, a recent one and an expiry reminder that could be due again stay. Run by
`tally jobs outbox` and the scheduler of `tally serve`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from conftest import make_partner
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.outbox.models import OutboxEvent
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Scheduler
from tally.webhooks import retention
from tally.webhooks.domain import DeliveryStatus, SubscriptionStatus
from tally.webhooks.models import WebhookDelivery, WebhookSubscription

NOW = utcnow() - timedelta(days=120)  # the scheduler runs at the real now
BEFORE = NOW - timedelta(days=30)


def _event(
    age_days: float | None, *, dedupe_key: str | None = None, occurred_days: float = 0
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "type": "entry.posted",
        "data": {},
        "dedupe_key": dedupe_key,
        "occurred_at": NOW - timedelta(days=max(occurred_days, age_days or 0)),
        "created_at": NOW - timedelta(days=age_days or 0),
        "dispatched_at": None if age_days is None else NOW - timedelta(days=age_days),
    }


def _world(database: Database) -> dict[str, int]:
    """Named events (some with deliveries) as the dispatcher and the senders left them."""
    partner = make_partner(database, "SHOP")
    events = {
        "old delivered": _event(40),
        "old given up": _event(40),
        "old pending": _event(40),
        "old no subscriber": _event(45),
        "recent": _event(10),
        "not fanned out": _event(None),
        "reminder that could be due": _event(40, dedupe_key="points.expiring:1:2030-07-01:30"),
        "reminder long past": _event(
            40, dedupe_key="points.expiring:1:2020-05-01:30", occurred_days=400
        ),
    }
    with database.write() as session:
        subscription = session.scalar(
            insert(WebhookSubscription)
            .values(
                partner_id=partner.partner_id,
                url="https://hooks.example/x",
                event_types=["entry.posted"],
                sealed_secret="x",
                status=SubscriptionStatus.ACTIVE,
                created_at=NOW - timedelta(days=60),
            )
            .returning(WebhookSubscription.id)
        )
        ids = {
            name: session.scalar(insert(OutboxEvent).values(**row).returning(OutboxEvent.id))
            for name, row in events.items()
        }
        for name, status in (
            ("old delivered", DeliveryStatus.DELIVERED),
            ("old given up", DeliveryStatus.FAILED),
            ("old pending", DeliveryStatus.PENDING),
            ("recent", DeliveryStatus.DELIVERED),
        ):
            session.execute(
                insert(WebhookDelivery).values(
                    subscription_id=subscription,
                    outbox_id=ids[name],
                    status=status,
                    attempts=1,
                    next_attempt_at=NOW,
                    created_at=NOW - timedelta(days=40),
                )
            )
    return {name: int(value) for name, value in ids.items() if value is not None}


def _left(database: Database, ids: dict[str, int]) -> set[str]:
    with database.read() as session:
        kept = set(session.scalars(select(OutboxEvent.id)))
        delivered = set(session.scalars(select(WebhookDelivery.outbox_id)))
    names = {name for name, value in ids.items() if value in kept}
    assert delivered <= kept, "a delivery outlived its event"
    return names


KEPT = {"old pending", "recent", "not fanned out", "reminder that could be due"}


def test_old_final_events_go_with_their_deliveries_chunk_by_chunk(database: Database) -> None:
    ids = _world(database)
    calls: list[int] = []

    def counted() -> Any:
        calls.append(1)
        return database.write()

    with database.read() as session:
        assert retention.purgeable(session, BEFORE) == 4
    assert retention.purge(counted, BEFORE, chunk=3) == 4
    assert len(calls) == 2  # 3 + 1: the short chunk ends it
    assert _left(database, ids) == KEPT
    assert retention.purge(database.write, BEFORE) == 0  # a second run deletes nothing
    assert _left(database, ids) == KEPT


def test_the_scheduler_purges_the_outbox(database: Database, settings: Settings) -> None:
    ids = _world(database)
    Scheduler(database, settings, ProgrammeCache(settings, 0), interval=3600).run_once()
    # Now is four months after NOW: the recent event is past the retention too.
    assert _left(database, ids) == KEPT - {"recent"}
