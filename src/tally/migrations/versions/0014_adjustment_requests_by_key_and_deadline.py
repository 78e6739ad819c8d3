"""adjustment requests filed by API keys, and their deadlines

An adjustment request is asked for by a staff member or by an operator channel's API key
(exactly one of ``requested_by`` and ``requested_by_key_id``), and expires at its ``deadline``
(set at filing from ``staff.request_ttl_hours``; existing requests get 72 hours from filing).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEFAULT_TTL = timedelta(hours=72)
ONE_REQUESTER = "(requested_by IS NULL) <> (requested_by_key_id IS NULL)"


def _requests() -> sa.TableClause:
    return sa.table(
        "adjustment_requests",
        sa.column("id", sa.BigInteger()),
        sa.column("requested_at", tally.db.base.UTCDateTime(timezone=True)),
        sa.column("deadline", tally.db.base.UTCDateTime(timezone=True)),
    )


def upgrade() -> None:
    with op.batch_alter_table("adjustment_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_by_key_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("deadline", tally.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    table = _requests()
    connection = op.get_bind()
    for request_id, requested_at in connection.execute(sa.select(table.c.id, table.c.requested_at)):
        connection.execute(
            table.update()
            .where(table.c.id == request_id)
            .values(deadline=requested_at + DEFAULT_TTL)
        )
    with op.batch_alter_table("adjustment_requests", schema=None) as batch_op:
        batch_op.alter_column(
            "deadline", existing_type=tally.db.base.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("requested_by", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("requester_role", existing_type=sa.String(length=16), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_adjustment_requests_requested_by_key_id_api_keys"),
            "api_keys",
            ["requested_by_key_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_adjustment_requests_requested_by_key_id"),
            ["requested_by_key_id"],
            unique=False,
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_adjustment_requests_one_requester"), sa.text(ONE_REQUESTER)
        )


def downgrade() -> None:
    # Requests filed by API keys have no staff member to fall back on: they go with the column.
    table = sa.table("adjustment_requests", sa.column("requested_by_key_id", sa.BigInteger()))
    op.execute(table.delete().where(table.c.requested_by_key_id.is_not(None)))
    with op.batch_alter_table("adjustment_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_adjustment_requests_one_requester"), type_="check")
        batch_op.drop_index(batch_op.f("ix_adjustment_requests_requested_by_key_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_adjustment_requests_requested_by_key_id_api_keys"),
            type_="foreignkey",
        )
        batch_op.alter_column("requester_role", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column("requested_by", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("deadline")
        batch_op.drop_column("requested_by_key_id")
