"""The demo data looks like a real programme's: growth value follows the points earned, points
left after redemptions and expiry are in believable proportion, members spread over the tiers,
each member's phone number and partner ids carry its member number; the ledger verifies."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from tally.config import Settings
from tally.db.session import Database
from tally.demo import loader
from tally.engagement.models import SignInStreak
from tally.events.models import RuleCounter, StoredEvent
from tally.ledger.models import EntryKind, JournalEntry, Lot, Posting, Wallet
from tally.ledger.verify import verify
from tally.members.models import MemberIdentity, MemberProfile
from tally.tiers.models import GrowthEntry, MemberTier

MEMBERS = 40


@pytest.fixture
def demo(database: Database, settings: Settings) -> Database:
    with database.write() as session:
        summary = loader.load(session, settings, member_count=MEMBERS)
    assert summary.members == MEMBERS
    return database


def points_moved(database: Database, kind: EntryKind) -> int:
    """What entries of ``kind`` took from (negative) or gave to members' available points."""
    with database.read() as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(Posting.amount), 0))
                .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                .where(JournalEntry.kind == kind, Posting.account.like("member:%:available"))
            )
            or 0
        )


def test_phone_numbers_and_partner_ids_carry_the_member_number(demo: Database) -> None:
    with demo.read() as session:
        profiles = dict(session.execute(select(MemberProfile.member_id, MemberProfile.phone)).all())
        identities = session.execute(
            select(MemberIdentity.member_id, MemberIdentity.namespace, MemberIdentity.external_id)
        ).all()
    assert len(profiles) >= MEMBERS
    for member_id in range(1, MEMBERS + 1):
        assert profiles[member_id] == f"138{member_id:08d}"
    expected = {"phone": "138{:08d}", "shop": "shop-{:05d}", "food": "f{:06d}"}
    demo_ids = [row for row in identities if row.namespace in expected and row.member_id <= MEMBERS]
    assert {row.namespace for row in demo_ids} == set(expected)
    for member_id, namespace, external_id in demo_ids:
        assert external_id == expected[namespace].format(member_id)


def test_growth_follows_the_points_earned(demo: Database) -> None:
    """Outside the campaigns (whose growth is their own rule's), growth follows points."""
    replayed = JournalEntry.reference.not_like("event:%")
    with demo.read() as session:
        earned = dict(
            session.execute(
                select(JournalEntry.member_id, func.sum(Lot.points))
                .join(Lot, Lot.entry_id == JournalEntry.id)
                .where(JournalEntry.kind == EntryKind.EARN, replayed)
                .group_by(JournalEntry.member_id)
            ).all()
        )
        growth = dict(
            session.execute(
                select(GrowthEntry.member_id, func.sum(GrowthEntry.points))
                .join(JournalEntry, JournalEntry.id == GrowthEntry.journal_entry_id)
                .where(GrowthEntry.points > 0, replayed)
                .group_by(GrowthEntry.member_id)
            ).all()
        )
    demo_members = {member: points for member, points in earned.items() if member <= MEMBERS}
    assert demo_members
    for member, points in demo_members.items():
        assert growth.get(member) == points, member


def test_the_last_fortnight_of_shop_purchases_went_through_the_campaigns(
    demo: Database,
) -> None:
    with demo.read() as session:
        purchases = session.scalars(select(StoredEvent).where(StoredEvent.type == "purchase")).all()
        refunds = session.scalars(select(StoredEvent).where(StoredEvent.type == "refund")).all()
        budget = session.get(RuleCounter, "budget:HIGH_FREQUENCY")
        assert verify(session).ok
    assert len(purchases) > 100
    assert refunds
    applied = {rule["campaign"] for event in purchases for rule in event.outcome["rules"]}
    assert applied >= {"BASE", "BEVERAGES", "WEEKEND", "HIGH_FREQUENCY"}
    assert all(
        event.points == sum(r["points"] for r in event.outcome["rules"]) for event in purchases
    )
    assert budget is not None
    assert 0 < budget.used <= 1_000_000
    assert all(refund.points < 0 and refund.outcome["refund_of"] for refund in refunds)


def test_points_issued_redeemed_expired_and_left_are_in_believable_proportion(
    demo: Database,
) -> None:
    issued = points_moved(demo, EntryKind.EARN)
    redeemed = -points_moved(demo, EntryKind.REDEEM)
    expired = -points_moved(demo, EntryKind.EXPIRE)
    with demo.read() as session:
        available, held = session.execute(
            select(func.sum(Wallet.available), func.sum(Wallet.held))
        ).one()
        tiers = Counter(session.scalars(select(MemberTier.tier_code)).all())
        report = verify(session)
    assert report.ok, report.problems

    assert issued > MEMBERS * 1_000  # a year of bills and purchases at one point a yuan
    assert 0.2 <= redeemed / issued <= 0.6
    assert expired > 0
    assert expired / issued <= 0.2
    assert 0.3 <= (available + held) / issued <= 0.75
    assert len(tiers) >= 3  # spread over the ladder by how much members spend
    assert tiers.most_common(1)[0][0] in {"BRONZE", "SILVER", "GOLD"}  # a pyramid


def test_the_demo_signs_members_in_day_by_day_and_shares_within_the_weekly_cap(
    demo: Database,
) -> None:
    with demo.read() as session:
        sign_ins = session.scalars(select(StoredEvent).where(StoredEvent.type == "sign_in")).all()
        shares = session.scalars(select(StoredEvent).where(StoredEvent.type == "share")).all()
        streaks = session.scalars(select(SignInStreak)).all()
        assert verify(session).ok
    assert sign_ins
    assert {event.source for event in sign_ins} == {"tally"}
    assert all(event.points >= 5 for event in sign_ins)  # each its day's first
    assert max(streak.streak for streak in streaks) >= 7
    assert any("STREAK" in {r["campaign"] for r in e.outcome["rules"]} for e in sign_ins)
    rewarded: dict[tuple[int, str], int] = {}
    for share in shares:
        for key in share.outcome["consumption"]:
            rewarded[share.member_id, key] = rewarded.get((share.member_id, key), 0) + 1
    assert rewarded
    assert max(rewarded.values()) <= 3


def test_the_mall_has_a_catalog_of_every_kind_and_orders_in_each_state(demo: Database) -> None:
    from pathlib import Path

    import tally
    from tally.flows import mall_orders
    from tally.mall import service as catalog
    from tally.mall.domain import ItemKind
    from tally.mall.models import Code

    static = Path(tally.__file__).parent / "web" / "static"
    with demo.read() as session:
        items = catalog.list_managed(session, catalog.OPERATOR)
        orders = mall_orders.list_orders(session, mall_orders.Actor(is_operator=True)).orders
        free_codes = session.scalar(
            select(func.count()).select_from(Code).where(Code.order_id.is_(None))
        )
    assert len(items) >= 12
    assert {item.kind for item in items} == set(ItemKind) - {ItemKind.COUPON}
    for item in items:
        assert set(item.names) == {"zh-CN", "en"}, item.code
        assert item.images, item.code
        for image in item.images:
            assert image.startswith("/static/mall/"), image
            assert (static / image.removeprefix("/static/")).is_file(), image
    by_code = {item.code: item for item in items}
    assert by_code["VIDEO-MONTH"].low_water is not None
    assert by_code["VIDEO-MONTH"].stock == free_codes > 0
    assert by_code["POWER-BANK"].tier_points
    assert by_code["BLACK-GOLD-DINNER"].is_exclusive
    assert by_code["HEADPHONES"].cash_minor_units
    assert by_code["VIP88-CARD"].plan_code == "VIP88"
    assert by_code["SPA"].kind is ItemKind.BOOKING
    now = max(order.order.created_at for order in orders)
    sales = [catalog.sale_of(item) for item in items if catalog.sale_of(item) is not None]
    assert any(sale.starts_at <= now < sale.ends_at for sale in sales if sale)  # in progress
    assert any(now < sale.starts_at for sale in sales if sale)  # starting soon
    statuses = Counter(order.status for order in orders)
    assert {"processing", "shipped", "completed", "awaiting_payment", "refunded"} <= set(statuses)
    shipped = [order.order for order in orders if order.status == "shipped"]
    assert all(order.tracking_number for order in shipped)
    assert any(order.codes for order in orders)
