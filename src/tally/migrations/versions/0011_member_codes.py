"""member codes

The short-lived member codes partners scan at checkout (kept as keyed digests), and the count
of each partner's lookups that named no valid code.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_codes",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_codes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_member_codes")),
    )
    with op.batch_alter_table("member_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_codes_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_member_codes_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "member_code_misses",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("window", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "window", name=op.f("pk_member_code_misses")),
    )


def downgrade() -> None:
    op.drop_table("member_code_misses")
    with op.batch_alter_table("member_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_codes_expires_at"))
        batch_op.drop_index(batch_op.f("ix_member_codes_member_id"))
    op.drop_table("member_codes")
