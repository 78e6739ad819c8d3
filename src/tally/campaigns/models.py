"""A campaign's pause state, and what each stored event gave each campaign it touched (the
narrow rows A/B results and the day's points are summed from)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, UTCDateTime


class CampaignState(Base):
    """Whether a campaign of the programme is paused: set from the console or the API, for
    every programme version (a pause needs no new version)."""

    __tablename__ = "campaign_states"

    campaign: Mapped[str] = mapped_column(String(64), primary_key=True)
    is_paused: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who changed it last, as the audit log names actors: ``staff:<id>`` or ``partner:<id>``.
    changed_by: Mapped[str] = mapped_column(String(64))


class CampaignOutcome(Base):
    """What one stored event gave one campaign whose rules it reached (applied or skipped for
    another reason than its type, schedule or a pause), in the member's arm; or what a refund
    took back from a campaign its purchase reached."""

    __tablename__ = "campaign_outcomes"
    __table_args__ = (
        Index("ix_campaign_outcomes_campaign_arm", "campaign", "arm"),
        Index("ix_campaign_outcomes_occurred_at_campaign", "occurred_at", "campaign"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # events.id
    campaign: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A variant's code, ``holdout``, or none: a campaign without variants.
    arm: Mapped[str | None] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    growth: Mapped[int] = mapped_column(BigInteger)
    # The event's amount in minor units of the programme's currency (none without an amount);
    # a refund's is negative, as are the points and growth it took back.
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    # A refund of an event the campaign reached: it counts against that event, not as one.
    is_refund: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
