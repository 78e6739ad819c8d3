"""Mall orders on both databases: place, pay, lapse, ship, deliver, cancel and refund, each
kind's fulfilment, and refusals that write nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from support.mall import POLICY, Mall, open_mall
from tally.db.session import Database
from tally.errors import (
    DuplicateReference,
    InsufficientPoints,
    LimitReached,
    NotAvailable,
    NotEligible,
    OrderRefunded,
    PaymentMismatch,
    SaleNotOpen,
    SoldOut,
    ValidationFailed,
)
from tally.flows import mall_jobs
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.ledger.models import Hold
from tally.mall import repository
from tally.mall import service as catalog
from tally.mall.models import Item, LimitCounter, Order, OrderEvent
from tally.outbox.models import OutboxEvent
from tally.programme.domain import Money


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


def _order(mall: Mall, order_id: object) -> Order:
    with mall.db.read() as session:
        row = session.get(Order, order_id)
        assert row is not None
        session.expunge(row)
        return row


def _stock(mall: Mall, code: str) -> int | None:
    with mall.db.read() as session:
        item = repository.item_by_code(session, code)
        assert item is not None
        return item.stock


def _nothing_written(mall: Mall, member_id: int, points: int, code: str, stock: int | None) -> None:
    assert mall.count(Order) == 0
    assert mall.count(OrderEvent) == 0
    assert mall.count(LimitCounter) == 0
    assert mall.count(Hold) == 0
    assert mall.balance(member_id) == points
    assert _stock(mall, code) == stock


def test_a_points_only_order_is_paid_at_once_and_a_refund_gives_all_back(mall: Mall) -> None:
    member = mall.member(1000)
    mall.item("DONATE", "donation", 300, stock=5)
    order_id = mall.place(member, "DONATE", 2)
    row = _order(mall, order_id)
    assert (row.payment_status.value, row.fulfilment_status.value) == ("paid", "delivered")
    assert row.points == 600
    assert row.capture_entry_id is not None
    assert mall.balance(member) == 400
    assert _stock(mall, "DONATE") == 3
    kinds = [e.kind for e in _events(mall, order_id)]
    assert kinds == ["placed", "paid", "completed"]
    with mall.db.write() as session:
        flow.refund(session, mall.app, order_id, utcnow(), POLICY)
    row = _order(mall, order_id)
    assert row.payment_status.value == "refunded"
    assert row.refunded_points == 600
    assert mall.balance(member) == 1000
    assert _stock(mall, "DONATE") == 5
    types = _outbox_types(mall)
    assert types.count("order.placed") == 1
    assert types.count("order.refunded") == 1


def _events(mall: Mall, order_id: object) -> list[OrderEvent]:
    with mall.db.read() as session:
        events = repository.events_of(session, order_id)  # type: ignore[arg-type]
        for event in events:
            session.expunge(event)
        return events


def _outbox_types(mall: Mall) -> list[str]:
    from sqlalchemy import select

    with mall.db.read() as session:
        return list(session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)))


def test_refusals_write_nothing(mall: Mall) -> None:
    member = mall.member(500)
    mall.item("BIG", "donation", 600, stock=3)
    with pytest.raises(InsufficientPoints):
        mall.place(member, "BIG")
    _nothing_written(mall, member, 500, "BIG", 3)
    mall.item("NONE", "donation", 10, stock=0)
    with pytest.raises(SoldOut):
        mall.place(member, "NONE")
    _nothing_written(mall, member, 500, "NONE", 0)
    mall.item("TOP", "donation", 10, exclusive=True)
    with pytest.raises(NotEligible):
        mall.place(member, "TOP")
    mall.item("GOLDONLY", "donation", 10, eligibility={"tiers": ["GOLD"]})
    with pytest.raises(NotEligible):
        mall.place(member, "GOLDONLY")
    later = (utcnow() + timedelta(days=1)).isoformat()
    mall.item("SOON", "donation", 10, starts_at=later)
    with pytest.raises(SaleNotOpen):
        mall.place(member, "SOON")
    mall.item("BOX", "physical", 10)
    with pytest.raises(ValidationFailed):
        mall.place(member, "BOX")  # no address
    mall.item("CPN", "coupon", 10)
    with pytest.raises(NotAvailable):
        mall.place(member, "CPN")
    with pytest.raises(NotAvailable):
        mall.place(member, "BOX", address={"line": "1 Road"}, coupon="TENOFF")
    _nothing_written(mall, member, 500, "BOX", None)


def test_per_member_limit_counts_and_lapses_give_it_back(mall: Mall) -> None:
    member = mall.member(10_000)
    mall.item(
        "ONCE",
        "donation",
        10,
        price={"cash": {"amount": "1.00", "currency": "CNY"}},
        per_member_limit={"count": 2, "period": "month"},
    )
    now = utcnow()
    first = mall.place(member, "ONCE", 2, now=now)
    with pytest.raises(LimitReached):
        mall.place(member, "ONCE", 1, now=now)
    row = _order(mall, first)
    assert row.payment_status.value == "pending"
    assert row.cash_minor_units == 200
    assert mall.balance(member) == 10_000 - 20
    report = mall_jobs.lapse_unpaid(mall.db.write, row.pay_by - timedelta(seconds=1), POLICY)
    assert report.done == 0
    report = mall_jobs.lapse_unpaid(mall.db.write, row.pay_by, POLICY)
    assert report.done == 1
    again = mall_jobs.lapse_unpaid(mall.db.write, row.pay_by, POLICY)
    assert again.done == 0
    row = _order(mall, first)
    assert (row.payment_status.value, row.fulfilment_status.value) == ("lapsed", "cancelled")
    assert mall.balance(member) == 10_000
    mall.place(member, "ONCE", 2, now=row.pay_by)


def test_cash_payment_is_exact_and_idempotent_by_reference(mall: Mall) -> None:
    member = mall.member(1000)
    mall.item("MIX", "ticket", 100, price={"cash": {"amount": "12.50", "currency": "CNY"}})
    order_id = mall.place(member, "MIX", 2)
    now = utcnow()
    with mall.db.write() as session, pytest.raises(PaymentMismatch):
        flow.pay(session, mall.app, order_id, "pay-1", Money(1250, "CNY"), now, POLICY)
    with mall.db.write() as session:
        _row, created = flow.pay(
            session, mall.app, order_id, "pay-1", Money(2500, "CNY"), now, POLICY
        )
    assert created
    with mall.db.write() as session:
        _row, created = flow.pay(
            session, mall.app, order_id, "pay-1", Money(2500, "CNY"), now, POLICY
        )
    assert not created
    row = _order(mall, order_id)
    assert (row.payment_status.value, row.fulfilment_status.value) == ("paid", "delivered")
    assert row.ticket_code is not None
    assert len(row.ticket_code) == 16
    assert mall.balance(member) == 800
    other = mall.place(member, "MIX", 1)
    with mall.db.write() as session, pytest.raises(DuplicateReference):
        flow.pay(session, mall.app, other, "pay-1", Money(1250, "CNY"), now, POLICY)


def test_digital_codes_are_delivered_once_and_the_pool_warns_when_low(mall: Mall) -> None:
    member = mall.member(10_000)
    mall.item("CODES", "digital_code", 10, low_water=2)
    with mall.db.write() as session:
        added, free = catalog.upload_codes(
            session, catalog.OPERATOR, "CODES", ["A1", "A2", "A2", "", "A3", "A4"], utcnow()
        )
    assert (added, free) == (4, 4)
    assert _stock(mall, "CODES") == 4
    first = mall.place(member, "CODES", 2)
    second = mall.place(member, "CODES", 1)
    with mall.db.read() as session:
        codes = repository.codes_of(session, [first, second])
    assert codes[first] == ["A1", "A2"]
    assert codes[second] == ["A3"]
    assert _outbox_types(mall).count("mall.codes_low") == 1
    mall.place(member, "CODES", 1)
    with pytest.raises(SoldOut):
        mall.place(member, "CODES", 1)


def test_physical_ship_deliver_and_the_48_hour_refund(mall: Mall) -> None:
    member = mall.member(1000)
    mall.item("MUG", "physical", 100, stock=10)
    address = {"name": "Li Lei", "line": "1 Road", "city": "Shanghai"}
    shipped = mall.place(member, "MUG", 1, address=address)
    late = mall.place(member, "MUG", 1, address=address)
    with mall.db.write() as session:
        flow.ship(session, mall.app, shipped, "SF", "SF123", utcnow())
    row = _order(mall, late)
    assert row.ship_by is not None
    assert row.ship_by - row.paid_at == timedelta(hours=48)
    assert (
        mall_jobs.refund_late(mall.db.write, row.ship_by - timedelta(seconds=1), POLICY).done == 0
    )
    assert mall_jobs.refund_late(mall.db.write, row.ship_by, POLICY).done == 1
    assert mall_jobs.refund_late(mall.db.write, row.ship_by, POLICY).done == 0
    row = _order(mall, late)
    assert (row.payment_status.value, row.fulfilment_status.value) == ("refunded", "cancelled")
    assert mall.balance(member) == 900
    assert _stock(mall, "MUG") == 9
    with mall.db.write() as session, pytest.raises(OrderRefunded):
        flow.ship(session, mall.app, late, "SF", "SF999", utcnow())
    with mall.db.write() as session:
        flow.deliver(session, mall.app, shipped, utcnow())
    assert _order(mall, shipped).fulfilment_status.value == "delivered"


def test_partial_refunds_by_quantity_then_the_rest(mall: Mall) -> None:
    member = mall.member(1000)
    mall.item("PEN", "physical", 100, stock=10)
    order_id = mall.place(member, "PEN", 3, address={"line": "x"})
    with mall.db.write() as session:
        flow.refund(session, mall.app, order_id, utcnow(), POLICY, quantity=1)
    row = _order(mall, order_id)
    assert row.payment_status.value == "part_refunded"
    assert row.refunded_points == 100
    assert mall.balance(member) == 800
    assert _stock(mall, "PEN") == 8
    with mall.db.write() as session:
        flow.refund(session, mall.app, order_id, utcnow(), POLICY)
    row = _order(mall, order_id)
    assert row.payment_status.value == "refunded"
    assert row.refunded_points == 300
    assert mall.balance(member) == 1000
    assert _stock(mall, "PEN") == 10


def test_partner_benefit_is_requested_of_its_supplier_and_confirmed(mall: Mall) -> None:
    member = mall.member(1000)
    mall.item("VIPMONTH", "partner_benefit", 200, supplier=True)
    order_id = mall.place(member, "VIPMONTH")
    row = _order(mall, order_id)
    assert row.fulfilment_status.value == "requested"
    assert row.accepting_partner_id == mall.supplier_id
    assert "order.fulfilment_requested" in _outbox_types(mall)
    with mall.db.write() as session, pytest.raises(Exception, match="does not exist"):
        flow.deliver(session, flow.Actor(partner_id=mall.operator_id + 999), order_id, utcnow())
    with mall.db.write() as session:
        flow.deliver(session, mall.supplier, order_id, utcnow())
    assert _order(mall, order_id).fulfilment_status.value == "delivered"


def test_booking_slots_fill_up(mall: Mall) -> None:
    member = mall.member(1000)
    start = (utcnow() + timedelta(days=3)).isoformat()
    mall.item("SPA", "booking", 50, slots=[{"code": "AM", "starts_at": start, "capacity": 2}])
    mall.place(member, "SPA", 2, slot="AM")
    with pytest.raises(SoldOut):
        mall.place(member, "SPA", 1, slot="AM")
    assert mall.balance(member) == 900


def test_a_flash_sale_has_its_own_price_stock_and_limit(mall: Mall) -> None:
    member = mall.member(1000)
    now = utcnow()
    mall.item(
        "FLASH",
        "donation",
        100,
        stock=100,
        sale={
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(minutes=10)).isoformat(),
            "points": 10,
            "stock": 2,
            "per_member_limit": 1,
        },
    )
    order_id = mall.place(member, "FLASH", 1, now=now)
    assert _order(mall, order_id).points == 10
    with pytest.raises(LimitReached):
        mall.place(member, "FLASH", 1, now=now)
    with pytest.raises(SaleNotOpen):
        mall.place(member, "FLASH", 1, now=now + timedelta(minutes=11))
    with mall.db.read() as session:
        item = session.get(Item, _item_id(mall, "FLASH"))
        assert item is not None
        assert item.sale_stock == 1
        assert item.stock == 100


def _item_id(mall: Mall, code: str) -> int:
    with mall.db.read() as session:
        item = repository.item_by_code(session, code)
        assert item is not None
        return item.id
