"""Every query of webhooks: subscriptions, fan-out of the outbox, leased deliveries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw, as_datetime, as_uuid
from tally.outbox.models import OutboxEvent
from tally.partners.models import Partner
from tally.webhooks.domain import DeliveryStatus, SubscriptionStatus
from tally.webhooks.models import WebhookDelivery, WebhookSubscription

# One dispatcher at a time on PostgreSQL (SQLite's write lock serialises them already): two
# fanning out interleaved batches could let a member's later event overtake an earlier one.
DISPATCH_LOCK = 0x7A11_0B0C
_TRY_DISPATCH_LOCK = Raw("SELECT pg_try_advisory_xact_lock(:k)")
_UNDISPATCHED = Raw(
    "SELECT id, type, member_id, partner_id, subscription_id FROM outbox_events"
    " WHERE dispatched_at IS NULL ORDER BY id LIMIT :n"
)
_MARK_DISPATCHED = Raw(
    "UPDATE outbox_events SET dispatched_at = :now WHERE id = ANY(:ids) AND dispatched_at IS NULL"
)
_CONSENTS = Raw(
    "SELECT c.member_id, c.partner_id, c.is_granted FROM consents c"
    " WHERE c.purpose = 'profile' AND c.member_id = ANY(:ms) AND c.version = ("
    "  SELECT MAX(d.version) FROM consents d WHERE d.member_id = c.member_id"
    "  AND d.partner_id = c.partner_id AND d.purpose = c.purpose)"
)
_INSERT_DELIVERIES = Bulk.insert(
    "webhook_deliveries",
    {
        "subscription_id": "bigint",
        "outbox_id": "bigint",
        "member_id": "bigint",
        "status": "text",
        "attempts": "integer",
        "next_attempt_at": "timestamptz",
        "created_at": "timestamptz",
    },
    "ON CONFLICT (subscription_id, outbox_id) DO NOTHING",
)
# A lease on the due deliveries: pending, due, not leased (or the lease ran out), of an active
# subscription, and the earliest pending one of its subscription and member. The conditions
# are repeated outside the sub-select: PostgreSQL checks them again on a row another sender
# leased meanwhile, so two senders never lease the same attempt.
_LEASE = Raw(
    "UPDATE webhook_deliveries SET locked_until = :until, lease_token = :token"
    " WHERE status = 'pending' AND (locked_until IS NULL OR locked_until <= :now)"
    " AND id IN (SELECT d.id FROM webhook_deliveries d"
    "  JOIN webhook_subscriptions s ON s.id = d.subscription_id"
    "  WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND s.status = 'active'"
    "  AND (d.locked_until IS NULL OR d.locked_until <= :now)"
    "  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e"
    "   WHERE e.subscription_id = d.subscription_id AND e.member_id = d.member_id"
    "   AND e.status = 'pending' AND e.outbox_id < d.outbox_id)"
    "  ORDER BY d.next_attempt_at, d.id LIMIT :n)"
)
_LEASED = Raw(
    "SELECT d.id, d.attempts, s.id, s.url, s.sealed_secret, s.partner_id, o.event_id, o.type,"
    " o.occurred_at, o.data, p.code FROM webhook_deliveries d"
    " JOIN webhook_subscriptions s ON s.id = d.subscription_id"
    " JOIN outbox_events o ON o.id = d.outbox_id"
    " LEFT JOIN partners p ON p.id = o.partner_id"
    " WHERE d.lease_token = :token ORDER BY d.id"
)
_DELIVERED = Raw(
    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,"
    " last_status_code = :code, last_error = NULL, last_attempt_at = :now, response_ms = :ms,"
    " delivered_at = :now, locked_until = NULL, lease_token = NULL"
    " WHERE id = :id AND lease_token = :token"
)
_FAILED = Raw(
    "UPDATE webhook_deliveries SET status = :status, attempts = attempts + 1,"
    " next_attempt_at = :next, last_status_code = :code, last_error = :error,"
    " last_attempt_at = :now, response_ms = :ms, locked_until = NULL, lease_token = NULL"
    " WHERE id = :id AND lease_token = :token"
)
_SUCCEEDED = Raw(
    "UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL"
    " WHERE id = :id AND consecutive_failures <> 0"
)
_FAILURE = Raw(
    "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1,"
    " failing_since = COALESCE(failing_since, :now) WHERE id = :id AND status = 'active'"
)
_FAILURE_STATE = Raw(
    "SELECT consecutive_failures, failing_since, partner_id, url FROM webhook_subscriptions"
    " WHERE id = :id AND status = 'active'"
)
_DISABLE = Raw(
    "UPDATE webhook_subscriptions SET status = 'disabled', disabled_at = :now,"
    " disabled_reason = :reason WHERE id = :id AND status = 'active'"
)


@dataclass(frozen=True, slots=True)
class Undispatched:
    id: int
    type: str
    member_id: int | None
    partner_id: int | None
    subscription_id: int | None


@dataclass(frozen=True, slots=True)
class Leased:
    """A delivery a sender holds the lease of, with what it needs to send it."""

    id: int
    attempts: int
    subscription_id: int
    url: str
    sealed_secret: str
    partner_id: int
    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    partner_code: str | None


def insert_subscription(session: Session, values: dict[str, Any]) -> WebhookSubscription:
    subscription = WebhookSubscription(**values)
    session.add(subscription)
    session.flush()
    return subscription


def subscription(session: Session, subscription_id: int) -> WebhookSubscription | None:
    found = session.get(WebhookSubscription, subscription_id)
    if found is None or found.status is SubscriptionStatus.DELETED:
        return None
    return found


def subscriptions(session: Session, partner_id: int | None = None) -> list[WebhookSubscription]:
    """Subscriptions not deleted, of one partner or all, oldest first."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.status != SubscriptionStatus.DELETED
    )
    if partner_id is not None:
        query = query.where(WebhookSubscription.partner_id == partner_id)
    return list(session.scalars(query.order_by(WebhookSubscription.id)))


def active_receivers(session: Session) -> list[tuple[int, int, list[str], str]]:
    """``(id, partner_id, event_types, partner code)`` of every active subscription."""
    rows = session.execute(
        select(
            WebhookSubscription.id,
            WebhookSubscription.partner_id,
            WebhookSubscription.event_types,
            Partner.code,
        )
        .join(Partner, Partner.id == WebhookSubscription.partner_id)
        .where(WebhookSubscription.status == SubscriptionStatus.ACTIVE, Partner.is_active)
    )
    return [(row[0], row[1], list(row[2]), row[3]) for row in rows]


def set_status(
    session: Session,
    subscription_id: int,
    status: SubscriptionStatus,
    now: datetime,
    *,
    reason: str | None = None,
) -> bool:
    """Change a live subscription's status; re-enabling forgets its failures."""
    values: dict[str, Any] = {"status": status}
    if status is SubscriptionStatus.DELETED:
        values["deleted_at"] = now
    elif status is SubscriptionStatus.DISABLED:
        values |= {"disabled_at": now, "disabled_reason": reason}
    else:
        values |= {"consecutive_failures": 0, "failing_since": None}
    result = session.execute(
        update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.status != SubscriptionStatus.DELETED,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def deliveries(session: Session, subscription_id: int, limit: int) -> list[tuple[Any, ...]]:
    """The subscription's latest deliveries, newest first, with their events."""
    rows = session.execute(
        select(WebhookDelivery, OutboxEvent.event_id, OutboxEvent.type)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [tuple(row) for row in rows]


def delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def replay(session: Session, delivery_id: int, now: datetime) -> bool:
    """Send a delivery again from now (delivered or given up ones too), with its attempts
    counted afresh."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            lease_token=None,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- fan-out -------------------------------------------------------------------------------


def take_dispatch_lock(session: Session) -> bool:
    """Whether this transaction may dispatch (always on SQLite, whose writes are serial)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    row = _TRY_DISPATCH_LOCK.one(session, {"k": DISPATCH_LOCK})
    return bool(row and row[0])


def undispatched(session: Session, limit: int) -> list[Undispatched]:
    return [Undispatched(*row) for row in _UNDISPATCHED.all(session, {"n": limit})]


def consented_pairs(session: Session, member_ids: Sequence[int]) -> set[tuple[int, int]]:
    """``(member_id, partner_id)`` where the member's standing ``profile`` consent is given."""
    if not member_ids:
        return set()
    rows = _CONSENTS.all(session, {"ms": sorted(set(member_ids))})
    return {(int(member), int(partner)) for member, partner, granted in rows if granted}


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    return _INSERT_DELIVERIES.execute(session, rows)


def mark_dispatched(session: Session, ids: Sequence[int], now: datetime) -> int:
    return _MARK_DISPATCHED.rowcount(session, {"ids": list(ids), "now": now})


# --- sending -------------------------------------------------------------------------------


def lease(session: Session, token: str, now: datetime, until: datetime, limit: int) -> list[Leased]:
    """Lease up to ``limit`` due deliveries under ``token``; returns them."""
    _LEASE.execute(session, {"token": token, "now": now, "until": until, "n": limit})
    return [
        Leased(
            id=int(row[0]),
            attempts=int(row[1]),
            subscription_id=int(row[2]),
            url=row[3],
            sealed_secret=row[4],
            partner_id=int(row[5]),
            event_id=str(as_uuid(row[6])),
            type=row[7],
            occurred_at=as_datetime(row[8]),
            data=_json(row[9]),
            partner_code=row[10],
        )
        for row in _LEASED.all(session, {"token": token})
    ]


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    assert isinstance(value, dict)
    return value


def record_delivered(
    session: Session, item: Leased, token: str, code: int, ms: int, now: datetime
) -> bool:
    """The attempt succeeded; ``False`` when the lease was lost meanwhile (nothing changed)."""
    done = _DELIVERED.rowcount(
        session, {"id": item.id, "token": token, "code": code, "ms": ms, "now": now}
    )
    if done:
        _SUCCEEDED.execute(session, {"id": item.subscription_id})
    return bool(done)


def record_failed(
    session: Session,
    item: Leased,
    token: str,
    *,
    code: int | None,
    error: str,
    ms: int | None,
    now: datetime,
    next_attempt_at: datetime | None,
) -> bool:
    """The attempt failed: retry at ``next_attempt_at``, or give up when ``None``."""
    done = _FAILED.rowcount(
        session,
        {
            "id": item.id,
            "token": token,
            "status": DeliveryStatus.PENDING if next_attempt_at else DeliveryStatus.FAILED,
            "next": next_attempt_at or now,
            "code": code,
            "error": error[:500],
            "ms": ms,
            "now": now,
        },
    )
    if done:
        _FAILURE.execute(session, {"id": item.subscription_id, "now": now})
    return bool(done)


def failure_state(
    session: Session, subscription_id: int
) -> tuple[int, datetime | None, int, str] | None:
    row = _FAILURE_STATE.one(session, {"id": subscription_id})
    if row is None:
        return None
    return int(row[0]), as_datetime(row[1]) if row[1] is not None else None, int(row[2]), row[3]


def disable(session: Session, subscription_id: int, reason: str, now: datetime) -> bool:
    return bool(_DISABLE.rowcount(session, {"id": subscription_id, "reason": reason, "now": now}))


_COUNT_UNDISPATCHED = Raw("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL")
_COUNT_DUE = Raw(
    "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= :now"
)
_COUNT_PENDING = Raw("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")


def counts(session: Session, now: datetime) -> dict[str, int]:
    """What is waiting: events not fanned out, deliveries due and pending."""
    return {
        "undispatched_events": int((_COUNT_UNDISPATCHED.one(session, {}) or (0,))[0]),
        "due_deliveries": int((_COUNT_DUE.one(session, {"now": now}) or (0,))[0]),
        "pending_deliveries": int((_COUNT_PENDING.one(session, {}) or (0,))[0]),
    }


def console_rows(session: Session) -> list[tuple[WebhookSubscription, str]]:
    """Every subscription not deleted, with its partner's code: disabled ones first."""
    rows = session.execute(
        select(WebhookSubscription, Partner.code)
        .join(Partner, Partner.id == WebhookSubscription.partner_id)
        .where(WebhookSubscription.status != SubscriptionStatus.DELETED)
        .order_by(WebhookSubscription.status.desc(), Partner.code, WebhookSubscription.id)
    )
    return [(row[0], row[1]) for row in rows]
