"""Restocking over the partner API, on SQLite and PostgreSQL: `POST /v1/mall/items/{code}/stock`
adds to a limited stock as an increment (units sold since the caller last read the item stay
sold), once per idempotency key; a pool, an unlimited stock, another supplier's item and
impossible amounts are refused, writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from apikit import assert_problem, tolerant_client
from sqlalchemy import select

from conftest import Api, make_partner
from support.mall import Mall, open_mall
from tally.db.session import Database
from tally.mall.models import Item
from tally.mall.service import MAX_RESTOCK

ADDRESS = {"line": "1 Road"}


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    with tolerant_client(app) as test_client:
        yield test_client


@pytest.fixture
def app_api(client: Any, database: Database, mall: Mall) -> Api:
    return Api(client, make_partner(database, "MOBILE", "catalog", operator_channel=True))


@pytest.fixture
def supplier_api(client: Any, database: Database, mall: Mall) -> Api:
    return Api(client, make_partner(database, "VIDEO", "catalog"))


def stock_of(database: Database, code: str) -> int | None:
    with database.read() as session:
        return session.scalar(select(Item.stock).where(Item.code == code))


def test_a_restock_adds_to_what_is_left_after_sales_meanwhile(
    mall: Mall, app_api: Api, database: Database
) -> None:
    mall.item("BOX", "physical", 10, stock=5)
    read = app_api.get("/v1/mall/items/BOX").json()
    member = mall.member(1_000)
    mall.place(member, "BOX", quantity=2, address=ADDRESS)  # sold after the caller's read

    answer = app_api.post("/v1/mall/items/BOX/stock", {"add": 10}, idempotency_key="restock-1")
    replay = app_api.post("/v1/mall/items/BOX/stock", {"add": 10}, idempotency_key="restock-1")

    assert read["stock"] == 5
    assert answer.status_code == 200, answer.text
    assert answer.json()["stock"] == 13
    assert replay.json() == answer.json()
    assert stock_of(database, "BOX") == 13


def test_a_supplier_restocks_its_own_items_only(
    mall: Mall, app_api: Api, supplier_api: Api, database: Database
) -> None:
    mall.item("OWN", "physical", 10, stock=1, supplier=True)
    mall.item("THEIRS", "physical", 10, stock=1)

    own = supplier_api.post("/v1/mall/items/OWN/stock", {"add": 4})
    theirs = supplier_api.post("/v1/mall/items/THEIRS/stock", {"add": 4})
    by_operator = app_api.post("/v1/mall/items/OWN/stock", {"add": 1})

    assert own.json()["stock"] == 5
    assert_problem(theirs, 404, "not_found")
    assert by_operator.json()["stock"] == 6
    assert stock_of(database, "THEIRS") == 1


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("physical", {}), ("digital_code", {})],
    ids=["unlimited", "pool"],
)
def test_what_has_no_counted_stock_is_not_restocked(
    mall: Mall, app_api: Api, database: Database, kind: str, extra: dict[str, Any]
) -> None:
    mall.item("ITEM", kind, 10, **extra)
    before = stock_of(database, "ITEM")

    body = assert_problem(
        app_api.post("/v1/mall/items/ITEM/stock", {"add": 3}), 422, "validation_error"
    )

    assert "limited stock" in body["detail"]
    assert stock_of(database, "ITEM") == before


@pytest.mark.parametrize(
    "body",
    [{"add": 0}, {"add": -1}, {"add": MAX_RESTOCK + 1}, {"add": "5"}, {"add": 1.5}, {}],
    ids=["zero", "negative", "too-many", "string", "float", "missing"],
)
def test_impossible_amounts_are_refused(
    mall: Mall, app_api: Api, database: Database, body: dict[str, Any]
) -> None:
    mall.item("BOX", "physical", 10, stock=5)

    assert_problem(app_api.post("/v1/mall/items/BOX/stock", body), 422, "validation_error")
    assert stock_of(database, "BOX") == 5


def test_an_unknown_item_is_not_found(mall: Mall, app_api: Api) -> None:
    assert_problem(app_api.post("/v1/mall/items/NOPE/stock", {"add": 1}), 404, "not_found")
