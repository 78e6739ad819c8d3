"""Who collected a member's profile, and the member's consents to share it: append-only rows;
and the partners a member recently showed its member code to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, str_enum
from tally.privacy.domain import CollectionMethod, Purpose


class ProfileCollection(Base):
    """A partner collected a member's data: by enrolling it, or by linking an identity.

    One row per member, partner, method and namespace: the first time it happened.
    """

    __tablename__ = "profile_collections"
    __table_args__ = (UniqueConstraint("member_id", "partner_id", "method", "namespace"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    method: Mapped[CollectionMethod] = mapped_column(str_enum(CollectionMethod))
    namespace: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Consent(Base):
    """One act of a member: granting or withdrawing a partner's use of its profile for a purpose.

    Rows are never changed; the latest ``version`` of a (member, partner, purpose) is the
    standing state. ``version`` is unique per triple, so two concurrent acts cannot both
    follow the same state. ``recorded_by`` is the staff member who recorded an act in the
    console (channel ``console``) or merged the member it came from (channel ``merge``).
    """

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("member_id", "partner_id", "purpose", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"))
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose))
    version: Mapped[int] = mapped_column(Integer)
    is_granted: Mapped[bool] = mapped_column()
    channel: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff_users.id"))


class Presentation(Base):
    """A member showed its member code to a partner (the partner's look-up resolved it): that
    partner may spend the member's points until ``valid_until``, the end of the checkout
    window. One row per member and partner, the latest presentation."""

    __tablename__ = "member_presentations"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("partners.id"), primary_key=True)
    presented_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
