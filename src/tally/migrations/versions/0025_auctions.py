"""auctions

Points auctions and their bids (issue 12, ADR 28).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import UTCDateTime

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status = 'open'")


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "auctions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("item_names", sa.JSON(), nullable=False),
        _time("starts_at"),
        _time("scheduled_end"),
        _time("ends_at"),
        _time("latest_end"),
        sa.Column("start_points", sa.BigInteger(), nullable=False),
        sa.Column("reserve", sa.BigInteger(), nullable=True),
        sa.Column("increments", sa.JSON(), nullable=False),
        sa.Column("soft_close_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "sold", "unsold", name="auctionstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("bid_count", sa.Integer(), nullable=False),
        sa.Column("leader_member_id", sa.BigInteger(), nullable=True),
        sa.Column("leader_max", sa.BigInteger(), nullable=True),
        sa.Column("leader_hold_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_by_staff_id", sa.BigInteger(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("closed_at", nullable=True),
        sa.Column("winner_member_id", sa.BigInteger(), nullable=True),
        sa.Column("final_price", sa.BigInteger(), nullable=True),
        sa.Column("capture_entry_id", sa.Uuid(), nullable=True),
        sa.Column("unsold_reason", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint("start_points > 0", name=op.f("ck_auctions_start_positive")),
        sa.CheckConstraint(
            "reserve IS NULL OR reserve > 0", name=op.f("ck_auctions_reserve_positive")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_auctions_ends_after_start")),
        sa.CheckConstraint("latest_end >= ends_at", name=op.f("ck_auctions_latest_end_after_end")),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_auctions_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auctions")),
    )
    op.create_index(op.f("ix_auctions_partner_id"), "auctions", ["partner_id"])
    op.create_index(
        "ix_auctions_due", "auctions", ["ends_at"], sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.create_table(
        "auction_bids",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("auction_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("max_points", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("price_after", sa.BigInteger(), nullable=False),
        _time("placed_at"),
        sa.CheckConstraint("max_points > 0", name=op.f("ck_auction_bids_max_positive")),
        sa.ForeignKeyConstraint(
            ["auction_id"], ["auctions.id"], name=op.f("fk_auction_bids_auction_id_auctions")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_auction_bids_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auction_bids")),
        sa.UniqueConstraint("auction_id", "seq", name=op.f("uq_auction_bids_auction_id_seq")),
    )
    op.create_index(op.f("ix_auction_bids_member_id"), "auction_bids", ["member_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_auction_bids_member_id"), table_name="auction_bids")
    op.drop_table("auction_bids")
    op.drop_index("ix_auctions_due", table_name="auctions")
    op.drop_index(op.f("ix_auctions_partner_id"), table_name="auctions")
    op.drop_table("auctions")
