"""accounts

``accounts``: one row per account postings name (kind, owner, unit); ``account_stripes``: the
balance of each partner and system account, as the sum of its stripes (a member account's
balance is its wallet's). Backfilled set-based: the system's accounts, two per partner and two
per wallet in one INSERT … SELECT, and each partner and system account's balance from its
postings in another.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_OWNERS = ("member", "partner", "system")
_KINDS = ("available", "held", "issued", "accepted", "expired", "adjustments", "breakage")


def _code(prefix: str, column: str, suffix: str) -> str:
    return f"'{prefix}:' || CAST({column} AS TEXT) || ':{suffix}'"


# Codes as tally.accounts.domain.code_of spells them (an accepted account's ends in ":redeemed").
_BACKFILL_ACCOUNTS = f"""
INSERT INTO accounts (code, owner_type, owner_id, kind, unit)
SELECT 'system:expired', 'system', CAST(NULL AS BIGINT), 'expired', 'points'
UNION ALL SELECT 'system:adjustments', 'system', CAST(NULL AS BIGINT), 'adjustments', 'points'
UNION ALL SELECT 'system:breakage', 'system', CAST(NULL AS BIGINT), 'breakage', 'points'
UNION ALL SELECT {_code("partner", "id", "issued")}, 'partner', id, 'issued', 'points'
 FROM partners
UNION ALL SELECT {_code("partner", "id", "redeemed")}, 'partner', id, 'accepted', 'points'
 FROM partners
UNION ALL SELECT {_code("member", "member_id", "available")}, 'member', member_id, 'available',
 'points' FROM wallets
UNION ALL SELECT {_code("member", "member_id", "held")}, 'member', member_id, 'held', 'points'
 FROM wallets
"""  # noqa: S608 - no input: constants of this file
_BACKFILL_BALANCES = """
INSERT INTO account_stripes (account_id, stripe, balance)
SELECT a.id, 0, SUM(p.amount) FROM accounts a JOIN postings p ON p.account = a.code
WHERE a.owner_type <> 'member' GROUP BY a.id
"""


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", tally.db.base.BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "owner_type",
            sa.Enum(*_OWNERS, name="ownertype", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(*_KINDS, name="accountkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "(owner_type = 'system') = (owner_id IS NULL)",
            name=op.f("ck_accounts_system_accounts_have_no_owner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_accounts_code")),
    )
    op.create_index("ix_accounts_owner", "accounts", ["owner_type", "owner_id"], unique=False)
    op.create_table(
        "account_stripes",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("stripe", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_stripes_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "stripe", name=op.f("pk_account_stripes")),
    )
    connection = op.get_bind()  # on the driver: the codes' colons are not bind parameters
    connection.exec_driver_sql(_BACKFILL_ACCOUNTS)
    connection.exec_driver_sql(_BACKFILL_BALANCES)


def downgrade() -> None:
    op.drop_table("account_stripes")
    op.drop_index("ix_accounts_owner", table_name="accounts")
    op.drop_table("accounts")
