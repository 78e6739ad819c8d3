"""coupons

Coupon templates, the codes issued from them, their redemptions and each member's use of a
template (issue 12, the rewards mall's coupons).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import BigId, UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("percent", "amount", name="kind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=True),
        sa.Column("min_spend", sa.BigInteger(), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("partners", sa.JSON(), nullable=False),
        sa.Column("total_limit", sa.BigInteger(), nullable=True),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("valid_from", UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("shared_code", sa.Boolean(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("owner_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("rolled_back", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "issued >= 0 AND redeemed >= 0", name=op.f("ck_coupon_templates_counts_not_negative")
        ),
        sa.CheckConstraint(
            "kind <> 'percent' OR value <= 10000",
            name=op.f("ck_coupon_templates_percent_at_most_all"),
        ),
        sa.CheckConstraint(
            "total_limit IS NULL OR issued <= total_limit",
            name=op.f("ck_coupon_templates_issued_within_limit"),
        ),
        sa.CheckConstraint(
            "total_limit IS NULL OR redeemed <= total_limit",
            name=op.f("ck_coupon_templates_redeemed_within_limit"),
        ),
        sa.CheckConstraint("value > 0", name=op.f("ck_coupon_templates_value_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_templates_code")),
    )
    op.create_table(
        "coupons",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("issued", "redeemed", name="couponstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "operator",
                "rule",
                "benefit",
                "purchase",
                name="source",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("grant_key", sa.String(length=191), nullable=True),
        sa.Column("issued_by_partner_id", sa.BigInteger(), nullable=True),
        sa.Column("issued_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("issued_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint("grant_key", name=op.f("uq_coupons_grant_key")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index("ix_coupons_template_id", ["template_id"], unique=False)
        batch_op.create_index(
            "ix_coupons_member_id_template_id", ["member_id", "template_id"], unique=False
        )
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "redeemed", "rolled_back", name="redemptionstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("cart_amount", sa.BigInteger(), nullable=False),
        sa.Column("eligible", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cart", sa.JSON(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("rolled_back_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "discount <= eligible", name=op.f("ck_coupon_redemptions_discount_within_eligible")
        ),
        sa.CheckConstraint(
            "discount >= 0", name=op.f("ck_coupon_redemptions_discount_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupon_redemptions_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_redemptions_coupon_id", ["coupon_id"], unique=False)
        batch_op.create_index("ix_coupon_redemptions_member_id", ["member_id"], unique=False)
        batch_op.create_index("ix_coupon_redemptions_template_id", ["template_id"], unique=False)
    op.create_table(
        "coupon_member_uses",
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.CheckConstraint("used >= 0", name=op.f("ck_coupon_member_uses_used_not_negative")),
        sa.PrimaryKeyConstraint("template_id", "member_id", name=op.f("pk_coupon_member_uses")),
    )


def downgrade() -> None:
    op.drop_table("coupon_member_uses")
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_redemptions_template_id")
        batch_op.drop_index("ix_coupon_redemptions_member_id")
        batch_op.drop_index("ix_coupon_redemptions_coupon_id")
    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_member_id_template_id")
        batch_op.drop_index("ix_coupons_template_id")
    op.drop_table("coupons")
    op.drop_table("coupon_templates")
