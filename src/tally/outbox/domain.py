"""What the outbox says happened: event types and the small, stable payloads partners get.

Pure: no SQLAlchemy, no FastAPI. Payloads carry identifiers and amounts, never personal data.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tally.kit.ids import uuid7


class EventType(enum.StrEnum):
    """Everything a subscription may ask for (``webhook.*`` go to the partner's own only)."""

    ENTRY_POSTED = "entry.posted"
    HOLD_LAPSED = "hold.lapsed"
    POINTS_EXPIRING = "points.expiring"
    TIER_CHANGED = "tier.changed"
    MEMBERSHIP_CHANGED = "membership.changed"
    FAMILY_CHANGED = "family.changed"
    ORDER_PLACED = "order.placed"
    ORDER_PAID = "order.paid"
    ORDER_FULFILMENT_REQUESTED = "order.fulfilment_requested"
    ORDER_SHIPPED = "order.shipped"
    ORDER_DELIVERED = "order.delivered"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_LAPSED = "order.lapsed"
    ORDER_REFUNDED = "order.refunded"
    MALL_CODES_LOW = "mall.codes_low"
    COUPON_ISSUED = "coupon.issued"
    COUPON_REDEEMED = "coupon.redeemed"
    COUPON_ROLLED_BACK = "coupon.rolled_back"
    AUCTION_OUTBID = "auction.outbid"
    AUCTION_WON = "auction.won"
    AUCTION_LOST = "auction.lost"
    AUCTION_CLOSED = "auction.closed"
    WEBHOOK_PING = "webhook.ping"
    WEBHOOK_DISABLED = "webhook.disabled"


#: The types a subscription may name (pings and disablement notices come unasked).
SUBSCRIBABLE = tuple(kind for kind in EventType if not kind.value.startswith("webhook."))
#: Sent to a partner's subscriptions whatever event types they name.
ALWAYS_SENT = frozenset({EventType.WEBHOOK_PING, EventType.WEBHOOK_DISABLED})


@dataclass(frozen=True, slots=True)
class Event:
    """One fact to tell subscribers about.

    ``partner_id`` is the partner whose transaction or hold it is (it always receives it);
    ``member_id`` the member it is about (partners the member consented to receive it too);
    ``subscription_id`` addresses one subscription only (a ping); ``dedupe_key``, when given,
    is unique: a second event with it is not written (reminders that must be emitted once).
    ``event_id`` is time-ordered (UUIDv7): the outbox's index on it is appended to.
    """

    type: EventType
    data: dict[str, Any]
    occurred_at: datetime
    member_id: int | None = None
    partner_id: int | None = None
    subscription_id: int | None = None
    dedupe_key: str | None = None
    event_id: uuid.UUID = field(default_factory=uuid7)


def entry_payload(
    *,
    entry_id: uuid.UUID,
    kind: str,
    member_id: int | None,
    points: int,
    held: int,
    partner_id: int | None,
    reference: str | None,
    reverses_id: uuid.UUID | None,
    created_at: datetime,
) -> dict[str, Any]:
    """``entry.posted``: what moved, for whom; ``points`` is the change of the member's
    available balance, ``held`` of its held balance. The partner is named by id here and by
    code in the delivered body (see ``tally.webhooks``)."""
    return {
        "id": str(entry_id),
        "kind": kind,
        "member_id": member_id,
        "points": points,
        "held": held,
        "partner_id": partner_id,
        "reference": reference,
        "reverses_id": str(reverses_id) if reverses_id else None,
        "created_at": created_at.isoformat(),
    }
