"""``GET /v1/members/{id}/status``: tier, growth, paid memberships and stacked benefits."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import Api, PartnerKey, make_partner
from e2e.api.apikit import assert_problem
from tally.app import create_app
from tally.config import Settings
from tally.db.session import Database
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.kit.clock import utcnow
from tally.programme import service
from tally.programme.domain import FamilyRules

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


@pytest.fixture
def demo_api(settings: Settings, database: Database, partner: PartnerKey):  # type: ignore[no-untyped-def]
    text = DEMO.read_text()
    with database.write() as session:
        service.apply(session, service.validate(text), text, "test", utcnow())
    app = create_app(settings, database)
    with TestClient(app) as client:
        yield Api(client, partner)


def _subscribe(api: Api, member_id: int) -> str:
    created = api.post(f"/v1/members/{member_id}/memberships", json={"plan": "VIP88"})
    assert created.status_code == 201, created.text
    membership_id: str = created.json()["id"]
    paid = api.post(
        f"/v1/memberships/{membership_id}/payments",
        json={"reference": f"pay-{member_id}", "amount": {"minor_units": 8800, "currency": "CNY"}},
    )
    assert paid.status_code == 201, paid.text
    return membership_id


def test_a_new_member_stands_on_the_first_tier_with_its_benefits(demo_api: Api) -> None:
    member = demo_api.enrol("13700000001")
    body = demo_api.get(f"/v1/members/{member}/status").json()
    assert body["member_id"] == member
    assert body["tier"]["code"] == "BRONZE"
    assert body["tier"]["names"] == {"zh-CN": "青铜", "en": "Bronze"}
    assert body["tier"]["index"] == 0
    assert body["tier"]["earn_multiplier_bp"] == 10_000
    assert body["growth"]["qualifying"] == 0
    assert body["growth"]["next_tier"] == "SILVER"
    assert body["growth"]["to_next"] == 1000
    assert body["memberships"] == []
    assert body["benefits"] == []


def test_growth_upgrades_and_a_paid_plan_stacks_its_benefits_on_the_tier(demo_api: Api) -> None:
    member = demo_api.enrol("13700000002")
    assert demo_api.earn(member, 6000).status_code == 201  # growth 6000: GOLD (5000)
    membership_id = _subscribe(demo_api, member)
    body = demo_api.get(f"/v1/members/{member}/status").json()
    assert body["tier"]["code"] == "GOLD"
    assert body["tier"]["earn_multiplier_bp"] == 14_000
    assert body["growth"] == {
        **body["growth"],
        "qualifying": 6000,
        "lifetime": 6000,
        "next_tier": "PLATINUM",
        "to_next": 9000,
    }
    (membership,) = body["memberships"]
    assert membership["id"] == membership_id
    assert membership["plan"] == "VIP88"
    assert membership["names"] == {"zh-CN": "88会员", "en": "88 VIP"}
    assert membership["cancel_at_period_end"] is False
    # GOLD: birthday gift and 2 coupons a month; VIP88: free returns, priority, 8 coupons.
    assert body["benefits"] == [
        {"kind": "birthday_gift"},
        {"kind": "monthly_coupons", "count": 10},
        {"kind": "free_returns"},
        {"kind": "priority_service"},
    ]


def test_the_top_tiers_take_the_black_gold_theme(demo_api: Api) -> None:
    member = demo_api.enrol("13700000003")
    demo_api.earn(member, 40_000)
    tier = demo_api.get(f"/v1/members/{member}/status").json()["tier"]
    assert (tier["code"], tier["theme"], tier["mall_exclusive"]) == ("DIAMOND", "black-gold", True)


def test_status_of_an_unknown_member_is_not_found(demo_api: Api) -> None:
    assert_problem(demo_api.get("/v1/members/999999/status"), 404, "not_found")
    assert_problem(demo_api.get("/v1/members/0/status"), 404, "not_found")  # names no member


def test_status_needs_the_read_scope(demo_api: Api, database: Database) -> None:
    member = demo_api.enrol("13700000004")
    earner = make_partner(database, "EARNER", "earn")
    response = demo_api.client.get(f"/v1/members/{member}/status", headers=earner.headers())
    assert_problem(response, 403, "forbidden")


def test_status_shows_the_family_the_member_is_in(demo_api: Api, database: Database) -> None:
    owner = demo_api.enrol("13700000005")
    child = demo_api.enrol("13700000006")
    now = utcnow()
    with database.write() as session:
        family_id = families.create(session, owner, FamilyMode.SHARE, now)
        families.invite(session, family_id, owner, child, now, FamilyRules())
        families.accept(session, family_id, child, child, now)
    family = demo_api.get(f"/v1/members/{child}/status").json()["family"]
    assert family["id"] == family_id
    assert family["owner_id"] == owner
    assert family["mode"] == "share"
    assert [(line["member_id"], line["role"]) for line in family["members"]] == [
        (owner, "owner"),
        (child, "member"),
    ]
    assert (
        demo_api.get(f"/v1/members/{demo_api.enrol('13700000007')}/status").json()["family"] is None
    )
