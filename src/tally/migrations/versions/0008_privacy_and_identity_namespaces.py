"""privacy: who collected each member's profile, and members' consents to share it

``profile_collections`` keeps, once per member, partner, method (enrol or link) and namespace,
that a partner collected a member's data. ``consents`` is append-only: each row is one grant
or withdrawal of a partner's use of the profile for a purpose; the highest ``version`` of a
(member, partner, purpose) is its standing state.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tally.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profile_collections",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "method",
            sa.Enum("enrol", "link", name="collectionmethod", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_profile_collections_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_profile_collections_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_collections")),
        sa.UniqueConstraint(
            "member_id",
            "partner_id",
            "method",
            "namespace",
            name=op.f("uq_profile_collections_member_id_partner_id_method_namespace"),
        ),
    )
    op.create_table(
        "consents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("profile", "marketing", name="purpose", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_granted", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("created_at", tally.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_consents_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_consents_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint(
            "member_id",
            "partner_id",
            "purpose",
            "version",
            name=op.f("uq_consents_member_id_partner_id_purpose_version"),
        ),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("profile_collections")
