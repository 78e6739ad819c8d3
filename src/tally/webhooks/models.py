"""Webhook subscriptions and the deliveries of outbox events to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum
from tally.webhooks.domain import DeliveryStatus, SubscriptionStatus


class WebhookSubscription(Base):
    """A partner's endpoint and the event types it asked for; the signing secret is kept
    sealed (AES-GCM under a key derived from ``TALLY_SECRET_KEY``), never in plain text."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    sealed_secret: Mapped[str] = mapped_column(String(200))
    status: Mapped[SubscriptionStatus] = mapped_column(str_enum(SubscriptionStatus))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One outbox event to one subscription, attempted until delivered or given up.

    ``locked_until`` and ``lease_token`` are a sender's lease on the attempt under way: no other
    sender takes it before the lease ends, and a sender that died mid-attempt is replaced when
    it does (the event is sent again, with the same ``webhook-id``).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id"),
        partial_index("ix_webhook_deliveries_due", "next_attempt_at", where="status = 'pending'"),
        # Per-member order: the earliest pending delivery of a subscription and member goes first.
        partial_index(
            "ix_webhook_deliveries_member_order",
            "subscription_id",
            "member_id",
            "outbox_id",
            where="status = 'pending'",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_subscriptions.id"))
    outbox_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("outbox_events.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
