"""adjustment requests

Staff adjustments above the requester's limit, awaiting a second staff member's approval.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")
STATUS = sa.Enum(
    "pending",
    "approved",
    "rejected",
    "withdrawn",
    name="requeststatus",
    native_enum=False,
    length=16,
)


def upgrade() -> None:
    op.create_table(
        "adjustment_requests",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("expires_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("requester_role", sa.String(length=16), nullable=False),
        sa.Column("role_limit", sa.BigInteger(), nullable=False),
        sa.Column("programme_version", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("points <> 0", name=op.f("ck_adjustment_requests_points_not_zero")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_adjustment_requests_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["staff_users.id"],
            name=op.f("fk_adjustment_requests_requested_by_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["staff_users.id"],
            name=op.f("fk_adjustment_requests_decided_by_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_adjustment_requests_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustment_requests")),
    )
    with op.batch_alter_table("adjustment_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adjustment_requests_member_id"), ["member_id"], unique=False
        )
    op.create_index(
        "ix_adjustment_requests_pending",
        "adjustment_requests",
        ["requested_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_adjustment_requests_pending", table_name="adjustment_requests")
    with op.batch_alter_table("adjustment_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjustment_requests_member_id"))
    op.drop_table("adjustment_requests")
