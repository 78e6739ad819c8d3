"""The programme's paid plans sold in the mall, on both databases: eligibility checked, paid
with points, cash or both, the membership starting on payment (or renewed), refunds through the
membership lifecycle, and refusals that write nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from support.mall import POLICY, Mall, open_mall
from tally.db.session import Database
from tally.errors import Forbidden, NotEligible, ValidationFailed
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.mall import service as catalog
from tally.mall.models import Order
from tally.mall.schemas import ItemCreate
from tally.memberships import service as memberships
from tally.memberships.domain import MembershipStatus
from tally.memberships.models import Membership, MembershipPayment
from tally.programme.domain import Money
from tally.tiers import service as tiers

CASH = {"amount": "20.00", "currency": "CNY"}


@pytest.fixture
def mall(database: Database) -> Mall:
    found = open_mall(database)
    found.item("MONTHLY-CARD", "plan", points=1500, plan="MONTHLY")
    found.item("VIP88-CARD", "plan", points=2000, plan="VIP88", price={"cash": CASH})
    return found


def _grown(mall: Mall, points: int = 10_000, growth: int = 1000) -> int:
    member = mall.member(points)
    with mall.db.write() as session:
        tiers.adjust(session, member, growth, "test", utcnow(), mall.programme)
    return member


def _order(mall: Mall, order_id: uuid.UUID) -> Order:
    with mall.db.read() as session:
        row = session.get(Order, order_id)
        assert row is not None
        session.expunge(row)
        return row


def _membership(mall: Mall, membership_id: uuid.UUID | None) -> memberships.MembershipView:
    assert membership_id is not None
    with mall.db.read() as session:
        return memberships.view(session, membership_id, utcnow(), mall.programme)


def test_a_plan_paid_with_points_starts_the_membership_at_once(mall: Mall) -> None:
    member = mall.member(2000)
    now = utcnow()
    order = _order(mall, mall.place(member, "MONTHLY-CARD", now=now))
    assert (order.payment_status.value, order.fulfilment_status.value) == ("paid", "delivered")
    assert mall.balance(member) == 500

    view = _membership(mall, order.membership_id)
    assert (view.plan_code, view.status) == ("MONTHLY", MembershipStatus.ACTIVE)
    assert view.current_period_start == now
    [payment] = view.payments
    assert payment.reference == f"mall-order:{order.id}"
    assert payment.amount == Money(1500, "CNY")  # the plan's price, paid through the mall
    assert payment.partner_id == mall.operator_id
    with mall.db.read() as session:
        standing = flow.standing_of(session, member, mall.programme, utcnow())
    assert standing.plans == frozenset({"MONTHLY"})


def test_a_plan_with_a_cash_part_waits_for_it_then_starts(mall: Mall) -> None:
    member = _grown(mall)
    order_id = mall.place(member, "VIP88-CARD")
    order = _order(mall, order_id)
    assert order.payment_status.value == "pending"
    assert _membership(mall, order.membership_id).status is MembershipStatus.PENDING
    assert mall.balance(member) == 8000  # held

    paid_at = utcnow()
    with mall.db.write() as session:
        flow.pay(session, mall.app, order_id, "cash-1", Money(2000, "CNY"), paid_at, POLICY)
    view = _membership(mall, order.membership_id)
    assert view.status is MembershipStatus.ACTIVE
    assert view.current_period_start == paid_at
    assert _order(mall, order_id).fulfilment_status.value == "delivered"


def test_buying_a_plan_again_renews_the_membership(mall: Mall) -> None:
    member = mall.member(5000)
    first = _order(mall, mall.place(member, "MONTHLY-CARD"))
    end = _membership(mall, first.membership_id).current_period_end
    assert end is not None
    second = _order(mall, mall.place(member, "MONTHLY-CARD"))
    assert second.membership_id == first.membership_id
    view = _membership(mall, second.membership_id)
    assert len(view.payments) == 2
    assert view.current_period_end is not None
    assert view.current_period_end > end + timedelta(days=27)


def test_a_refund_returns_the_points_and_ends_the_membership(mall: Mall) -> None:
    member = mall.member(2000)
    order_id = mall.place(member, "MONTHLY-CARD")
    with mall.db.write() as session:
        flow.refund(session, mall.app, order_id, utcnow(), POLICY)
    order = _order(mall, order_id)
    assert order.payment_status.value == "refunded"
    assert mall.balance(member) == 2000
    view = _membership(mall, order.membership_id)
    assert view.status is MembershipStatus.REFUNDED
    assert view.payments[0].refunded == Money(1500, "CNY")


def test_a_plan_order_is_not_refunded_in_part(mall: Mall) -> None:
    member = mall.member(2000)
    order_id = mall.place(member, "MONTHLY-CARD")
    with pytest.raises(ValidationFailed, match="refunded in full"), mall.db.write() as session:
        flow.refund(session, mall.app, order_id, utcnow(), POLICY, points=100)
    assert mall.balance(member) == 500
    assert _order(mall, order_id).refunded_points == 0
    view = _membership(mall, _order(mall, order_id).membership_id)
    assert (view.status, view.payments[0].refunded) == (MembershipStatus.ACTIVE, Money(0, "CNY"))


@pytest.mark.parametrize(
    ("growth", "item", "quantity", "error"),
    [
        (999, "VIP88-CARD", 1, NotEligible),  # VIP88 needs 1000 growth value
        (1000, "MONTHLY-CARD", 2, ValidationFailed),  # one term at a time
    ],
)
def test_a_refused_plan_order_writes_nothing(
    mall: Mall, growth: int, item: str, quantity: int, error: type[Exception]
) -> None:
    member = _grown(mall, 10_000, growth)
    with pytest.raises(error):
        mall.place(member, item, quantity)
    assert mall.count(Order) == 0
    assert mall.count(Membership) == 0
    assert mall.count(MembershipPayment) == 0
    assert mall.balance(member) == 10_000


def test_only_the_operator_sells_plans_of_the_programme(mall: Mall) -> None:
    with pytest.raises(Forbidden):
        mall.item("SUPPLIED-PLAN", "plan", plan="MONTHLY", supplier=True)
    with pytest.raises(ValidationFailed, match="not a plan of the programme"):
        mall.item("NO-PLAN", "plan", plan="GOLDCARD")
    names = {"zh-CN": "卡", "en": "Card"}
    for body in (
        {"code": "A", "kind": "plan", "names": names, "price": {"points": 1}},
        {
            "code": "B",
            "kind": "donation",
            "plan": "MONTHLY",
            "names": names,
            "price": {"points": 1},
        },
    ):
        with pytest.raises(ValueError, match="a plan item names its plan"):
            ItemCreate.model_validate(body)
    with mall.db.read() as session:
        codes = [row.code for row in catalog.list_managed(session, catalog.OPERATOR)]
    assert codes == ["MONTHLY-CARD", "VIP88-CARD"]
    with mall.db.read() as session:
        assert session.scalars(select(Membership)).first() is None
