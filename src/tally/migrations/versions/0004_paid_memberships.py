"""paid memberships and their payments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status IN ('pending', 'active')")
ACTIVE = sa.text("status = 'active'")
PENDING = sa.text("status = 'pending'")


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, tally.db.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_code", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "active",
                "expired",
                "refunded",
                "abandoned",
                name="membershipstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("price_minor_units", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("term", sa.String(length=8), nullable=False),
        _time("current_period_start", nullable=True),
        _time("current_period_end", nullable=True),
        _time("anchor_at", nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("ended_at", nullable=True),
        sa.CheckConstraint(
            "price_minor_units >= 0", name=op.f("ck_memberships_price_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_memberships_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
    )
    op.create_index(op.f("ix_memberships_member_id"), "memberships", ["member_id"])
    op.create_index(
        "ix_memberships_open",
        "memberships",
        ["member_id", "plan_code"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index(
        "ix_memberships_due",
        "memberships",
        ["current_period_end"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_memberships_pending",
        "memberships",
        ["created_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_table(
        "membership_payments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=191), nullable=False),
        sa.Column("minor_units", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("refunded_minor_units", sa.BigInteger(), nullable=False),
        _time("paid_at"),
        _time("period_start"),
        _time("period_end"),
        _time("revoked_at", nullable=True),
        _time("created_at"),
        sa.CheckConstraint("minor_units > 0", name=op.f("ck_membership_payments_amount_positive")),
        sa.CheckConstraint(
            "refunded_minor_units <= minor_units",
            name=op.f("ck_membership_payments_refunded_within_amount"),
        ),
        sa.CheckConstraint(
            "refunded_minor_units >= 0",
            name=op.f("ck_membership_payments_refunded_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_membership_payments_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_membership_payments_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_payments")),
        sa.UniqueConstraint(
            "partner_id", "reference", name=op.f("uq_membership_payments_partner_id_reference")
        ),
    )
    op.create_index(
        op.f("ix_membership_payments_membership_id"), "membership_payments", ["membership_id"]
    )
    op.create_table(
        "membership_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "subscribed",
                "activated",
                "renewed",
                "restarted",
                "cancelled",
                "resumed",
                "refunded",
                "expired",
                "abandoned",
                name="eventkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("minor_units", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("status_before", sa.String(length=16), nullable=True),
        sa.Column("status_after", sa.String(length=16), nullable=False),
        _time("period_end_before", nullable=True),
        _time("period_end_after", nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_membership_events_membership_id_memberships"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_events")),
    )
    op.create_index(
        op.f("ix_membership_events_membership_id"), "membership_events", ["membership_id"]
    )


def downgrade() -> None:
    op.drop_table("membership_events")
    op.drop_table("membership_payments")
    op.drop_index("ix_memberships_pending", table_name="memberships")
    op.drop_index("ix_memberships_due", table_name="memberships")
    op.drop_index("ix_memberships_open", table_name="memberships")
    op.drop_index(op.f("ix_memberships_member_id"), table_name="memberships")
    op.drop_table("memberships")
