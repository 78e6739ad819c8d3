"""A rule's ``award: {coupon: CODE}``: the code goes into the member's wallet in the event's
transaction, once per event and rule; the outcome lists it; a dry run only names it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.config import Settings
from tally.coupons import service as coupons
from tally.coupons.domain import Kind
from tally.coupons.models import Coupon
from tally.db.session import Database
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.outbox.models import OutboxEvent
from tally.partners import service as partners
from tally.programme.domain import Programme

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
WELCOME: dict[str, Any] = {
    "code": "GIFT",
    "names": {"zh-CN": "首单礼券", "en": "First-order coupon"},
    "on": ["purchase"],
    "rules": [{"code": "coupon", "award": {"coupon": "WELCOME10"}}],
}


@pytest.fixture
def world(database: Database, settings: Settings) -> tuple[Programme, int]:
    programme = apply_campaigns(database, [*CAMPAIGNS, WELCOME])
    with database.write() as session:
        return programme, partners.create_partner(session, "SHOP", "Shop", NOW).id


def _run(
    database: Database,
    settings: Settings,
    world: tuple[Programme, int],
    sent: list[Reported],
    *,
    write: bool = True,
) -> list[Any]:
    programme, partner_id = world
    with database.write() as session:
        return event_intake.process(
            session,
            Origin(partner_id=partner_id),
            sent,
            NOW,
            policy_for(programme, settings),
            programme,
            event_intake.book_for(programme),
            write=write,
        )


def _purchase(event_id: str, member_id: int) -> Reported:
    return Reported(type="purchase", event_id=event_id, member_id=member_id, occurred_at=NOW,
                    amount=Decimal("20.00"), currency="CNY")  # fmt: skip


@pytest.fixture
def member(database: Database, world: tuple[Programme, int]) -> int:
    with database.write() as session:
        coupons.create_template(
            session,
            coupons.TemplateSpec("WELCOME10", Kind.AMOUNT, 1000, {"zh-CN": "十元", "en": "10 off"}),
            "CNY",
            NOW,
        )
        return enrol(session, Identity("phone", "13900000001"), {}, NOW)[0]


def _codes(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Coupon)) or 0)


def test_a_rule_issues_a_coupon_with_the_event_once(
    database: Database, settings: Settings, world: tuple[Programme, int], member: int
) -> None:
    (done,) = _run(database, settings, world, [_purchase("p-1", member)])
    (again,) = _run(database, settings, world, [_purchase("p-1", member)])

    assert isinstance(done, Processed)
    assert isinstance(again, Processed)
    rule = next(item for item in done.outcome["rules"] if item["campaign"] == "GIFT")
    assert rule["coupon"] == "WELCOME10"
    assert rule["points"] == 0
    (issued,) = done.outcome["coupons"]
    assert issued["template"] == "WELCOME10"
    assert issued["refused"] is None
    assert again.repeat
    assert _codes(database) == 1
    with database.read() as session:
        (item,) = coupons.wallet(session, member, NOW)
        assert (item.coupon.id, item.coupon.source.value, item.state) == (
            issued["coupon_id"],
            "rule",
            "valid",
        )
        kinds = session.scalars(
            select(OutboxEvent.type).where(OutboxEvent.member_id == member)
        ).all()
    assert "coupon.issued" in kinds


def test_a_dry_run_names_the_coupon_and_issues_nothing(
    database: Database, settings: Settings, world: tuple[Programme, int], member: int
) -> None:
    (dry,) = _run(database, settings, world, [_purchase("p-2", member)], write=False)

    assert isinstance(dry, Processed)
    assert dry.stored_id is None
    assert [r["coupon"] for r in dry.outcome["rules"] if r["coupon"]] == ["WELCOME10"]
    assert "coupons" not in dry.outcome
    assert _codes(database) == 0


def test_an_unknown_template_is_reported_and_the_event_still_counts(
    database: Database, settings: Settings, world: tuple[Programme, int]
) -> None:
    with database.write() as session:
        member = enrol(session, Identity("phone", "13900000002"), {}, NOW)[0]

    (done,) = _run(database, settings, world, [_purchase("p-3", member)])

    assert isinstance(done, Processed)
    assert done.points == 20
    assert done.outcome["coupons"] == [
        {"template": "WELCOME10", "coupon_id": None, "refused": "unknown_template"}
    ]
    assert _codes(database) == 0
