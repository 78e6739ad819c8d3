"""idempotency records: unique on (key, principal), the selective column first

A batch looks up its keys with ``principal = :p AND key = ANY(:keys)``. With the principal
first (a handful of values, one per partner) a plan made while the table was small can use
the index on the principal alone and filter every record of the partner; with the key first
any plan seeks each key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_constraint("uq_idempotency_records_principal_key", type_="unique")
        batch.create_unique_constraint("uq_idempotency_records_key_principal", ["key", "principal"])


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_constraint("uq_idempotency_records_key_principal", type_="unique")
        batch.create_unique_constraint("uq_idempotency_records_principal_key", ["principal", "key"])
