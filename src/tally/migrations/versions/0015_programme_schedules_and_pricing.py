"""programme versions scheduled on a date; entries and lots record what priced them

``programme_versions.effective_from`` (the instant a version takes effect; existing versions:
when they were applied), ``cancelled_at`` / ``cancelled_by`` (a scheduled version withdrawn
before its instant). ``journal_entries.programme_version`` and ``lots.programme_version``: the
version in force when the row was written (NULL: the built-in default programme, before any
file was applied); ``lots.value_points`` / ``value_minor`` / ``value_currency``: what a point was
worth at issuance (``value_points`` points = ``value_minor`` minor units).

Existing rows are backfilled with the version then in force (by ``created_at``) and its point
value; rows from before the first apply keep a NULL version and the built-in default's value
(1 point = 1 fen, CNY).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

import tally.db.base
from tally.programme.domain import CURRENCY_EXPONENTS

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DEFAULT_RATE = (1, 1, "CNY")  # the built-in default programme: "0.01" CNY a point


def _rate(content: dict[str, Any]) -> tuple[int, int, str]:
    value = content["currency"]["point_value"]
    minor = Decimal(value["amount"]).scaleb(CURRENCY_EXPONENTS[value["currency"]])
    points = 1
    while minor != minor.to_integral_value():
        minor *= 10
        points *= 10
    return points, int(minor), str(value["currency"])


def upgrade() -> None:
    with op.batch_alter_table("programme_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("effective_from", tally.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cancelled_at", tally.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("cancelled_by", sa.String(length=200), nullable=True))
    op.execute("UPDATE programme_versions SET effective_from = applied_at")
    with op.batch_alter_table("programme_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "effective_from",
            existing_type=tally.db.base.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch_op.create_index(
            batch_op.f("ix_programme_versions_effective_from"), ["effective_from"], unique=False
        )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("programme_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("programme_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("value_points", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("value_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("value_currency", sa.String(length=3), nullable=True))
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    versions = bind.execute(
        sa.text("SELECT version, applied_at, content FROM programme_versions ORDER BY version")
    ).all()
    points, minor, currency = DEFAULT_RATE
    bind.execute(
        sa.text(
            "UPDATE lots SET value_points = :p, value_minor = :m, value_currency = :c"
            " WHERE value_points IS NULL"
        ),
        {"p": points, "m": minor, "c": currency},
    )
    for position, (version, applied_at, stored) in enumerate(versions):
        # SQLite hands JSON back as text through a raw statement.
        content = json.loads(stored) if isinstance(stored, str) else stored
        until = versions[position + 1][1] if position + 1 < len(versions) else None
        window = "created_at >= :start" + ("" if until is None else " AND created_at < :until")
        params = {"v": version, "start": applied_at}
        if until is not None:
            params["until"] = until
        points, minor, currency = _rate(content)
        bind.execute(
            sa.text(f"UPDATE journal_entries SET programme_version = :v WHERE {window}"),  # noqa: S608
            params,
        )
        bind.execute(
            sa.text(
                "UPDATE lots SET programme_version = :v, value_points = :p,"  # noqa: S608
                f" value_minor = :m, value_currency = :c WHERE {window}"
            ),
            {**params, "p": points, "m": minor, "c": currency},
        )


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of journal_entries or lots
    # would drop a table that other tables' foreign keys point at.
    for column in ("value_currency", "value_minor", "value_points", "programme_version"):
        op.drop_column("lots", column)
    op.drop_column("journal_entries", "programme_version")
    with op.batch_alter_table("programme_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_versions_effective_from"))
        batch_op.drop_column("cancelled_by")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("effective_from")
