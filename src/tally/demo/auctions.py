"""A demo auction: a lunch with a founder (积分竞拍企业家午餐), taking bids for the next three
days, so the member pages' auction room and the console's auctions have something to show."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.ledger.domain import Policy


def seed(session: Session, partner_id: int, now: datetime, policy: Policy) -> uuid.UUID:
    """The demo auction, sold by partner ``partner_id`` (the operator's channel); its id."""
    spec = auctions.AuctionSpec(
        item_code="LUNCH-FOUNDER",
        item_names={"zh-CN": "与创始人共进午餐", "en": "Lunch with a founder"},
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=3),
        start_points=1_000,
        reserve=20_000,
        increments=(Increment(0, 50), Increment(5_000, 200), Increment(20_000, 500)),
        soft_close_seconds=300,
        max_extension_seconds=3_600,
    )
    return auctions.create(session, partner_id, spec, now, policy).id
