"""growth value, member tiers and tier history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "growth_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("origin_member_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("earn", "adjust", "reversal", name="growthkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("counted_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("journal_entry_id", sa.Uuid(), nullable=True),
        sa.Column("reverses_id", sa.BigInteger(), nullable=True),
        sa.Column("partner_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_growth_entries_journal_entry_id_journal_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_growth_entries_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_entries")),
        sa.UniqueConstraint("journal_entry_id", name=op.f("uq_growth_entries_journal_entry_id")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_growth_entries_reverses_id")),
    )
    with op.batch_alter_table("growth_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_growth_entries_member_id_counted_at", ["member_id", "counted_at"], unique=False
        )
        batch_op.create_index("ix_growth_entries_member_id_id", ["member_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_growth_entries_origin_member_id"), ["origin_member_id"], unique=False
        )

    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("tier_code", sa.String(length=64), nullable=False),
        sa.Column("since", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("downgrade_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifetime_growth", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_tiers_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )

    op.create_table(
        "tier_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("from_code", sa.String(length=64), nullable=True),
        sa.Column("to_code", sa.String(length=64), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "upgrade",
                "downgrade",
                "grace_started",
                "grace_cleared",
                "programme_change",
                "adjustment",
                "merge",
                name="tierchangereason",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("downgrade_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("programme_version", sa.Integer(), nullable=True),
        sa.Column("changed_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_changes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_index("ix_tier_changes_member_id_id", ["member_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_changes_member_id_id")

    op.drop_table("tier_changes")
    op.drop_table("member_tiers")
    with op.batch_alter_table("growth_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_growth_entries_origin_member_id"))
        batch_op.drop_index("ix_growth_entries_member_id_id")
        batch_op.drop_index("ix_growth_entries_member_id_counted_at")

    op.drop_table("growth_entries")
