"""Listing orders over the partner API, on SQLite and PostgreSQL: `GET /v1/orders` and a
member's `GET /v1/members/{id}/orders` page newest first with a cursor that keeps its place
among orders placed at the same moment; a supplier lists only its own items' orders (the ones
it ships); filters by status, member and item; bad filters and cursors are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from apikit import assert_problem, tolerant_client

from conftest import Api, make_partner
from support.mall import Mall, open_mall
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.kit.pagination import encode_cursor

MOMENT = utcnow().replace(microsecond=123456) - timedelta(minutes=5)


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    with tolerant_client(app) as test_client:
        yield test_client


@pytest.fixture
def app_api(client: Any, database: Database, mall: Mall) -> Api:
    return Api(client, make_partner(database, "MOBILE", "mall", operator_channel=True))


@pytest.fixture
def supplier_api(client: Any, database: Database, mall: Mall) -> Api:
    return Api(client, make_partner(database, "VIDEO", "mall"))


def every_page(api: Api, path: str, **params: Any) -> tuple[list[str], int]:
    """The ids of every page, in order, and how many pages it took."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        answer = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ids += [order["id"] for order in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 50


def test_pages_keep_their_place_among_orders_of_the_same_moment(mall: Mall, app_api: Api) -> None:
    mall.item("GIFT", points=10)
    member = mall.member(1_000)
    other = mall.member(1_000)
    same = [str(mall.place(member, "GIFT", now=MOMENT)) for _ in range(5)]
    earlier = str(mall.place(member, "GIFT", now=MOMENT - timedelta(seconds=1)))
    later = str(mall.place(other, "GIFT", now=MOMENT + timedelta(microseconds=1)))

    ids, pages = every_page(app_api, "/v1/orders", limit=2)
    assert ids == [later, *sorted(same, reverse=True), earlier]
    assert pages == 4

    mine, pages = every_page(app_api, f"/v1/members/{member}/orders", limit=3)
    assert mine == [*sorted(same, reverse=True), earlier]
    assert pages == 2
    assert every_page(app_api, "/v1/orders", member_id=other)[0] == [later]


def test_a_supplier_lists_only_its_own_items_orders(
    mall: Mall, app_api: Api, supplier_api: Api
) -> None:
    mall.item("OURS", points=10)
    mall.item("THEIRS", "partner_benefit", 10, supplier=True)
    member = mall.member(1_000)
    ours = str(mall.place(member, "OURS"))
    theirs = str(mall.place(member, "THEIRS"))

    assert every_page(supplier_api, "/v1/orders")[0] == [theirs]
    assert every_page(supplier_api, f"/v1/members/{member}/orders")[0] == [theirs]
    assert set(every_page(app_api, "/v1/orders")[0]) == {ours, theirs}
    assert every_page(app_api, "/v1/orders", item="OURS")[0] == [ours]
    # Another's item is as unknown to a supplier as an item that does not exist.
    assert_problem(supplier_api.get("/v1/orders", params={"item": "OURS"}), 404, "not_found")
    assert_problem(app_api.get("/v1/orders", params={"item": "NOPE"}), 404, "not_found")


def test_the_status_filter_uses_the_orders_summary(mall: Mall, app_api: Api) -> None:
    mall.item("GIFT", points=10)
    member = mall.member(1_000)
    kept = str(mall.place(member, "GIFT"))
    refunded = str(mall.place(member, "GIFT"))
    assert app_api.post(f"/v1/orders/{refunded}/refund").status_code == 200

    assert every_page(app_api, "/v1/orders", status="refunded")[0] == [refunded]
    assert every_page(app_api, "/v1/orders", status="completed")[0] == [kept]
    assert every_page(app_api, "/v1/orders", status="lapsed")[0] == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "sent"},
        {"cursor": "not-a-cursor"},
        {"cursor": encode_cursor(5)},  # another list's cursor
        {"limit": 0},
        {"limit": 201},
        {"member_id": 0},
        {"item": "bad code!"},
    ],
)
def test_bad_filters_and_cursors_are_refused(app_api: Api, params: dict[str, Any]) -> None:
    assert_problem(app_api.get("/v1/orders", params=params), 422, "validation_error")


def test_an_unknown_member_is_not_found(app_api: Api) -> None:
    assert_problem(app_api.get("/v1/orders", params={"member_id": 999_999}), 404, "not_found")
