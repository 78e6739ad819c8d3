"""indexes that hold only the rows they serve: reversals, and growth a merge moved

``journal_entries.reverses_id`` and ``growth_entries.reverses_id`` are unique but almost always
null, and ``growth_entries.origin_member_id`` is looked up only for entries a merge moved to
another member; every earn paid for three index entries no query would read.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REVERSAL = sa.text("reverses_id IS NOT NULL")
MOVED = sa.text("origin_member_id <> member_id")


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_constraint("uq_journal_entries_reverses_id", type_="unique")
    op.create_index(
        "uq_journal_entries_reverses_id",
        "journal_entries",
        ["reverses_id"],
        unique=True,
        sqlite_where=REVERSAL,
        postgresql_where=REVERSAL,
    )
    with op.batch_alter_table("growth_entries") as batch:
        batch.drop_constraint("uq_growth_entries_reverses_id", type_="unique")
        batch.drop_index("ix_growth_entries_origin_member_id")
    op.create_index(
        "uq_growth_entries_reverses_id",
        "growth_entries",
        ["reverses_id"],
        unique=True,
        sqlite_where=REVERSAL,
        postgresql_where=REVERSAL,
    )
    op.create_index(
        "ix_growth_entries_moved",
        "growth_entries",
        ["origin_member_id"],
        sqlite_where=MOVED,
        postgresql_where=MOVED,
    )


def downgrade() -> None:
    op.drop_index("ix_growth_entries_moved", table_name="growth_entries")
    op.drop_index("uq_growth_entries_reverses_id", table_name="growth_entries")
    with op.batch_alter_table("growth_entries") as batch:
        batch.create_index("ix_growth_entries_origin_member_id", ["origin_member_id"])
        batch.create_unique_constraint("uq_growth_entries_reverses_id", ["reverses_id"])
    op.drop_index("uq_journal_entries_reverses_id", table_name="journal_entries")
    with op.batch_alter_table("journal_entries") as batch:
        batch.create_unique_constraint("uq_journal_entries_reverses_id", ["reverses_id"])
