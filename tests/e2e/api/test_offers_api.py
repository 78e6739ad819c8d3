"""``GET /v1/members/{id}/offers`` on SQLite and PostgreSQL: the mall's items ranked for a
member with their reasons, for the operator's channels only; refusals change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from apikit import assert_problem, db_state, tolerant_client

from conftest import Api, make_partner
from support.mall import Mall, open_mall
from tally.db.session import Database


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


@pytest.fixture
def client(app: Any, mall: Mall) -> Iterator[Any]:
    with tolerant_client(app) as found:
        yield found


def _api(client: Any, database: Database, code: str, scopes: str, operator: bool) -> Api:
    return Api(client, make_partner(database, code, scopes, operator_channel=operator))


def test_the_app_reads_a_members_offers_best_first_with_reasons(
    client: Any, mall: Mall, database: Database
) -> None:
    app = _api(client, database, "MOBILE", "members,read,mall", True)
    mall.item("BOOK1", points=100, categories=["books"])
    mall.item("BOOK2", points=300, categories=["books"], tier_prices={"BRONZE": 250})
    mall.item("TRIP", points=900, categories=["travel"])
    member = mall.member(500)
    mall.place(member, "BOOK1")

    response = app.get(f"/v1/members/{member}/offers", params={"limit": 2})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["item"] for item in body["items"]] == ["BOOK1", "BOOK2"]
    first, second = body["items"]
    assert first["names"] == {"zh-CN": "商品BOOK1", "en": "Item BOOK1"}
    assert (first["points"], first["points_to_go"], first["kind"]) == (100, 0, "donation")
    assert first["categories"] == ["books"]
    assert isinstance(first["score"], float)
    assert first["score"] > second["score"]
    assert first["reasons"][0] == {
        "code": "you_redeemed_category",
        "params": {"category": "books"},
        "key": "you_redeemed_category:books",
    }
    assert [reason["key"] for reason in second["reasons"]] == [
        "you_redeemed_category:books",
        "tier_price:BRONZE",
        "affordable",
    ]
    assert second["points"] == 250
    everything = app.get(f"/v1/members/{member}/offers").json()["items"]
    trip = everything[-1]
    # 400 points left of 500: TRIP (900) is far; it comes last, without an affordability reason.
    assert (trip["item"], trip["points_to_go"]) == ("TRIP", 500)
    assert not {"affordable", "points_to_go"} & {r["code"] for r in trip["reasons"]}


def test_only_the_operators_channels_with_the_mall_scope_read_offers(
    client: Any, mall: Mall, database: Database
) -> None:
    member = mall.member(500)
    mall.item("BOOK1", points=100)
    supplier = _api(client, database, "VIDEO", "members,read,mall", False)
    lacking = _api(client, database, "MOBILE", "members,read", True)
    app = _api(client, database, "MOBILE", "mall", True)
    state = db_state(database)
    assert_problem(supplier.get(f"/v1/members/{member}/offers"), 403, "forbidden")
    assert_problem(lacking.get(f"/v1/members/{member}/offers"), 403, "forbidden")
    assert_problem(client.get(f"/v1/members/{member}/offers"), 401, "unauthorized")
    assert_problem(app.get("/v1/members/999999/offers"), 404, "not_found")
    assert_problem(app.get(f"/v1/members/{member}/offers?limit=0"), 422, "validation_error")
    assert_problem(app.get(f"/v1/members/{member}/offers?limit=51"), 422, "validation_error")
    assert_problem(app.get(f"/v1/members/{member}/offers?limit=x"), 422, "validation_error")
    assert_problem(app.get("/v1/members/01/offers"), 404, "not_found")
    assert db_state(database) == state
