"""bulk history and events

``tier_changes.member_id`` no longer has a foreign key (ADR 21: checked by ``tally ledger
verify`` instead of a trigger per row); the outbox's dedupe keys are unique among the events
that have one (a partial index: the events without a key, nearly all, are not indexed).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_KEYED = "dedupe_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tier_changes_member_id_members", type_="foreignkey")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outbox_events_dedupe_key", type_="unique")
        batch_op.create_index(
            "uq_outbox_events_dedupe_key",
            ["dedupe_key"],
            unique=True,
            sqlite_where=sa.text(_KEYED),
            postgresql_where=sa.text(_KEYED),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("uq_outbox_events_dedupe_key")
        batch_op.create_unique_constraint("uq_outbox_events_dedupe_key", ["dedupe_key"])
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_tier_changes_member_id_members", "members", ["member_id"], ["id"]
        )
