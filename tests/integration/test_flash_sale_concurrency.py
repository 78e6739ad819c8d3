"""A flash sale under real parallel connections (PostgreSQL): 50 buyers, some trying twice, for
10 units with a limit of one each: exactly 10 orders, no member twice, every other answer
``sold_out`` or ``limit_reached``; and the read-only check never says ``sold_out`` while stock
remains, whatever it races with."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from support.mall import open_mall
from support.race import race
from tally.db.session import Database
from tally.errors import LimitReached, SoldOut
from tally.flows import flash_sales
from tally.kit.clock import utcnow
from tally.mall.models import Item, LimitCounter, Order


@pytest.fixture
def pg(postgres_database: Database) -> Database:
    from conftest import _empty

    _empty(postgres_database)
    return postgres_database


def _sale(stock: int) -> dict[str, object]:
    now = utcnow()
    return {
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "points": 10,
        "stock": stock,
        "per_member_limit": 1,
    }


def test_fifty_buyers_some_twice_get_exactly_ten(pg: Database) -> None:
    mall = open_mall(pg)
    mall.item("FLASH", "donation", 100, sale=_sale(10))
    buyers = [mall.member(50, name=f"fb{index}") for index in range(50)]
    attempts = buyers + buyers[:10]  # the first ten try twice
    results = race(len(attempts), lambda index: mall.place(attempts[index], "FLASH"))
    sold = [attempts[i] for i, result in enumerate(results) if not isinstance(result, Exception)]
    assert len(sold) == 10
    assert len(set(sold)) == 10  # nobody twice
    refused = [result for result in results if isinstance(result, Exception)]
    assert all(isinstance(error, SoldOut | LimitReached) for error in refused), refused
    assert mall.count(Order) == 10
    with pg.read() as session:
        assert session.scalar(select(Item.sale_stock).where(Item.code == "FLASH")) == 0
        assert session.scalar(select(func.max(LimitCounter.count))) == 1
        assert session.scalar(select(func.sum(LimitCounter.count))) == 10
    assert sorted(mall.balance(member) for member in buyers) == [40] * 10 + [50] * 40


def test_the_read_only_check_never_says_sold_out_while_stock_remains(pg: Database) -> None:
    mall = open_mall(pg)
    mall.item("FLASH", "donation", 100, sale=_sale(20))
    buyers = [mall.member(50, name=f"rb{index}") for index in range(20)]
    checkers = [mall.member(0, name=f"rc{index}") for index in range(10)]

    def act(index: int) -> object:
        if index < len(buyers):
            return mall.place(buyers[index], "FLASH")
        with pg.read() as session:
            refusal = flash_sales.quick_refusal(session, checkers[index - 20], "FLASH", 1, utcnow())
            left = session.scalar(select(Item.sale_stock).where(Item.code == "FLASH"))
        return refusal, left

    results = race(30, act)
    assert sum(not isinstance(r, Exception) for r in results[:20]) == 20
    for refusal, left in results[20:]:  # type: ignore[misc]
        assert not isinstance(refusal, SoldOut) or left == 0
    with pg.read() as session:
        refusal = flash_sales.quick_refusal(session, checkers[0], "FLASH", 1, utcnow())
    assert isinstance(refusal, SoldOut)
