"""The mall under real parallel connections (PostgreSQL): stock never oversold, a per-member
limit exact, the 48-hour refund exactly once with two workers."""

from __future__ import annotations

import pytest

from support.mall import POLICY, open_mall
from support.race import race
from tally.db.session import Database
from tally.errors import LimitReached, SoldOut
from tally.flows import mall_jobs
from tally.mall.models import Order, OrderEvent


@pytest.fixture
def pg(postgres_database: Database) -> Database:
    from conftest import _empty

    _empty(postgres_database)
    return postgres_database


def test_twenty_buyers_never_oversell_five(pg: Database) -> None:
    mall = open_mall(pg)
    mall.item("HOT", "donation", 10, stock=5)
    buyers = [mall.member(100, name=f"b{index}") for index in range(20)]
    results = race(20, lambda index: mall.place(buyers[index], "HOT"))
    assert sum(not isinstance(result, Exception) for result in results) == 5
    assert all(isinstance(r, SoldOut) for r in results if isinstance(r, Exception))
    assert mall.count(Order) == 5
    assert sum(mall.balance(member) for member in buyers) == 20 * 100 - 5 * 10


def test_a_member_racing_itself_stays_within_its_limit(pg: Database) -> None:
    mall = open_mall(pg)
    mall.item("ONE", "donation", 1, per_member_limit={"count": 3, "period": "day"})
    member = mall.member(1000)
    results = race(12, lambda _index: mall.place(member, "ONE"))
    assert sum(not isinstance(result, Exception) for result in results) == 3
    assert all(isinstance(r, LimitReached) for r in results if isinstance(r, Exception))
    assert mall.balance(member) == 997


def test_the_refund_job_refunds_once_with_two_workers(pg: Database) -> None:
    mall = open_mall(pg)
    mall.item("BOX", "physical", 10, stock=50)
    member = mall.member(1000)
    ids = [mall.place(member, "BOX", address={"line": "x"}) for _ in range(10)]
    with pg.read() as session:
        due = max(row.ship_by for row in (session.get(Order, item) for item in ids) if row)
    reports = race(2, lambda _index: mall_jobs.refund_late(pg.write, due, POLICY))
    assert sum(report.done for report in reports) == 10  # type: ignore[attr-defined]
    assert mall.count(OrderEvent, OrderEvent.kind == "auto_refunded") == 10
    assert mall.balance(member) == 1000
