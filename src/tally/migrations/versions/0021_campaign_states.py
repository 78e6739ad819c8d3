"""campaign states and campaign outcomes

A campaign paused or resumed without a new programme version, and what each stored event gave
each campaign it touched, in the member's arm: the rows A/B results are summed from (issue 11).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tally.db.base import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_states",
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("campaign", name=op.f("pk_campaign_states")),
    )
    op.create_table(
        "campaign_outcomes",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=True),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("is_refund", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "campaign", name=op.f("pk_campaign_outcomes")),
    )
    with op.batch_alter_table("campaign_outcomes", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_outcomes_campaign_arm", ["campaign", "arm"])
        batch_op.create_index(
            "ix_campaign_outcomes_occurred_at_campaign", ["occurred_at", "campaign"]
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_outcomes_occurred_at_campaign")
        batch_op.drop_index("ix_campaign_outcomes_campaign_arm")
    op.drop_table("campaign_outcomes")
    op.drop_table("campaign_states")
