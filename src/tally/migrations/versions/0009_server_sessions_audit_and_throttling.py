"""server sessions audit and throttling

Server-side console and member sessions (the cookie holds a random token, the row its hash),
the audit log (append-only: triggers refuse UPDATE and DELETE on both databases) and the counts
of failed sign-ins per account and per address.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LINKED = sa.text("link_hash IS NOT NULL")
APPEND_ONLY = "audit entries are append-only"
PG_FUNCTION = f"""
CREATE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}';
END;
$$ LANGUAGE plpgsql
"""
PG_TRIGGER = """
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER audit_entries_no_{event} BEFORE {event} ON audit_entries
BEGIN SELECT RAISE(ABORT, '{message}'); END
"""


def _create_audit_entries() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_entries_actor_id", ["actor", "id"], unique=False)
        batch_op.create_index("ix_audit_entries_action_id", ["action", "id"], unique=False)
        batch_op.create_index("ix_audit_entries_member_id_id", ["member_id", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(SQLITE_TRIGGER.format(event=event, message=APPEND_ONLY))


def _create_web_sessions() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("console", "member", name="sessionkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("link_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "end_reason",
            sa.Enum("signed_out", "ended", name="endreason", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_web_sessions_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_web_sessions_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"])
        batch_op.create_index(batch_op.f("ix_web_sessions_member_id"), ["member_id"])
        batch_op.create_index(batch_op.f("ix_web_sessions_staff_id"), ["staff_id"])
    op.create_index(
        "uq_web_sessions_link_hash",
        "web_sessions",
        ["link_hash"],
        unique=True,
        sqlite_where=LINKED,
        postgresql_where=LINKED,
    )


def _create_sign_in_throttles() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", tally.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_throttles")),
        sa.UniqueConstraint("key", name=op.f("uq_sign_in_throttles_key")),
    )


def upgrade() -> None:
    _create_web_sessions()
    _create_audit_entries()
    _create_sign_in_throttles()


def downgrade() -> None:
    op.drop_table("sign_in_throttles")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION audit_entries_append_only()")
    op.drop_table("audit_entries")
    op.drop_index("uq_web_sessions_link_hash", table_name="web_sessions")
    op.drop_table("web_sessions")
