"""order list indexes

The order lists page newest first by ``(created_at, id)``: everyone's (``GET /v1/orders``,
the console) and one member's, which replaces the index on ``member_id`` alone (issue 12).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mall_orders_member_id"))
        batch_op.create_index("ix_mall_orders_newest", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_mall_orders_member_newest", ["member_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_mall_orders_member_newest")
        batch_op.drop_index("ix_mall_orders_newest")
        batch_op.create_index(batch_op.f("ix_mall_orders_member_id"), ["member_id"], unique=False)
