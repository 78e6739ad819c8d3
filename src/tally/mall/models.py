"""The rewards mall's tables: items (with their sale), booking slots, code pools, per-member
limit counters, orders and their events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum
from tally.mall.domain import FulfilmentStatus, ItemKind, LimitPeriod, PaymentStatus


class Item(Base):
    """Something members buy with points (and perhaps cash).

    ``owner_partner_id`` is the supplier that manages it, or ``None`` for the operator's own.
    ``stock`` is what is left to sell (``None``: unlimited), changed only by conditional updates;
    a digital-code item's stock is the codes of its pool not yet claimed. The ``sale_*`` columns
    are its flash sale (all set or none), with stock of its own.
    """

    __tablename__ = "mall_items"
    __table_args__ = (
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("sale_stock IS NULL OR sale_stock >= 0", name="sale_stock_not_negative"),
        CheckConstraint("cash_minor_units IS NULL OR cash_minor_units > 0", name="cash_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind))
    owner_partner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("partners.id"), index=True
    )
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    descriptions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    #: ``|books|travel|``: each category between bars, so a category is found with LIKE.
    categories: Mapped[str] = mapped_column(String(600), default="")
    #: Lower-cased code, names and descriptions: what a text search looks in.
    search_text: Mapped[str] = mapped_column(String(4000), default="")
    images: Mapped[list[str]] = mapped_column(JSON, default=list)
    points: Mapped[int] = mapped_column(BigInteger)
    cash_minor_units: Mapped[int | None] = mapped_column(BigInteger)
    cash_currency: Mapped[str | None] = mapped_column(String(3))
    tier_points: Mapped[dict[str, int] | None] = mapped_column(JSON)
    eligible_tiers: Mapped[list[str] | None] = mapped_column(JSON)
    eligible_plans: Mapped[list[str] | None] = mapped_column(JSON)
    is_exclusive: Mapped[bool] = mapped_column(default=False)
    limit_count: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[LimitPeriod | None] = mapped_column(str_enum(LimitPeriod))
    stock: Mapped[int | None] = mapped_column(BigInteger)
    sold: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ship_within: Mapped[str] = mapped_column(String(32))
    ship_within_seconds: Mapped[int] = mapped_column(BigInteger)
    low_water: Mapped[int | None] = mapped_column(Integer)
    #: The programme plan a ``plan`` item sells (a membership of it starts on payment).
    plan_code: Mapped[str | None] = mapped_column(String(64))
    sale_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sale_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sale_points: Mapped[int | None] = mapped_column(BigInteger)
    sale_stock: Mapped[int | None] = mapped_column(BigInteger)
    sale_limit_count: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_by_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Slot(Base):
    """A booking item's time slot: ``taken`` of its ``capacity`` reserved (conditionally)."""

    __tablename__ = "mall_slots"
    __table_args__ = (
        UniqueConstraint("item_id", "code"),
        CheckConstraint("taken >= 0 AND taken <= capacity", name="taken_within_capacity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mall_items.id"))
    code: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)


class Code(Base):
    """One code of a digital-code item's pool; ``order_id`` is set once, when an order claims
    it (a conditional update), so no code is delivered twice."""

    __tablename__ = "mall_codes"
    __table_args__ = (
        UniqueConstraint("item_id", "code"),
        partial_index("ix_mall_codes_free", "item_id", "id", where="order_id IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mall_items.id"))
    code: Mapped[str] = mapped_column(String(191))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LimitCounter(Base):
    """How many units of an item a member bought in one limit window (``m:2026-12``,
    ``total``, ``sale:…``); raised only by a conditional upsert that keeps it within the
    limit."""

    __tablename__ = "mall_limit_counters"
    __table_args__ = (CheckConstraint("count >= 0", name="count_not_negative"),)

    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mall_items.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    window: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class Order(Base):
    """A member's order of one item.

    ``points`` is what the member pays in points (after ``discount_points`` of a coupon),
    held by ``hold_id`` and captured by ``capture_entry_id``; ``accepting_partner_id`` is the
    ledger's partner the points go to (the supplier, or an operator channel). ``pay_by`` and
    ``ship_by`` are the deadlines the jobs sweep. ``version`` grows with every change, and
    every change is conditional on it.
    """

    __tablename__ = "mall_orders"
    __table_args__ = (
        UniqueConstraint("payment_partner_id", "payment_reference"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint(
            "refunded_points >= 0 AND refunded_points <= points", name="refund_within_points"
        ),
        CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name="refund_within_quantity",
        ),
        # The order lists, newest first: everyone's, and one member's.
        Index("ix_mall_orders_newest", "created_at", "id"),
        Index("ix_mall_orders_member_newest", "member_id", "created_at", "id"),
        partial_index("ix_mall_orders_unpaid", "pay_by", where="payment_status = 'pending'"),
        partial_index(
            "ix_mall_orders_to_ship",
            "ship_by",
            where="ship_by IS NOT NULL AND payment_status IN ('paid', 'part_refunded') "
            "AND fulfilment_status IN ('unfulfilled', 'requested')",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("mall_items.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind))
    owner_partner_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    accepting_partner_id: Mapped[int] = mapped_column(BigInteger)
    placed_by_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_points: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    discount_points: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    cash_minor_units: Mapped[int | None] = mapped_column(BigInteger)
    cash_currency: Mapped[str | None] = mapped_column(String(3))
    is_sale: Mapped[bool] = mapped_column(default=False)
    limit_window: Mapped[str | None] = mapped_column(String(32))
    payment_status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    fulfilment_status: Mapped[FulfilmentStatus] = mapped_column(str_enum(FulfilmentStatus))
    hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    capture_entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    payment_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_reference: Mapped[str | None] = mapped_column(String(191))
    pay_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ship_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    slot_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("mall_slots.id"))
    #: The membership a ``plan`` order pays for (pending until the order is paid).
    membership_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("memberships.id"), index=True
    )
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(128))
    ticket_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderEvent(Base):
    """One change of an order: what, who (a partner, a staff member, or the system), the
    statuses before and after, and the points and quantity involved."""

    __tablename__ = "mall_order_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("mall_orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    partner_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_before: Mapped[str | None] = mapped_column(String(16))
    payment_after: Mapped[str] = mapped_column(String(16))
    fulfilment_before: Mapped[str | None] = mapped_column(String(16))
    fulfilment_after: Mapped[str] = mapped_column(String(16))
    points: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
