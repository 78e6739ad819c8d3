"""``member_enrolled``, raised by Tally itself: a campaign on it rewards a new member in the
enrolment's transaction, once, funded by the operator's channel; finding an existing member
raises nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from conftest import Api, PartnerKey, make_partner
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.db.session import Database
from tally.events.models import StoredEvent
from tally.ledger.verify import verify

WELCOME = {
    "code": "JOINED",
    "names": {"zh-CN": "入会礼", "en": "Welcome bonus"},
    "on": ["member_enrolled"],
    "rules": [
        {"code": "bonus", "award": {"points": 100}},
        {"code": "growth", "award": {"growth": 10}},
    ],
}


@pytest.fixture
def welcoming(database: Database) -> None:
    apply_campaigns(database, [*CAMPAIGNS, WELCOME])


def test_a_new_member_earns_the_welcome_bonus_once(
    welcoming: None, api: Api, client: Any, database: Database, partner: PartnerKey
) -> None:
    shop = Api(client, make_partner(database, "SHOP", "members,read"))
    member = shop.enrol("13600000001")
    again = shop.enrol("13600000001")  # finds the member: nothing raised

    assert again == member
    assert api.balance(member)["available"] == 100
    with database.read() as session:
        (event,) = session.scalars(select(StoredEvent)).all()
        assert (event.source, event.type, event.member_id) == ("tally", "member_enrolled", member)
        assert (event.points, event.growth) == (100, 10)
        assert event.partner_id == partner.partner_id  # the operator's channel funds it
        assert verify(session).ok


def test_without_a_campaign_on_it_nothing_is_raised(
    api: Api, database: Database, client: Any
) -> None:
    apply_campaigns(database, CAMPAIGNS)
    member = api.enrol("13600000002")

    assert api.balance(member)["available"] == 0
    with database.read() as session:
        assert session.scalars(select(StoredEvent)).all() == []
