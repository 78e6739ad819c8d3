"""Offers ranked for members on both databases: from their redemptions and similar members',
within their balance, tier and plans, only what they may order now; the signals kept by
``tally jobs offers`` (idempotent, two runs at once on PostgreSQL), and the database's pairs
equal to polars'."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select

from support.mall import Mall, open_mall
from support.race import race
from tally.db.session import Database
from tally.errors import NotFound
from tally.kit.clock import utcnow
from tally.mall.models import Order
from tally.offers import jobs, repository, similarity
from tally.offers import service as offers
from tally.offers.domain import Offer
from tally.offers.models import OfferPopularity, OfferSimilarity
from tally.tiers.models import MemberTier


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


def _ranked(mall: Mall, member: int, now: datetime | None = None, limit: int = 10) -> list[Offer]:
    with mall.db.read() as session:
        return offers.ranked_for(session, member, mall.programme, now or utcnow(), limit)


def _refresh(mall: Mall, as_of: datetime | None = None) -> jobs.OffersReport:
    return jobs.refresh(mall.db.read, mall.db.write, mall.programme, as_of or utcnow())


def _codes(found: list[Offer]) -> list[str]:
    return [offer.item.code for offer in found]


def _reasons(found: list[Offer], code: str) -> list[str]:
    return next([r.key for r in offer.reasons] for offer in found if offer.item.code == code)


def _set_tier(mall: Mall, member: int, tier: str) -> None:
    with mall.db.write() as session:
        session.add(MemberTier(member_id=member, tier_code=tier, lifetime_growth=0, version=1))


def _catalog(mall: Mall) -> None:
    mall.item("BOOK1", points=100, categories=["books"])
    mall.item("BOOK2", points=100, categories=["books"])
    mall.item("TRIP", points=100, categories=["travel"])
    mall.item("FOOD", points=100, categories=["food"])
    mall.item("PRICEY", points=5_000, categories=["books"])
    mall.item("NEAR", points=2_400, categories=["food"])
    mall.item("TOP", points=100, exclusive=True)
    mall.item("PLANONLY", points=100, eligibility={"plans": ["VIP88"]})
    mall.item("GONE", points=100, stock=0)
    mall.item("ONCE", points=10, per_member_limit={"count": 1})
    mall.item("OFF", points=10, active=False)
    mall.item("SOON", points=10, starts_at=(utcnow() + timedelta(days=1)).isoformat())


def test_a_member_sees_what_they_and_similar_members_redeemed_within_their_means(
    mall: Mall,
) -> None:
    _catalog(mall)
    reader = mall.member(2_100)
    mall.place(reader, "BOOK1", now=utcnow() - timedelta(days=3))
    for _ in range(2):  # two members who redeemed BOOK1 went on to TRIP
        other = mall.member(1_000)
        mall.place(other, "BOOK1")
        mall.place(other, "TRIP")
    _refresh(mall)

    found = _ranked(mall, reader, limit=50)

    # BOOK1: its category and a repeat; TRIP: similar members; BOOK2: the category.
    assert _codes(found)[:3] == ["BOOK1", "TRIP", "BOOK2"]
    assert _reasons(found, "BOOK1")[:2] == ["you_redeemed_category:books", "you_redeemed_item"]
    assert _reasons(found, "TRIP")[0] == "similar_members:BOOK1"
    assert _reasons(found, "BOOK2")[0] == "you_redeemed_category:books"
    assert all("affordable" in _reasons(found, code) for code in ("BOOK1", "TRIP", "BOOK2"))
    # 2,000 points left: NEAR (2,400) is 400 away, PRICEY far; both after every affordable.
    assert _codes(found)[-2:] == ["NEAR", "PRICEY"]
    assert "points_to_go:400" in _reasons(found, "NEAR")
    assert found[-1].points_to_go == 3_000
    # Never an exclusive, plan-only, sold-out, inactive or future item for a BRONZE member.
    assert not {"TOP", "PLANONLY", "GONE", "OFF", "SOON"} & set(_codes(found))
    assert set(_codes(found)) == {"BOOK1", "BOOK2", "TRIP", "FOOD", "PRICEY", "NEAR", "ONCE"}
    assert _codes(_ranked(mall, reader, limit=2)) == ["BOOK1", "TRIP"]


def test_a_reached_limit_and_the_tier_decide_what_is_offered(mall: Mall) -> None:
    _catalog(mall)
    member = mall.member(1_000)
    assert "ONCE" in _codes(_ranked(mall, member, limit=50))
    mall.place(member, "ONCE")
    assert "ONCE" not in _codes(_ranked(mall, member, limit=50))

    diamond = mall.member(1_000)
    _set_tier(mall, diamond, "DIAMOND")
    found = _ranked(mall, diamond, limit=50)
    assert "TOP" in _codes(found)
    assert "exclusive:DIAMOND" in _reasons(found, "TOP")
    assert "PLANONLY" not in _codes(found)


def test_a_new_member_is_offered_what_is_popular_in_their_tier_then_overall(mall: Mall) -> None:
    _catalog(mall)
    for code, buyers, tier in (("FOOD", 3, "GOLD"), ("TRIP", 1, "GOLD"), ("BOOK2", 4, None)):
        for _ in range(buyers):
            member = mall.member(1_000)
            if tier:
                _set_tier(mall, member, tier)
            mall.place(member, code)
    _refresh(mall)
    newcomer = mall.member(1_000)
    _set_tier(mall, newcomer, "GOLD")
    found = _ranked(mall, newcomer, limit=4)
    assert _codes(found)[:3] == ["FOOD", "TRIP", "BOOK2"]
    assert _reasons(found, "FOOD")[0] == "new_member_popular:GOLD"
    assert _reasons(found, "BOOK2")[0] == "new_member_popular"  # popular overall only
    bronze = mall.member(1_000)
    assert _codes(_ranked(mall, bronze, limit=3)) == ["BOOK2", "FOOD", "TRIP"]


def test_the_job_keeps_the_signals_as_of_a_moment_and_a_second_run_changes_nothing(
    mall: Mall,
) -> None:
    _catalog(mall)
    now = utcnow()
    member, other = mall.member(1_000), mall.member(1_000)
    mall.place(member, "BOOK1", now=now - timedelta(hours=1))
    assert _reasons(_ranked(mall, member), "TRIP") == ["affordable"]  # never computed
    with mall.db.read() as session:
        assert repository.last_refresh(session) is None
    mall.place(other, "BOOK1", now=now - timedelta(hours=1))
    mall.place(other, "TRIP", now=now - timedelta(hours=1))
    before = _refresh(mall, now - timedelta(hours=2))  # as of before every order
    assert before == jobs.OffersReport(pairs=0, similarities=0, popularity=0)
    assert _reasons(_ranked(mall, member), "TRIP") == ["affordable"]

    report = _refresh(mall, now)
    # Pairs: member BOOK1; other BOOK1, TRIP. Similar: BOOK1-TRIP both ways. Popularity: two
    # items overall and in BRONZE.
    assert report == jobs.OffersReport(pairs=3, similarities=2, popularity=4)
    assert _reasons(_ranked(mall, member), "TRIP")[0] == "similar_members:BOOK1"
    kept = _kept(mall)
    assert _refresh(mall, now) == report
    assert _kept(mall) == kept
    with mall.db.read() as session:
        refreshed = repository.last_refresh(session)
        assert refreshed is not None
        assert (refreshed.as_of, refreshed.pairs) == (now, 3)
        assert jobs.preview(session, mall.programme, now) == report


def _kept(mall: Mall) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with mall.db.read() as session:
        similar = session.execute(select(OfferSimilarity).order_by("item_id", "other_id"))
        popular = session.execute(select(OfferPopularity).order_by("tier_code", "item_id"))
        return (
            [(r.item_id, r.other_id, r.similarity) for (r,) in similar],
            [(r.tier_code, r.item_id, r.members) for (r,) in popular],
        )


def test_the_kept_signals_are_those_computed_in_memory(mall: Mall) -> None:
    for code in ("A", "B", "C", "D"):
        mall.item(code, points=1)
    plan = [(0, "ABC"), (1, "AB"), (2, "BCD"), (3, "A")]
    members = [mall.member(100) for _ in plan]
    _set_tier(mall, members[2], "GOLD")
    for who, codes in plan:
        for code in codes:
            mall.place(members[who], code)
    now = utcnow()
    _refresh(mall, now)
    with mall.db.read() as session:
        pairs = repository.redeemed_pairs(
            session, now - timedelta(days=365), now, similarity.ITEMS_PER_MEMBER
        )
        ids = pairs["item_id"].unique().to_list()
        kept = similarity.signals_of(
            repository.similarity_frame(session, ids),
            repository.popularity_frame(session, ["", "GOLD", "BRONZE"]),
        )
    assert kept == similarity.signals_from_pairs(pairs, "BRONZE")
    assert kept.popularity == dict(zip(sorted(ids), [3, 3, 2, 1], strict=True))


def test_two_runs_at_once_leave_one_computation(dialect: str, mall: Mall) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time")
    _catalog(mall)
    for _ in range(3):
        member = mall.member(1_000)
        mall.place(member, "BOOK1")
        mall.place(member, "TRIP")
    now = utcnow()
    reports = race(2, lambda _index: _refresh(mall, now))
    assert reports[0] == reports[1] == jobs.OffersReport(pairs=6, similarities=2, popularity=4)
    similar, popular = _kept(mall)
    assert len(similar) == 2
    assert len(popular) == 4


def test_the_databases_pairs_are_polars_pairs(mall: Mall) -> None:
    for code in ("A", "B", "C"):
        mall.item(code, points=1)
    start = utcnow() - timedelta(days=10)
    members = [mall.member(100) for _ in range(3)]
    _set_tier(mall, members[0], "GOLD")
    plan = [(0, "A", 1), (0, "B", 2), (0, "A", 3), (1, "C", 1), (1, "A", 2), (2, "B", 4)]
    for who, code, day in plan:
        mall.place(members[who], code, now=start + timedelta(days=day))
    refunded = mall.place(members[2], "C", now=start + timedelta(days=5))
    with mall.db.write() as session:
        session.get(Order, refunded).payment_status = "refunded"  # type: ignore[union-attr,assignment]
    with mall.db.read() as session:
        from_sql = repository.redeemed_pairs(session, start - timedelta(days=1), utcnow(), 2)
        rows = session.execute(
            select(Order.member_id, Order.item_id, Order.created_at, MemberTier.tier_code)
            .outerjoin(MemberTier, MemberTier.member_id == Order.member_id)
            .where(Order.payment_status.in_(repository.REDEEMED))
        ).all()
    frame = pl.DataFrame(rows, schema=similarity.ORDERS_SCHEMA, orient="row")
    from_polars = similarity.member_items(frame, cap=2)
    order = ["member_id", "item_id"]
    assert from_sql.sort(order).equals(from_polars.sort(order))
    assert from_sql.height == 5  # member 0: A, B; member 1: A, C; member 2: B (C refunded)


def test_an_unknown_member_has_no_offers(mall: Mall) -> None:
    with mall.db.read() as session, pytest.raises(NotFound):
        offers.ranked_for(session, 999_999, mall.programme, utcnow(), 10)


def test_bookings_with_room_and_open_flash_sales_with_stock_are_offered(mall: Mall) -> None:
    now = utcnow()
    soon, past = (now + timedelta(days=1)).isoformat(), (now - timedelta(hours=1)).isoformat()
    slot = {"code": "AM", "starts_at": soon, "capacity": 1}
    mall.item("SPA", "booking", 50, slots=[slot])
    mall.item("GONESPA", "booking", 50, slots=[{**slot, "starts_at": past}])
    window = {"starts_at": past, "ends_at": (now + timedelta(hours=1)).isoformat()}
    mall.item("FLASH", points=500, sale={**window, "points": 20, "stock": 1})
    mall.item("FLASHGONE", points=500, sale={**window, "points": 20, "stock": 0})
    member = mall.member(100)
    found = _ranked(mall, member, now)
    assert _codes(found) == ["FLASH", "SPA"]  # both affordable; the sale's perk first
    assert found[0].points == 20
    assert _reasons(found, "FLASH")[0].startswith("flash_sale:")
    mall.place(member, "SPA", slot="AM")
    mall.place(mall.member(100), "FLASH")
    assert _codes(_ranked(mall, member, utcnow())) == []  # the slot is full, the sale sold out
