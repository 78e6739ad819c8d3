"""offers

The offers' precomputed signals: item similarities, popularity overall and per tier, and the
row of the last computation (issue 12, ADR 30).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import UTCDateTime

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offer_similarities",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("other_id", sa.BigInteger(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "other_id", name=op.f("pk_offer_similarities")),
    )
    op.create_table(
        "offer_popularity",
        sa.Column("tier_code", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tier_code", "item_id", name=op.f("pk_offer_popularity")),
    )
    op.create_table(
        "offer_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", UTCDateTime(timezone=True), nullable=False),
        sa.Column("pairs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_refreshes")),
    )


def downgrade() -> None:
    op.drop_table("offer_refreshes")
    op.drop_table("offer_popularity")
    op.drop_table("offer_similarities")
