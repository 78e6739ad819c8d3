"""Growth value and tiers through the partner API: earn with growth, upgrades, reversals,
adjustments, standing and history; every bad input is refused and writes nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from apikit import assert_problem, db_state

from conftest import Api, PartnerKey, make_partner
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import service as programme_service

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


@pytest.fixture
def ladder(database: Database) -> None:
    """The demo programme: BRONZE 0, SILVER 1000, GOLD 5000 (1.4x), PLATINUM 15000, DIAMOND
    40000, BLACK_DIAMOND 100000; a 365-day rolling window with 30 days of grace."""
    text = DEMO.read_text()
    with database.write() as session:
        programme_service.apply(session, programme_service.validate(text), text, "test", utcnow())


def _tier(api: Api, member: int) -> dict:  # type: ignore[type-arg]
    response = api.get(f"/v1/members/{member}/tier")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_earn_credits_growth_and_upgrades_at_once_skipping_levels(api: Api, ladder: None) -> None:
    member = api.enrol("13900000001")
    assert _tier(api, member)["tier"]["code"] == "BRONZE"

    response = api.earn(member, 6000)

    assert response.status_code == 201, response.text
    details = response.json()["details"]
    assert (details["points"], details["tier"], details["upgraded_from"]) == (
        6000,
        "GOLD",
        "BRONZE",
    )
    assert "growth" not in details  # the default: the points
    standing = _tier(api, member)
    assert standing["tier"]["code"] == "GOLD"
    assert standing["tier_index"] == 2
    assert standing["growth"] == 6000
    assert standing["lifetime_growth"] == 6000
    assert standing["next_tier"]["code"] == "PLATINUM"
    assert standing["to_next"] == 9000
    assert standing["to_keep"] == 0
    assert standing["earn_multiplier_bp"] == 14000
    assert {"kind": "monthly_coupons", "count": 2} in standing["benefits"]
    assert standing["flags"] == {"mall_exclusive": False, "theme": "default"}
    assert standing["downgrade_at"] is None
    history = api.get(f"/v1/members/{member}/tier-history").json()["items"]
    assert [(row["from_code"], row["to_code"], row["reason"]) for row in history] == [
        ("BRONZE", "GOLD", "upgrade")
    ]
    assert history[0]["growth"] == 6000
    assert history[0]["programme_version"] == 2  # after the partner fixture's version 1


def test_growth_can_differ_from_points_and_zero_does_not_qualify(api: Api, ladder: None) -> None:
    member = api.enrol("13900000002")

    zero = api.earn(member, 5000, growth=0)
    more = api.earn(member, 10, growth=999)

    assert zero.status_code == 201, zero.text
    assert "tier" not in zero.json()["details"]  # no upgrade
    assert zero.json()["details"]["growth"] == 0
    assert more.json()["details"]["growth"] == 999
    standing = _tier(api, member)
    assert (standing["tier"]["code"], standing["growth"], standing["to_next"]) == ("BRONZE", 999, 1)
    items = api.get(f"/v1/members/{member}/growth").json()["items"]
    assert [(item["kind"], item["points"]) for item in items] == [("earn", 999)]


def test_tier_multiplier_applies_to_points_and_not_to_growth(api: Api, ladder: None) -> None:
    member = api.enrol("13900000003")
    api.earn(member, 5000)  # GOLD: 1.4x

    response = api.earn(member, 1001, apply_tier_multiplier=True)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["details"]["points"] == 1401  # floor(1001 × 1.4)
    assert body["details"]["multiplier_bp"] == 14000
    assert body["details"]["base_points"] == 1001
    assert body["details"]["growth"] == 1001
    assert body["balance"]["available"] == 6401
    assert _tier(api, member)["growth"] == 6001


def test_reversing_an_earn_takes_its_growth_back_counted_when_it_was(
    api: Api, ladder: None
) -> None:
    member = api.enrol("13900000004")
    earned = api.earn(member, 1200).json()

    response = api.post(f"/v1/transactions/{earned['id']}/reverse")

    assert response.status_code == 201, response.text
    assert response.json()["details"] == {"clawed_back": 1200, "shortfall": 0}
    items = api.get(f"/v1/members/{member}/growth").json()["items"]
    assert [(item["kind"], item["points"]) for item in items] == [
        ("reversal", -1200),
        ("earn", 1200),
    ]
    assert items[0]["counted_at"] == items[1]["counted_at"]
    assert items[0]["reverses_id"] == items[1]["id"]
    assert items[0]["transaction_id"] == response.json()["id"]
    standing = _tier(api, member)
    # Downgrades wait for evaluation: the member keeps SILVER but needs 1000 to keep it.
    assert (standing["tier"]["code"], standing["growth"], standing["to_keep"]) == (
        "SILVER",
        0,
        1000,
    )


def test_growth_adjustments_move_growth_and_may_upgrade(api: Api, ladder: None) -> None:
    member = api.enrol("13900000005")

    up = api.post(
        f"/v1/members/{member}/growth/adjustments", {"points": 1500, "reason": "goodwill"}
    )
    down = api.post(
        f"/v1/members/{member}/growth/adjustments", {"points": -500, "reason": "correction"}
    )

    assert up.status_code == 201, up.text
    assert (up.json()["tier"], up.json()["upgraded_from"]) == ("SILVER", "BRONZE")
    assert down.status_code == 201, down.text
    assert down.json()["standing"]["lifetime_growth"] == 1000
    items = api.get(f"/v1/members/{member}/growth").json()["items"]
    assert [(item["kind"], item["points"], item["reason"]) for item in items] == [
        ("adjust", -500, "correction"),
        ("adjust", 1500, "goodwill"),
    ]
    history = api.get(f"/v1/members/{member}/tier-history").json()["items"]
    assert [row["reason"] for row in history] == ["adjustment"]


def test_growth_may_not_go_below_zero_and_the_refusal_writes_nothing(
    api: Api, database: Database, ladder: None
) -> None:
    member = api.enrol("13900000006")
    api.earn(member, 100)
    before = db_state(database)

    response = api.post(
        f"/v1/members/{member}/growth/adjustments", {"points": -101, "reason": "too much"}
    )

    body = assert_problem(response, 409, "insufficient_growth")
    assert body["member_id"] == member
    assert db_state(database) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"points": 0, "reason": "zero"},
        {"points": 10},
        {"points": 10, "reason": "   "},
        {"points": "10", "reason": "text"},
        {"points": 1.5, "reason": "float"},
        {"points": 10**10, "reason": "huge"},
        {"points": 10, "reason": "x", "extra": 1},
    ],
)
def test_bad_growth_adjustments_are_refused_and_write_nothing(
    api: Api,
    database: Database,
    ladder: None,
    payload: dict,  # type: ignore[type-arg]
) -> None:
    member = api.enrol("13900000007")
    before = db_state(database)

    response = api.post(f"/v1/members/{member}/growth/adjustments", payload)

    assert_problem(response, 422, "validation_error")
    assert db_state(database) == before


@pytest.mark.parametrize(
    "extra",
    [{"growth": -1}, {"growth": "5"}, {"growth": 1.0}, {"apply_tier_multiplier": "yes"}],
)
def test_bad_earn_growth_is_refused_and_writes_nothing(
    api: Api,
    database: Database,
    ladder: None,
    extra: dict,  # type: ignore[type-arg]
) -> None:
    member = api.enrol("13900000008")
    before = db_state(database)

    assert_problem(api.earn(member, 10, **extra), 422, "validation_error")
    assert db_state(database) == before


def test_adjusting_growth_needs_the_admin_scope(
    client,
    database: Database,
    ladder: None,  # type: ignore[no-untyped-def]
) -> None:
    api = Api(client, make_partner(database, "SHOPX", "members,earn,read"))
    member = api.enrol("13900000009")
    before = db_state(database)

    response = api.post(f"/v1/members/{member}/growth/adjustments", {"points": 5, "reason": "x"})

    assert_problem(response, 403, "forbidden")
    assert db_state(database) == before


def test_unknown_members_and_bad_cursors(api: Api, ladder: None) -> None:
    assert_problem(api.get("/v1/members/999999/tier"), 404, "not_found")
    assert_problem(api.get("/v1/members/999999/growth"), 404, "not_found")
    assert_problem(api.get("/v1/members/999999/tier-history"), 404, "not_found")
    assert_problem(
        api.post("/v1/members/999999/growth/adjustments", {"points": 5, "reason": "x"}),
        404,
        "not_found",
    )
    member = api.enrol("13900000010")
    assert_problem(api.get(f"/v1/members/{member}/growth?cursor=!!"), 422, "validation_error")


def test_growth_history_pages_newest_first(api: Api, ladder: None) -> None:
    member = api.enrol("13900000011")
    for points in (1, 2, 3):
        api.earn(member, points)

    first = api.get(f"/v1/members/{member}/growth?limit=2").json()
    second = api.get(f"/v1/members/{member}/growth?limit=2&cursor={first['next_cursor']}").json()

    assert [item["points"] for item in first["items"]] == [3, 2]
    assert [item["points"] for item in second["items"]] == [1]
    assert second["next_cursor"] is None


def test_a_member_without_growth_stands_at_the_first_tier(api: Api, ladder: None) -> None:
    member = api.enrol("13900000012")

    standing = _tier(api, member)

    assert standing["tier"]["code"] == "BRONZE"
    assert standing["since"] is None
    assert standing["growth"] == 0
    assert standing["to_next"] == 1000
    window_start = datetime.fromisoformat(standing["window_start"])
    assert window_start.utcoffset() is not None


def test_the_default_programme_has_one_tier(api: Api, partner: PartnerKey) -> None:
    member = api.enrol("13900000013")
    api.earn(member, 10**6)

    standing = _tier(api, member)

    assert standing["tier"]["code"] == "MEMBER"
    assert standing["next_tier"] is None
    assert standing["to_next"] is None


def test_a_retried_growth_adjustment_is_applied_once(api: Api, ladder: None) -> None:
    member = api.enrol("13900000014")
    body = {"points": 700, "reason": "retry me"}

    first = api.post(f"/v1/members/{member}/growth/adjustments", body, idempotency_key="adj-1")
    again = api.post(f"/v1/members/{member}/growth/adjustments", body, idempotency_key="adj-1")

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(api.get(f"/v1/members/{member}/growth").json()["items"]) == 1
