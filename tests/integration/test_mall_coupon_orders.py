"""Coupons in the mall's orders (both databases): a coupon takes money off the points part at
the programme's point value and is used once, in the order's transaction; a refund in full, a
cancellation and a lapse give the use back; a coupon-kind item issues its template's codes into
the member's wallet when paid, once per unit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from support.mall import POLICY, Mall, open_mall
from tally.coupons import service as coupons
from tally.coupons.domain import Kind, RedemptionStatus
from tally.coupons.models import CouponRedemption
from tally.db.session import Database
from tally.errors import CouponNotApplicable, NotAvailable
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


def _template(mall: Mall, code: str, **fields: Any) -> None:
    spec = coupons.TemplateSpec(
        code=code, names={"zh-CN": "券", "en": "Coupon"}, **{"kind": Kind.AMOUNT, **fields}
    )
    with mall.db.write() as session:
        coupons.create_template(session, spec, "CNY", utcnow())


def _redemptions(mall: Mall) -> list[tuple[str, int, str]]:
    with mall.db.read() as session:
        rows = session.scalars(select(CouponRedemption).order_by(CouponRedemption.redeemed_at))
        return [(row.code, row.discount, row.status.value) for row in rows]


def test_a_coupon_takes_its_money_off_the_points_and_a_refund_gives_it_back(mall: Mall) -> None:
    member = mall.member(2_000)
    mall.item("GIFT", "donation", 1_000)
    _template(mall, "SAVE5", value=500, shared_code=True)  # ¥5.00 off

    order = mall.place(member, "GIFT", coupon="save-5")
    with mall.db.read() as session:
        placed = flow.get_order(session, mall.app, order)
    assert (placed.order.points, placed.order.discount_points) == (500, 500)  # 1 point = 1 fen
    assert mall.balance(member) == 1_500
    assert _redemptions(mall) == [("SAVE5", 500, RedemptionStatus.REDEEMED.value)]

    with mall.db.write() as session:
        flow.refund(session, mall.app, order, utcnow(), POLICY)
    assert mall.balance(member) == 2_000
    assert _redemptions(mall) == [("SAVE5", 500, RedemptionStatus.ROLLED_BACK.value)]


def test_a_coupon_that_does_not_apply_writes_nothing(mall: Mall) -> None:
    member = mall.member(2_000)
    mall.item("GIFT", "donation", 1_000)
    _template(mall, "BIGSPEND", value=500, shared_code=True, min_spend=20_000)
    with pytest.raises(CouponNotApplicable) as refused:
        mall.place(member, "GIFT", coupon="BIGSPEND")
    assert refused.value.extra["reason"] == "min_spend_not_met"
    assert mall.balance(member) == 2_000
    assert _redemptions(mall) == []


def test_a_cancelled_unpaid_order_gives_its_coupon_back(mall: Mall) -> None:
    member = mall.member(2_000)
    mall.item("PLUS", "donation", 1_000, price={"cash": {"amount": "9.90", "currency": "CNY"}})
    _template(mall, "ONCE", value=100, shared_code=True, total_limit=1)
    order = mall.place(member, "PLUS", coupon="ONCE")
    with mall.db.write() as session:
        flow.cancel(session, mall.app, order, utcnow(), POLICY)
    assert _redemptions(mall) == [("ONCE", 100, RedemptionStatus.ROLLED_BACK.value)]
    mall.place(member, "PLUS", coupon="ONCE")  # its one use is back
    with pytest.raises(CouponNotApplicable):
        mall.place(member, "PLUS", coupon="ONCE")


def test_a_coupon_item_issues_its_templates_codes_when_paid(mall: Mall) -> None:
    member = mall.member(2_000)
    _template(mall, "TENOFF", value=1_000)
    mall.item("TENOFF", "coupon", 300)
    order = mall.place(member, "TENOFF", quantity=2)
    with mall.db.read() as session:
        wallet = coupons.wallet(session, member, utcnow())
        placed = flow.get_order(session, mall.app, order)
    assert [(item.template.code, item.state) for item in wallet] == [("TENOFF", "valid")] * 2
    assert placed.order.payment_status.value == "paid"
    mall.item("NOTEMPLATE", "coupon", 300)
    with pytest.raises(NotAvailable):
        mall.place(member, "NOTEMPLATE")
