"""Flash sales over the partner API, on SQLite and PostgreSQL (ADR 29): once an item's sale is
sold out or not open, the next attempts are answered reading only (nothing written, not even
the key's record), never a wrong ``sold_out`` while stock remains, and ``limit_reached``
exact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state, issue_key, tolerant_client
from sqlalchemy import func, select

from conftest import Api, make_partner
from support.mall import Mall, open_mall
from tally.db.session import Database
from tally.idempotency.models import IdempotencyRecord
from tally.kit.clock import utcnow
from tally.mall.flash import BOARD
from tally.mall.models import Item, Order

NOW = utcnow()


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


@pytest.fixture
def api(app: Any, database: Database, mall: Mall) -> Iterator[Api]:
    key = make_partner(database, "MOBILE", "mall,catalog,members,read", operator_channel=True)
    app.state.clock = lambda: CLOCK[0]
    CLOCK[0] = NOW
    with tolerant_client(app) as client:
        yield Api(client, key)
    BOARD.clear("FLASH")


CLOCK = [NOW]


def sale(stock: int, starts: datetime, hours: int = 2) -> dict[str, Any]:
    return {
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=hours)).isoformat(),
        "points": 10,
        "stock": stock,
        "per_member_limit": 1,
    }


def flash_item(mall: Mall, stock: int, starts: datetime) -> None:
    mall.item("FLASH", "donation", 100, sale=sale(stock, starts))


def order(api: Api, member: int, key: str | None = None) -> Any:
    return api.post(f"/v1/members/{member}/orders", {"item": "FLASH"}, idempotency_key=key)


def records(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


def sale_stock(database: Database) -> int | None:
    with database.read() as session:
        return session.scalar(select(Item.sale_stock).where(Item.code == "FLASH"))


def test_sold_out_is_answered_reading_only_and_stock_put_back_sells_again(
    api: Api, mall: Mall, database: Database
) -> None:
    flash_item(mall, 2, NOW - timedelta(minutes=1))
    buyers = [mall.member(100, name=f"fs{index}") for index in range(4)]
    assert order(api, buyers[0]).status_code == 201
    assert order(api, buyers[1]).status_code == 201
    assert_problem(order(api, buyers[2]), 409, "sold_out")  # the writer's answer
    assert BOARD.is_marked("FLASH")
    before, keys = db_state(database), records(database)
    for member in buyers[2:]:
        assert_problem(order(api, member), 409, "sold_out")
    assert_problem(order(api, buyers[0]), 409, "sold_out")  # the item's answer comes first
    assert db_state(database) == before
    assert records(database) == keys  # nothing written, not even the keys' answers

    # Stock back (the operator raises the sale's stock): the board never answers sold_out.
    response = api.client.patch(
        "/v1/mall/items/FLASH",
        json={"sale": sale(1, NOW - timedelta(minutes=1))},
        headers=api.key.headers("raise-stock"),
    )
    assert response.status_code == 200, response.text
    assert order(api, buyers[2]).status_code == 201
    assert sale_stock(database) == 0
    assert mall.balance(buyers[2]) == 90
    assert mall.count(Order) == 3


def test_limit_reached_while_stock_remains_is_exact(api: Api, mall: Mall) -> None:
    flash_item(mall, 5, NOW - timedelta(minutes=1))
    member = mall.member(100, name="once")
    other = mall.member(100, name="other")
    assert order(api, member).status_code == 201
    assert_problem(order(api, member), 409, "limit_reached")
    assert BOARD.is_marked("FLASH")
    assert_problem(order(api, member), 409, "limit_reached")  # read-only now
    assert order(api, other).status_code == 201  # stock remains: the writer sells it
    assert mall.count(Order) == 2
    assert mall.balance(member) == 90


def test_a_key_used_before_replays_its_order_not_sold_out(
    api: Api, mall: Mall, database: Database
) -> None:
    flash_item(mall, 1, NOW - timedelta(minutes=1))
    first, second = mall.member(100, name="k1"), mall.member(100, name="k2")
    bought = order(api, first, key="bought-once")
    assert bought.status_code == 201
    assert_problem(order(api, second), 409, "sold_out")
    again = order(api, first, key="bought-once")
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == bought.json()["id"]


def test_before_and_after_the_window_reading_only(api: Api, mall: Mall, database: Database) -> None:
    starts = NOW + timedelta(hours=1)
    flash_item(mall, 3, starts)
    member = mall.member(100, name="early")
    problem = assert_problem(order(api, member), 409, "sale_not_open")
    assert problem["starts_at"] == starts.isoformat()
    before, keys = db_state(database), records(database)
    assert_problem(order(api, member), 409, "sale_not_open")
    assert (db_state(database), records(database)) == (before, keys)
    CLOCK[0] = starts  # the sale opens: the check sees it at once
    assert order(api, member).status_code == 201
    CLOCK[0] = starts + timedelta(hours=2)  # and closes
    late = mall.member(100, name="late")
    assert_problem(order(api, late), 409, "sale_not_open")
    assert_problem(order(api, late), 409, "sale_not_open")
    assert sale_stock(database) == 2


def test_the_quick_path_asks_who_calls_first(api: Api, mall: Mall, database: Database) -> None:
    flash_item(mall, 1, NOW - timedelta(minutes=1))
    member, late = mall.member(100, name="w1"), mall.member(100, name="w2")
    assert order(api, member).status_code == 201
    read_only_key = issue_key(database, api.key, "read")
    BOARD.clear("FLASH")
    refused_by_writer = Api(api.client, read_only_key).post(
        f"/v1/members/{late}/orders", {"item": "FLASH"}
    )
    assert_problem(order(api, late), 409, "sold_out")
    assert BOARD.is_marked("FLASH")
    readonly = Api(api.client, read_only_key).post(f"/v1/members/{late}/orders", {"item": "FLASH"})
    assert readonly.status_code == refused_by_writer.status_code == 403
    assert readonly.json()["code"] == refused_by_writer.json()["code"]
    stranger = api.client.post(
        f"/v1/members/{late}/orders",
        json={"item": "FLASH"},
        headers={"Authorization": "Bearer tly_nope.nope", "Idempotency-Key": "k"},
    )
    assert_problem(stranger, 401, "unauthorized")
    supplier = make_partner(database, "VIDEO", "mall,read")
    assert_problem(
        Api(api.client, supplier).post(f"/v1/members/{late}/orders", {"item": "FLASH"}),
        403,
        readonly.json()["code"],
    )
