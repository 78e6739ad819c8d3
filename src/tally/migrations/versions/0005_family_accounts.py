"""family groups, their members and monthly spend

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "families",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum("pool", "share", name="familymode", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("active", "dissolved", name="familystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("seats", sa.BigInteger(), nullable=False),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dissolved_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("seats >= 0", name=op.f("ck_families_seats_not_negative")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["members.id"], name=op.f("fk_families_owner_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_families")),
    )
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_families_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "family_invitations",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("family_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "declined",
                "withdrawn",
                "cancelled",
                name="invitationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_family_invitations_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_family_invitations_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_invitations")),
    )
    with op.batch_alter_table("family_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_invitations_family_id"), ["family_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_family_invitations_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            "ix_family_invitations_pending",
            ["family_id", "member_id"],
            unique=True,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )

    op.create_table(
        "family_memberships",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("family_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "role",
            sa.Enum("owner", "member", name="familyrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("monthly_limit", sa.BigInteger(), nullable=True),
        sa.Column("joined_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_family_memberships_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_family_memberships_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_memberships")),
        sa.UniqueConstraint("member_id", name=op.f("uq_family_memberships_member_id")),
    )
    with op.batch_alter_table("family_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_memberships_family_id"), ["family_id"], unique=False
        )

    op.create_table(
        "family_month_spends",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("family_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("spent >= 0", name=op.f("ck_family_month_spends_spent_not_negative")),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_family_month_spends_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_family_month_spends_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_month_spends")),
        sa.UniqueConstraint(
            "family_id",
            "member_id",
            "month",
            name=op.f("uq_family_month_spends_family_id_member_id_month"),
        ),
    )

    op.create_table(
        "family_spends",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("returned_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_family_spends_entry_id_journal_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_family_spends_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_family_spends_member_id_members")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_family_spends")),
    )
    with op.batch_alter_table("family_spends", schema=None) as batch_op:
        batch_op.create_index(
            "ix_family_spends_family_id_member_id_month",
            ["family_id", "member_id", "month"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("family_spends", schema=None) as batch_op:
        batch_op.drop_index("ix_family_spends_family_id_member_id_month")

    op.drop_table("family_spends")
    op.drop_table("family_month_spends")
    with op.batch_alter_table("family_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_memberships_family_id"))

    op.drop_table("family_memberships")
    with op.batch_alter_table("family_invitations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_family_invitations_pending", sqlite_where=PENDING, postgresql_where=PENDING
        )
        batch_op.drop_index(batch_op.f("ix_family_invitations_member_id"))
        batch_op.drop_index(batch_op.f("ix_family_invitations_family_id"))

    op.drop_table("family_invitations")
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_families_owner_id"))

    op.drop_table("families")
