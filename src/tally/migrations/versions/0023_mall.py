"""mall

The rewards mall's catalog and orders (issue 12): items with their sale, booking slots,
digital-code pools, per-member limit counters, orders and their events.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TO_SHIP = (
    "ship_by IS NOT NULL AND payment_status IN ('paid', 'part_refunded') "
    "AND fulfilment_status IN ('unfulfilled', 'requested')"
)


def upgrade() -> None:
    op.create_table(
        "mall_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "physical",
                "digital_code",
                "coupon",
                "partner_benefit",
                "booking",
                "ticket",
                "donation",
                name="itemkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("owner_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("descriptions", sa.JSON(), nullable=True),
        sa.Column("categories", sa.String(length=600), nullable=False),
        sa.Column("search_text", sa.String(length=4000), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("cash_minor_units", sa.BigInteger(), nullable=True),
        sa.Column("cash_currency", sa.String(length=3), nullable=True),
        sa.Column("tier_points", sa.JSON(), nullable=True),
        sa.Column("eligible_tiers", sa.JSON(), nullable=True),
        sa.Column("eligible_plans", sa.JSON(), nullable=True),
        sa.Column("is_exclusive", sa.Boolean(), nullable=False),
        sa.Column("limit_count", sa.Integer(), nullable=True),
        sa.Column(
            "limit_period",
            sa.Enum(
                "day",
                "week",
                "month",
                "year",
                "total",
                name="limitperiod",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("stock", sa.BigInteger(), nullable=True),
        sa.Column("sold", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("ship_within", sa.String(length=32), nullable=False),
        sa.Column("ship_within_seconds", sa.BigInteger(), nullable=False),
        sa.Column("low_water", sa.Integer(), nullable=True),
        sa.Column("sale_starts_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("sale_ends_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("sale_points", sa.BigInteger(), nullable=True),
        sa.Column("sale_stock", sa.BigInteger(), nullable=True),
        sa.Column("sale_limit_count", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_by_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cash_minor_units IS NULL OR cash_minor_units > 0",
            name=op.f("ck_mall_items_cash_positive"),
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_mall_items_points_not_negative")),
        sa.CheckConstraint(
            "sale_stock IS NULL OR sale_stock >= 0",
            name=op.f("ck_mall_items_sale_stock_not_negative"),
        ),
        sa.CheckConstraint(
            "stock IS NULL OR stock >= 0", name=op.f("ck_mall_items_stock_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["owner_partner_id"],
            ["partners.id"],
            name=op.f("fk_mall_items_owner_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_items")),
        sa.UniqueConstraint("code", name=op.f("uq_mall_items_code")),
    )
    with op.batch_alter_table("mall_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mall_items_owner_partner_id"), ["owner_partner_id"], unique=False
        )

    op.create_table(
        "mall_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=191), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["mall_items.id"], name=op.f("fk_mall_codes_item_id_mall_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_codes")),
        sa.UniqueConstraint("item_id", "code", name=op.f("uq_mall_codes_item_id_code")),
    )
    with op.batch_alter_table("mall_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mall_codes_free",
            ["item_id", "id"],
            unique=False,
            sqlite_where=sa.text("order_id IS NULL"),
            postgresql_where=sa.text("order_id IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_mall_codes_order_id"), ["order_id"], unique=False)

    op.create_table(
        "mall_limit_counters",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("window", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_mall_limit_counters_count_not_negative")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["mall_items.id"], name=op.f("fk_mall_limit_counters_item_id_mall_items")
        ),
        sa.PrimaryKeyConstraint(
            "item_id", "member_id", "window", name=op.f("pk_mall_limit_counters")
        ),
    )
    op.create_table(
        "mall_slots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "taken >= 0 AND taken <= capacity", name=op.f("ck_mall_slots_taken_within_capacity")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["mall_items.id"], name=op.f("fk_mall_slots_item_id_mall_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_slots")),
        sa.UniqueConstraint("item_id", "code", name=op.f("uq_mall_slots_item_id_code")),
    )
    op.create_table(
        "mall_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "physical",
                "digital_code",
                "coupon",
                "partner_benefit",
                "booking",
                "ticket",
                "donation",
                name="itemkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("owner_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("accepting_partner_id", sa.BigInteger(), nullable=False),
        sa.Column("placed_by_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_points", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("discount_points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("cash_minor_units", sa.BigInteger(), nullable=True),
        sa.Column("cash_currency", sa.String(length=3), nullable=True),
        sa.Column("is_sale", sa.Boolean(), nullable=False),
        sa.Column("limit_window", sa.String(length=32), nullable=True),
        sa.Column(
            "payment_status",
            sa.Enum(
                "pending",
                "paid",
                "part_refunded",
                "refunded",
                "lapsed",
                "cancelled",
                name="paymentstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "fulfilment_status",
            sa.Enum(
                "unfulfilled",
                "requested",
                "shipped",
                "delivered",
                "cancelled",
                name="fulfilmentstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("capture_entry_id", sa.Uuid(), nullable=True),
        sa.Column("refunded_points", sa.BigInteger(), nullable=False),
        sa.Column("refunded_quantity", sa.Integer(), nullable=False),
        sa.Column("payment_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("payment_reference", sa.String(length=191), nullable=True),
        sa.Column("pay_by", UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("ship_by", UTCDateTime(timezone=True), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("slot_id", sa.BigInteger(), nullable=True),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("tracking_number", sa.String(length=128), nullable=True),
        sa.Column("ticket_code", sa.String(length=32), nullable=True),
        sa.Column("shipped_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points >= 0", name=op.f("ck_mall_orders_points_not_negative")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_mall_orders_quantity_positive")),
        sa.CheckConstraint(
            "refunded_points >= 0 AND refunded_points <= points",
            name=op.f("ck_mall_orders_refund_within_points"),
        ),
        sa.CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= quantity",
            name=op.f("ck_mall_orders_refund_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["mall_items.id"], name=op.f("fk_mall_orders_item_id_mall_items")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_mall_orders_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["mall_slots.id"], name=op.f("fk_mall_orders_slot_id_mall_slots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_orders")),
        sa.UniqueConstraint(
            "payment_partner_id",
            "payment_reference",
            name=op.f("uq_mall_orders_payment_partner_id_payment_reference"),
        ),
        sa.UniqueConstraint("ticket_code", name=op.f("uq_mall_orders_ticket_code")),
    )
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mall_orders_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mall_orders_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mall_orders_owner_partner_id"), ["owner_partner_id"], unique=False
        )
        batch_op.create_index(
            "ix_mall_orders_to_ship",
            ["ship_by"],
            unique=False,
            sqlite_where=sa.text(TO_SHIP),
            postgresql_where=sa.text(TO_SHIP),
        )
        batch_op.create_index(
            "ix_mall_orders_unpaid",
            ["pay_by"],
            unique=False,
            sqlite_where=sa.text("payment_status = 'pending'"),
            postgresql_where=sa.text("payment_status = 'pending'"),
        )

    op.create_table(
        "mall_order_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("payment_before", sa.String(length=16), nullable=True),
        sa.Column("payment_after", sa.String(length=16), nullable=False),
        sa.Column("fulfilment_before", sa.String(length=16), nullable=True),
        sa.Column("fulfilment_after", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["mall_orders.id"], name=op.f("fk_mall_order_events_order_id_mall_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_order_events")),
    )
    with op.batch_alter_table("mall_order_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mall_order_events_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mall_order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_order_events_order_id"))

    op.drop_table("mall_order_events")
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_mall_orders_unpaid",
            sqlite_where=sa.text("payment_status = 'pending'"),
            postgresql_where=sa.text("payment_status = 'pending'"),
        )
        batch_op.drop_index(
            "ix_mall_orders_to_ship",
            sqlite_where=sa.text(TO_SHIP),
            postgresql_where=sa.text(TO_SHIP),
        )
        batch_op.drop_index(batch_op.f("ix_mall_orders_owner_partner_id"))
        batch_op.drop_index(batch_op.f("ix_mall_orders_member_id"))
        batch_op.drop_index(batch_op.f("ix_mall_orders_item_id"))

    op.drop_table("mall_orders")
    op.drop_table("mall_slots")
    op.drop_table("mall_limit_counters")
    with op.batch_alter_table("mall_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_codes_order_id"))
        batch_op.drop_index(
            "ix_mall_codes_free",
            sqlite_where=sa.text("order_id IS NULL"),
            postgresql_where=sa.text("order_id IS NULL"),
        )

    op.drop_table("mall_codes")
    with op.batch_alter_table("mall_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_items_owner_partner_id"))

    op.drop_table("mall_items")
