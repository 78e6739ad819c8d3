"""member presentations

The partners a member recently showed its member code to: each may spend the member's points
until the end of its checkout window.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_presentations",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("presented_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_presentations_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_member_presentations_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("member_id", "partner_id", name=op.f("pk_member_presentations")),
    )


def downgrade() -> None:
    op.drop_table("member_presentations")
