"""engagement

Each member's run of daily sign-ins, and referrals between members (issue 11).

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import UTCDateTime

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_streaks",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_sign_in_streaks")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_streaks")
