"""A sold auction of a mall item becomes a paid mall order in its close's transaction (both
databases): one unit at the captured price, shipped within the item's deadline like any paid
order, refundable through the order; two closing workers make one order; an auction of
something the catalog does not sell makes none."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from support.mall import POLICY, Mall, open_mall
from support.race import race
from tally.auctions import jobs
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.db.session import Database
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.mall.models import Order


def _auction(mall: Mall, item_code: str) -> uuid.UUID:
    now = utcnow()
    spec = auctions.AuctionSpec(
        item_code=item_code,
        item_names={"zh-CN": "午餐", "en": "Lunch"},
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        start_points=100,
        reserve=None,
        increments=(Increment(0, 10),),
        soft_close_seconds=60,
    )
    with mall.db.write() as session:
        return auctions.create(session, mall.operator_id, spec, now, POLICY).id


def _bid(mall: Mall, auction: uuid.UUID, member: int, maximum: int) -> None:
    with mall.db.write() as session:
        auctions.bid(session, auction, member, maximum, utcnow(), POLICY)


def _orders(mall: Mall, member: int) -> list[Order]:
    with mall.db.read() as session:
        return list(session.scalars(select(Order).where(Order.member_id == member)))


def test_the_winner_gets_a_paid_order_at_the_price(database: Database) -> None:
    mall = open_mall(database)
    mall.item("LUNCH", "physical", 99_999, stock=0)  # the shop's stock is not the auction's lot
    auction = _auction(mall, "LUNCH")
    ann, bob = mall.member(5_000), mall.member(5_000)
    _bid(mall, auction, ann, 700)
    _bid(mall, auction, bob, 900)
    ended = utcnow() + timedelta(hours=2)

    reports = race(
        2, lambda _i: jobs.close_due(database.write, ended, POLICY, on_sold=flow.place_won)
    )

    assert sorted(report.sold for report in reports) == [0, 1]
    [order] = _orders(mall, bob)
    assert (order.item_code, order.quantity, order.points, order.channel) == (
        "LUNCH",
        1,
        710,
        "auction",
    )
    assert (order.payment_status.value, order.fulfilment_status.value) == ("paid", "unfulfilled")
    assert order.ship_by is not None
    assert _orders(mall, ann) == []
    assert mall.balance(bob) == 5_000 - 710

    with database.write() as session:
        flow.refund(session, mall.app, order.id, ended, POLICY)
    assert mall.balance(bob) == 5_000


def test_an_auction_of_no_mall_item_makes_no_order(database: Database) -> None:
    mall = open_mall(database)
    auction = _auction(mall, "NOT-IN-THE-MALL")
    ann = mall.member(5_000)
    _bid(mall, auction, ann, 300)
    report = jobs.close_due(
        database.write, utcnow() + timedelta(hours=2), POLICY, on_sold=flow.place_won
    )
    assert report.sold == 1
    assert _orders(mall, ann) == []
    assert mall.balance(ann) == 5_000 - 100
