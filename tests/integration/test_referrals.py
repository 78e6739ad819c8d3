"""Referral: a new member enrolled with a code is linked to its referrer; its first qualifying
event raises referral_completed for both in the same transaction, rewarded by the programme's
campaign within its monthly times cap; abuse refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from support.event_programme import CAMPAIGNS, apply_campaigns
from support.race import race
from tally.audit.models import AuditEntry
from tally.config import Settings
from tally.db.session import Database
from tally.engagement.models import Referral
from tally.errors import ReferralRefused, ValidationFailed
from tally.events.models import StoredEvent
from tally.flows import enrolment, event_intake, referrals
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify
from tally.members import service as members
from tally.members.models import Member
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Programme

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
REFERRAL = {
    "code": "REFERRAL",
    "names": {"zh-CN": "邀请", "en": "Referral"},
    "on": ["referral_completed"],
    "caps": [{"per": "member", "period": "month", "times": 2}],
    "rules": [
        {"code": "referrer", "when": "event.attributes.role == 'referrer'",
         "award": {"points": 200}},
        {"code": "referred", "when": "event.attributes.role == 'referred'",
         "award": {"points": 100}},
    ],
}  # fmt: skip


class World:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.programme: Programme = apply_campaigns(database, [*CAMPAIGNS, REFERRAL])
        self.policy: Policy = policy_for(self.programme, settings)
        with database.write() as session:
            self.shop = partners.create_partner(session, "SHOP", "Shop", NOW).id
            self.ann = enrolment.enrol(session, Identity("phone", "13900000001"), {}, NOW)[0]
            self.code = referrals.code_of(session, self.ann, NOW)

    def refer(self, phone: str, code: str | None = None) -> int:
        with self.database.write() as session:
            return referrals.enrol_referred(
                session, Identity("phone", phone), {}, code or self.code, NOW, actor="system"
            )[0]

    def buy(self, member_id: int, event_id: str, at: datetime = NOW) -> list[Any]:
        event = Reported(
            "purchase", event_id, member_id, at, amount=Decimal("10.00"), currency="CNY"
        )
        with self.database.write() as session:
            return event_intake.process(
                session,
                Origin(partner_id=self.shop),
                [event],
                at,
                self.policy,
                self.programme,
                event_intake.book_for(self.programme),
            )

    def raised(self) -> list[tuple[int, str, int]]:
        with self.database.read() as session:
            rows = session.execute(
                select(StoredEvent.member_id, StoredEvent.event_id, StoredEvent.points)
                .where(StoredEvent.source == "tally")
                .order_by(StoredEvent.event_id)
            )
            return [(int(m), str(e), int(p)) for m, e, p in rows]


@pytest.fixture
def world(database: Database, settings: Settings) -> World:
    return World(database, settings)


def test_the_first_qualifying_event_rewards_both_members_once(world: World) -> None:
    bob = world.refer("13900000002", f" {world.code[:5].lower()}-{world.code[5:]} ")

    first = world.buy(bob, "b-1")[0]
    world.buy(bob, "b-2")

    assert isinstance(first, Processed)
    assert world.raised() == [
        (bob, f"tally:referral:{bob}:referred", 100),
        (world.ann, f"tally:referral:{bob}:referrer", 200),
    ]
    with world.database.read() as session:
        referral = session.get(Referral, bob)
        assert referral is not None
        assert (referral.referrer_id, referral.completed_by, referral.refused) == (
            world.ann,
            "b-1",
            None,
        )
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["member.referred", "member.referral_completed"]
        assert verify(session).ok


def test_a_referrer_is_rewarded_at_most_the_times_of_the_month(world: World) -> None:
    referred = [world.refer(f"1390000001{n}") for n in range(3)]
    for n, member in enumerate(referred):
        world.buy(member, f"b-{n}")
    ann = [points for member, _, points in world.raised() if member == world.ann]
    assert sorted(ann) == [0, 200, 200]  # the third is capped
    assert [p for m, _, p in world.raised() if m in referred] == [100, 100, 100]


def test_abuse_is_refused_and_writes_nothing(world: World, database: Database) -> None:
    with pytest.raises(ReferralRefused, match="cannot refer themselves"):
        world.refer("13900000001")  # Ann's own identity
    bob = world.refer("13900000002")
    with pytest.raises(ReferralRefused, match="Only a new member"):
        world.refer("13900000002")
    with pytest.raises(ValidationFailed, match="No member has the referral code"):
        world.refer("13900000003", "ZZZZZ-ZZZZZ")
    with pytest.raises(ValidationFailed, match="No member has the referral code"):
        world.refer("13900000003", "not a code!")
    with database.write() as session:
        members.freeze(session, world.ann, "tests", NOW)
    with pytest.raises(ReferralRefused, match="is frozen"):
        world.refer("13900000004")
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Referral)) == 1
        assert session.scalar(select(func.count()).select_from(Member)) == 2  # Ann and Bob
    assert bob


def test_a_referral_between_members_merged_together_rewards_no_one(
    world: World, database: Database
) -> None:
    bob = world.refer("13900000002")
    with database.write() as session:
        enrolment.merge(session, bob, world.ann, 1, "same person", NOW, world.programme)
    world.buy(bob, "b-1", NOW + timedelta(hours=1))
    assert world.raised() == []
    with database.read() as session:
        referral = session.get(Referral, bob)
        assert referral is not None
        assert (referral.completed_by, referral.refused) == ("b-1", "merged_together")
    with pytest.raises(ReferralRefused, match="merged into another member"):
        world.refer("13900000005")


def test_racing_first_purchases_complete_a_referral_once(dialect: str, world: World) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    bob = world.refer("13900000002")

    results = race(6, lambda i: world.buy(bob, f"b-{i}"))

    assert all(isinstance(r, list) and isinstance(r[0], Processed) for r in results), results
    assert world.raised() == [
        (bob, f"tally:referral:{bob}:referred", 100),
        (world.ann, f"tally:referral:{bob}:referrer", 200),
    ]
    with world.database.read() as session:
        assert verify(session).ok
