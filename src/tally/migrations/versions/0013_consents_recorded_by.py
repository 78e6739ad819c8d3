"""consents recorded by staff

``consents.recorded_by``: the staff member who recorded an act in the console (channel
``console``), or who merged the member an act was carried from (channel ``merge``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_by", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_consents_recorded_by_staff_users"),
            "staff_users",
            ["recorded_by"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_consents_recorded_by_staff_users"), type_="foreignkey"
        )
        batch_op.drop_column("recorded_by")
