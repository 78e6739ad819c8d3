"""mall plans

The programme's paid plans sold in the mall (issue 12): ``mall_items.plan_code`` is the plan a
``plan`` item sells, ``mall_orders.membership_id`` the membership its order pays for.

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mall_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_code", sa.String(length=64), nullable=True))
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("membership_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_mall_orders_membership_id"), ["membership_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_mall_orders_membership_id_memberships"),
            "memberships",
            ["membership_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("mall_orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_mall_orders_membership_id_memberships"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_mall_orders_membership_id"))
        batch_op.drop_column("membership_id")
    with op.batch_alter_table("mall_items", schema=None) as batch_op:
        batch_op.drop_column("plan_code")
