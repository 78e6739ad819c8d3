"""Coupons through the API: templates, issuing codes, a partner's checkout (validate, redeem,
roll back) and the member's wallet; bad inputs refused with nothing written."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state

from conftest import Api, make_partner
from tally.db.session import Database
from tally.kit.clock import utcnow

COUPONS = "members,earn,redeem,read,coupons"
NAMES = {"zh-CN": "满100减15", "en": "15 off 100"}


@pytest.fixture
def operator(client: Any, database: Database) -> Api:
    return Api(client, make_partner(database, "MOBILE", COUPONS, operator_channel=True))


@pytest.fixture
def shop(client: Any, database: Database) -> Api:
    return Api(client, make_partner(database, "SHOP", COUPONS))


def template(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"code": f"T{os.urandom(4).hex().upper()}", "kind": "amount", "value": 1500,
            "names": NAMES, **fields}  # fmt: skip
    response = api.post("/v1/coupon-templates", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def issue(api: Api, code: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/coupon-templates/{code}/issue", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def cart(amount: int, *items: tuple[str, str, int]) -> dict[str, Any]:
    return {
        "amount": amount,
        "items": [
            {"sku": sku, "category": category, "amount": value} for sku, category, value in items
        ],
    }


def test_a_wallet_code_is_validated_redeemed_once_and_rolled_back(operator: Api, shop: Api) -> None:
    member = operator.enrol("13800000001")
    made = template(operator, kind="percent", value=2000, cap=3000, min_spend=5000,
                    scope={"categories": ["food"]})  # fmt: skip
    issued = issue(operator, made["code"], member_ids=[member])
    code = issued["codes"][0]["code"]
    assert issued["issued"] == 1
    assert issued["codes"][0]["member_id"] == member
    assert len(code) == 14
    assert code[4] == "-" == code[9]
    basket = cart(30_000, ("A", "food", 20_000), ("B", "toys", 10_000))
    ask = {"code": code.lower().replace("-", " "), "member_id": member, "cart": basket}

    checked = shop.post("/v1/coupons/validate", ask).json()
    assert checked == {
        "valid": True,
        "code": code,
        "template": made["code"],
        "discount": 3000,  # 20 % of the 200.00 of food is 40.00, capped at 30.00
        "eligible_subtotal": 20_000,
        "currency": "CNY",
        "reason": None,
        "detail": None,
    }
    redeemed = shop.post("/v1/coupons/redeem", ask)
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert (body["discount"], body["status"], body["template"]) == (3000, "redeemed", made["code"])

    again = assert_problem(shop.post("/v1/coupons/redeem", ask), 409, "coupon_not_applicable")
    assert again["reason"] == "already_used"
    assert shop.post("/v1/coupons/validate", ask).json()["reason"] == "already_used"
    wallet = operator.get(f"/v1/members/{member}/coupons").json()["items"]
    assert [(item["code"], item["state"]) for item in wallet] == [(code, "used")]

    path = f"/v1/redemptions/{body['redemption_id']}/rollback"
    first, second = shop.post(path), shop.post(path)
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == second.json()["status"] == "rolled_back"
    assert first.json()["rolled_back_at"] == second.json()["rolled_back_at"]
    counts = operator.get(f"/v1/coupon-templates/{made['code']}").json()
    assert (counts["issued"], counts["redeemed"], counts["rolled_back"]) == (1, 0, 1)
    assert operator.get(f"/v1/members/{member}/coupons").json()["items"][0]["state"] == "valid"
    assert shop.post("/v1/coupons/redeem", ask).status_code == 201  # the use was given back


@pytest.mark.parametrize(
    ("fields", "ask_cart", "reason"),
    [
        ({"min_spend": 10_000}, cart(9_999), "min_spend_not_met"),
        ({"scope": {"skus": ["X"]}}, cart(5_000, ("A", "food", 5_000)), "not_applicable"),
        ({"scope": {"partners": ["FOOD"]}}, cart(5_000), "not_accepted_here"),
        ({"valid": {"until": (utcnow() - timedelta(days=1)).isoformat()}}, cart(5_000), "expired"),
        (
            {"valid": {"from": (utcnow() + timedelta(days=1)).isoformat()}},
            cart(5_000),
            "not_yet_valid",
        ),
        ({"limit": {"per_member": 1}}, cart(5_000), "member_required"),
    ],
)
def test_a_shared_code_that_does_not_apply_says_why(
    operator: Api, shop: Api, database: Database, fields: dict[str, Any], ask_cart: Any, reason: str
) -> None:
    made = template(operator, shared_code=True, **fields)
    ask = {"code": made["code"], "cart": ask_cart}
    state = db_state(database)

    checked = shop.post("/v1/coupons/validate", ask).json()
    refused = assert_problem(shop.post("/v1/coupons/redeem", ask), 409, "coupon_not_applicable")

    assert (checked["valid"], checked["reason"], checked["discount"]) == (False, reason, 0)
    assert refused["reason"] == reason
    assert db_state(database) == state


def test_codes_that_do_not_apply_to_the_member(operator: Api, shop: Api) -> None:
    owner, other = operator.enrol("13800000011"), operator.enrol("13800000012")
    made = template(operator)
    code = issue(operator, made["code"], member_ids=[owner])["codes"][0]["code"]
    for member in (other, None):
        body = shop.post(
            "/v1/coupons/validate", {"code": code, "member_id": member, "cart": cart(9_000)}
        )
        assert body.json()["reason"] == "not_owner"
    unknown = shop.post("/v1/coupons/validate", {"code": "ZZZZ-ZZZZ-ZZZZ", "cart": cart(1)}).json()
    assert (unknown["valid"], unknown["reason"], unknown["template"]) == (
        False,
        "unknown_code",
        None,
    )
    missing = shop.post(
        "/v1/coupons/validate", {"code": code, "member_id": 999_999, "cart": cart(1)}
    )
    assert_problem(missing, 404, "not_found")


def test_limits_of_a_shared_code(operator: Api, shop: Api) -> None:
    made = template(operator, shared_code=True, limit={"total": 3, "per_member": 2})
    members = [operator.enrol(f"1380000002{i}") for i in range(2)]

    def redeem(member: int) -> Any:
        return shop.post(
            "/v1/coupons/redeem", {"code": made["code"], "member_id": member, "cart": cart(2_000)}
        )

    assert [redeem(members[0]).status_code for _ in range(3)] == [201, 201, 409]
    assert redeem(members[1]).status_code == 201
    last = assert_problem(redeem(members[1]), 409, "coupon_not_applicable")
    assert last["reason"] == "limit_reached"
    assert operator.get(f"/v1/coupon-templates/{made['code']}").json()["redeemed"] == 3


def test_unassigned_codes_in_bulk_and_the_total_limit(operator: Api, database: Database) -> None:
    made = template(operator, limit={"total": 500})
    issued = issue(operator, made["code"], count=400)
    codes = [item["code"] for item in issued["codes"]]
    assert issued["issued"] == 400
    assert len(set(codes)) == 400
    assert all(
        set(code.replace("-", "")) <= set("23456789ABCDEFGHJKMNPQRSTUVWXYZ") for code in codes
    )
    state = db_state(database)

    refused = operator.post(f"/v1/coupon-templates/{made['code']}/issue", {"count": 101})

    assert assert_problem(refused, 409, "coupons_exhausted")["left"] == 100
    assert db_state(database) == state
    assert issue(operator, made["code"], count=100)["issued"] == 100


def test_a_partner_creates_templates_for_its_own_checkout_only(
    operator: Api, shop: Api, client: Any, database: Database
) -> None:
    state = db_state(database)
    for scope in ({}, {"partners": ["SHOP", "FOOD"]}):
        refused = shop.post("/v1/coupon-templates", {"code": "MINE", "kind": "amount", "value": 100,
                                                     "names": NAMES, "scope": scope})  # fmt: skip
        assert assert_problem(refused, 403, "forbidden")["reason"] == "operator_channel_only"
    assert db_state(database) == state
    own = template(shop, scope={"partners": ["SHOP"]})
    assert own["owner_partner_id"] == shop.key.partner_id
    food = Api(client, make_partner(database, "FOOD", COUPONS))
    assert_problem(food.get(f"/v1/coupon-templates/{own['code']}"), 404, "not_found")
    assert own["code"] not in [
        item["code"] for item in food.get("/v1/coupon-templates").json()["items"]
    ]
    refused = shop.post(f"/v1/coupon-templates/{template(operator)['code']}/issue", {"count": 1})
    assert assert_problem(refused, 403, "forbidden")["reason"] == "not_owner"


@pytest.mark.parametrize(
    "body",
    [
        {"code": "lower", "kind": "amount", "value": 100, "names": NAMES},
        {"code": "P", "kind": "percent", "value": 10_001, "names": NAMES},
        {"code": "P2", "kind": "amount", "value": 100, "cap": 5, "names": NAMES},
        {"code": "P3", "kind": "amount", "value": 1.5, "names": NAMES},
        {"code": "P4", "kind": "amount", "value": "100", "names": NAMES},
        {"code": "P5", "kind": "gift", "value": 100, "names": NAMES},
        {"code": "P6", "kind": "amount", "value": 100, "names": {"en": "x"}},
        {"code": "P7", "kind": "amount", "value": 0, "names": NAMES},
        {
            "code": "P8",
            "kind": "amount",
            "value": 100,
            "names": NAMES,
            "valid": {"from": "2027-01-02T00:00:00+00:00", "until": "2027-01-01T00:00:00+00:00"},
        },
        {
            "code": "P9",
            "kind": "amount",
            "value": 100,
            "names": NAMES,
            "valid": {"from": "2027-01-02T00:00:00"},
        },
        {"code": "P10", "kind": "amount", "value": 100, "names": NAMES, "limit": {"total": 0}},
    ],
)
def test_a_bad_template_is_refused_and_nothing_written(
    operator: Api, database: Database, body: dict[str, Any]
) -> None:
    state = db_state(database)
    assert_problem(operator.post("/v1/coupon-templates", body), 422, "validation_error")
    assert db_state(database) == state


def test_bad_checkouts_and_issues_are_refused(operator: Api, shop: Api, database: Database) -> None:
    made = template(operator, shared_code=True)
    member = operator.enrol("13800000031")
    state = db_state(database)
    for body in (
        {"code": made["code"], "cart": {"amount": 100, "items": [{"sku": "A", "amount": 200}]}},
        {"code": made["code"], "cart": {"amount": -1}},
        {"code": made["code"], "cart": {"amount": 10.5}},
        {"code": "", "cart": {"amount": 1}},
        {"code": made["code"]},
    ):
        assert_problem(shop.post("/v1/coupons/redeem", body), 422, "validation_error")
    shared = operator.post(f"/v1/coupon-templates/{made['code']}/issue", {"member_ids": [member]})
    assert_problem(shared, 422, "validation_error")
    plain = template(operator)["code"]
    state = db_state(database)
    for body in ({}, {"member_ids": [member, member]}, {"count": 0}, {"member_ids": [999_999]}):
        response = operator.post(f"/v1/coupon-templates/{plain}/issue", body)
        assert response.status_code in (404, 422), response.text
    assert_problem(operator.post("/v1/coupon-templates/NOPE/issue", {"count": 1}), 404, "not_found")
    duplicate = operator.post(
        "/v1/coupon-templates", {"code": plain, "kind": "amount", "value": 1, "names": NAMES}
    )
    assert_problem(duplicate, 409, "duplicate_code")
    assert db_state(database) == state
    assert_problem(
        shop.post("/v1/redemptions/00000000-0000-0000-0000-000000000000/rollback"), 404, "not_found"
    )
