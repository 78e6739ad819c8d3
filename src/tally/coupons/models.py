"""Coupons: templates, the codes issued from them, their redemptions and per-member use."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from tally.coupons.domain import CouponStatus, Kind, RedemptionStatus, Source
from tally.db.base import Base, BigId, UTCDateTime, str_enum


class CouponTemplate(Base):
    """What a coupon gives and on what terms. ``issued`` counts the codes issued from it
    (never above ``total_limit``), ``redeemed`` the uses in force (a rollback gives one
    back), ``rolled_back`` the uses given back; each changes by a conditional update."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("kind <> 'percent' OR value <= 10000", name="percent_at_most_all"),
        CheckConstraint("issued >= 0 AND redeemed >= 0", name="counts_not_negative"),
        CheckConstraint(
            "total_limit IS NULL OR redeemed <= total_limit", name="redeemed_within_limit"
        ),
        CheckConstraint("total_limit IS NULL OR issued <= total_limit", name="issued_within_limit"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[Kind] = mapped_column(str_enum(Kind))
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    cap: Mapped[int | None] = mapped_column(BigInteger)
    min_spend: Mapped[int | None] = mapped_column(BigInteger)
    categories: Mapped[list[str]] = mapped_column(JSON)
    skus: Mapped[list[str]] = mapped_column(JSON)
    partners: Mapped[list[str]] = mapped_column(JSON)
    total_limit: Mapped[int | None] = mapped_column(BigInteger)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shared_code: Mapped[bool] = mapped_column(Boolean, default=False)
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    owner_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    issued: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    rolled_back: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Coupon(Base):
    """A generated code: in a member's wallet (``member_id``) or unassigned, usable once.
    ``grant_key``, when set, is unique: a rule's or a monthly allowance's grant is issued once."""

    __tablename__ = "coupons"
    __table_args__ = (Index("ix_coupons_member_id_template_id", "member_id", "template_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    template_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("coupon_templates.id"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[CouponStatus] = mapped_column(str_enum(CouponStatus))
    source: Mapped[Source] = mapped_column(str_enum(Source))
    grant_key: Mapped[str | None] = mapped_column(String(191), unique=True)
    issued_by_partner_id: Mapped[int | None] = mapped_column(BigInteger)
    issued_by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CouponRedemption(Base):
    """One use of a coupon at a partner's checkout: the cart it was applied to and the discount;
    a rollback (a refunded purchase) gives the use back once."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        CheckConstraint("discount >= 0", name="discount_not_negative"),
        CheckConstraint("discount <= eligible", name="discount_within_eligible"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    template_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("coupon_templates.id"), index=True
    )
    coupon_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    code: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    partner_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RedemptionStatus] = mapped_column(str_enum(RedemptionStatus))
    cart_amount: Mapped[int] = mapped_column(BigInteger)
    eligible: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    cart: Mapped[dict[str, Any]] = mapped_column(JSON)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CouponMemberUse(Base):
    """How many uses of a template a member has in force (for its per-member limit): raised by
    a conditional upsert (``used < limit``), lowered by a rollback."""

    __tablename__ = "coupon_member_uses"
    __table_args__ = (CheckConstraint("used >= 0", name="used_not_negative"),)

    template_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
