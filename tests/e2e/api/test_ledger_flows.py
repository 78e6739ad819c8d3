"""End-to-end ledger flows over the partner API: members, lots and expiry order, holds,
transfers, reversals, history pages, freezing and partner isolation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apikit import all_transactions, assert_problem, merge, tolerant_client
from sqlalchemy import func, select

from conftest import Api, PartnerKey, make_partner
from tally.db.session import Database
from tally.schema import metadata

ZONE = ZoneInfo("Asia/Shanghai")
# Noon in the programme zone: the expiring date is that day, whatever the server's clock says.
SOON = "2029-01-01T12:00:00+08:00"
MIDDLE = "2030-01-01T12:00:00+08:00"
LATE = "2031-01-01T12:00:00+08:00"


@pytest.fixture
def api(app: Any, partner: PartnerKey) -> Iterator[Api]:
    """The partner's API, answering 500s as responses instead of raising them."""
    with tolerant_client(app) as client:
        yield Api(client, partner)


def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()  # type: ignore[no-any-return]


def earn(api: Api, member: int, points: int, expires_at: str | None = None) -> dict[str, Any]:
    extra = {"expires_at": expires_at} if expires_at else {}
    return ok(api.earn(member, points, **extra))


def expiring(api: Api, member: int) -> list[tuple[str, int]]:
    return [(item["date"], item["points"]) for item in api.balance(member)["expiring"]]


def rows(database: Database, table: str) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(metadata().tables[table])) or 0)


# --- Members and identities ------------------------------------------------------------------


def test_enrolment_returns_the_existing_member(api: Api, database: Database) -> None:
    body = {
        "external_id": {"namespace": "phone", "id": "13800000001"},
        "profile": {"name": "王芳", "city": "杭州", "birthday": "1990-05-04"},
    }
    created = ok(api.post("/v1/members", body), 201)
    assert created["status"] == "active"
    assert created["merged_into_id"] is None
    assert created["identities"] == [{"namespace": "phone", "id": "13800000001"}]
    assert created["profile"] == {
        "name": "王芳",
        "phone": None,
        "birthday": "1990-05-04",
        "city": "杭州",
    }

    again = {
        "external_id": {"namespace": "phone", "id": "+86 138-0000-0001"},
        "profile": {"name": "X"},
    }
    existing = ok(api.post("/v1/members", again), 200)

    assert existing == created
    assert rows(database, "members") == 1
    assert rows(database, "member_identities") == 1
    assert rows(database, "wallets") == 1


def test_a_member_is_found_by_any_of_its_identities(api: Api) -> None:
    member = api.enrol("13800000001")
    ok(
        api.post(
            f"/v1/members/{member}/identities", {"namespace": "email", "id": "fang@example.cn"}
        ),
        200,
    )
    linked = ok(
        api.post(f"/v1/members/{member}/identities", {"namespace": "wechat", "id": "wx_fang"}), 200
    )
    assert linked["identities"] == [
        {"namespace": "phone", "id": "13800000001"},
        {"namespace": "email", "id": "fang@example.cn"},
        {"namespace": "wechat", "id": "wx_fang"},
    ]

    for namespace, external_id in [
        ("phone", "13800000001"),
        ("phone", "+86 138 0000 0001"),
        ("email", "fang@example.cn"),
        ("WeChat", "wx_fang"),
    ]:
        found = api.get("/v1/members/lookup", params={"namespace": namespace, "id": external_id})
        assert ok(found, 200) == linked, (namespace, external_id)
    assert ok(api.get(f"/v1/members/{member}"), 200) == linked


def test_link_and_unlink_identities(api: Api) -> None:
    member = api.enrol("13800000001")
    other = api.enrol("13800000002")
    link = {"namespace": "email", "id": "a@example.cn"}
    first = ok(api.post(f"/v1/members/{member}/identities", link), 200)
    # Linking an identity the member already has changes nothing.
    assert ok(api.post(f"/v1/members/{member}/identities", link), 200) == first

    unlinked = ok(
        api.post(
            f"/v1/members/{member}/identities/unlink", {"namespace": "phone", "id": "13800000001"}
        ),
        200,
    )
    assert unlinked["identities"] == [{"namespace": "email", "id": "a@example.cn"}]
    gone = api.get("/v1/members/lookup", params={"namespace": "phone", "id": "13800000001"})
    assert_problem(gone, 404, "not_found")

    last = api.post(f"/v1/members/{member}/identities/unlink", link)
    assert_problem(last, 409, "conflict")
    taken = api.post(
        f"/v1/members/{member}/identities", {"namespace": "phone", "id": "13800000002"}
    )
    body = assert_problem(taken, 409, "identity_conflict")
    assert body["member_id"] == other
    assert ok(api.get(f"/v1/members/{member}"), 200)["identities"] == [link]

    # The released identity can start a new member.
    reborn = ok(
        api.post("/v1/members", {"external_id": {"namespace": "phone", "id": "13800000001"}}), 201
    )
    assert reborn["id"] not in (member, other)


def test_namespaces_are_case_insensitive_when_enrolling(api: Api) -> None:
    created = api.post("/v1/members", {"external_id": {"namespace": "Email", "id": "a@b.cn"}})
    assert ok(created, 201)["identities"] == [{"namespace": "email", "id": "a@b.cn"}]


# --- Earning and expiry order ----------------------------------------------------------------


def test_earn_with_an_explicit_expiry(api: Api) -> None:
    member = api.enrol("13800000001")

    posted = earn(api, member, 100, "2030-06-01T12:00:00+08:00")

    assert uuid.UUID(posted["id"]) == uuid.UUID(posted["transaction_id"])
    assert posted["member_id"] == member
    assert posted["details"] == {"points": 100, "expires_at": "2030-06-01T12:00:00+08:00"}
    assert posted["balance"] == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2030-06-01", "points": 100}],
    }
    # An expiry at local midnight means the points are last usable the day before.
    earn(api, member, 5, "2030-06-03T00:00:00+08:00")
    earn(api, member, 7, "2030-06-03T00:00:00Z")
    assert expiring(api, member) == [("2030-06-01", 100), ("2030-06-02", 5), ("2030-06-03", 7)]


def test_earn_without_expiry_lasts_through_the_local_day_a_year_later(api: Api) -> None:
    member = api.enrol("13800000001")
    before = datetime.now(ZONE).date()
    posted = earn(api, member, 40)
    after = datetime.now(ZONE).date()

    days = {str(day + timedelta(days=365)) for day in (before, after)}
    [(day, points)] = expiring(api, member)
    assert (day in days, points) == (True, 40)
    assert posted["details"]["expires_at"].endswith("T16:00:00+00:00")  # local midnight, in UTC


def test_spending_takes_the_earliest_expiring_points_first(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 100, LATE)
    earn(api, member, 50, SOON)
    earn(api, member, 30, MIDDLE)
    assert expiring(api, member) == [("2029-01-01", 50), ("2030-01-01", 30), ("2031-01-01", 100)]

    redeemed = ok(api.redeem(member, 60))

    assert redeemed["balance"] == {
        "available": 120,
        "held": 0,
        "expiring": [{"date": "2030-01-01", "points": 20}, {"date": "2031-01-01", "points": 100}],
    }
    ok(api.redeem(member, 30))
    assert expiring(api, member) == [("2031-01-01", 90)]


# --- Holds -----------------------------------------------------------------------------------


def hold(api: Api, member: int, points: int, reference: str = "checkout") -> dict[str, Any]:
    body = {"points": points, "expires_in_seconds": 600, "reference": reference}
    return ok(api.post(f"/v1/members/{member}/holds", body))


def test_a_hold_reserves_points_and_a_full_capture_spends_them(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 100, LATE)

    held = hold(api, member, 30)

    assert held["id"] == held["hold"]["id"] != held["transaction_id"]
    assert held["hold"]["status"] == "active"
    assert (held["hold"]["points"], held["hold"]["captured_points"]) == (30, 0)
    assert held["balance"] == {
        "available": 70,
        "held": 30,
        "expiring": [{"date": "2031-01-01", "points": 70}],
    }
    assert ok(api.get(f"/v1/holds/{held['id']}"), 200) == held["hold"]

    captured = ok(api.post(f"/v1/holds/{held['id']}/capture"), 200)

    assert captured["hold"]["status"] == "captured"
    assert captured["hold"]["captured_points"] == 30
    assert captured["details"] == {"captured": 30, "released": 0}
    assert captured["balance"] == {
        "available": 70,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 70}],
    }
    assert ok(api.get(f"/v1/holds/{held['id']}"), 200)["status"] == "captured"


def test_a_partial_capture_returns_the_rest_to_the_lots_it_came_from(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 50, SOON)
    earn(api, member, 50, LATE)
    held = hold(api, member, 60)
    assert held["balance"]["expiring"] == [{"date": "2031-01-01", "points": 40}]

    captured = ok(api.post(f"/v1/holds/{held['id']}/capture", {"points": 20}), 200)

    assert captured["details"] == {"captured": 20, "released": 40}
    assert captured["hold"]["captured_points"] == 20
    # What stays spent is what would have expired soonest.
    assert captured["balance"] == {
        "available": 80,
        "held": 0,
        "expiring": [{"date": "2029-01-01", "points": 30}, {"date": "2031-01-01", "points": 50}],
    }


def test_a_void_returns_every_point_and_the_hold_cannot_be_captured(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 50, SOON)
    earn(api, member, 50, LATE)
    held = hold(api, member, 60)

    voided = ok(api.post(f"/v1/holds/{held['id']}/void"), 200)

    assert voided["hold"]["status"] == "voided"
    assert voided["details"] == {"released": 60}
    assert voided["balance"] == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2029-01-01", "points": 50}, {"date": "2031-01-01", "points": 50}],
    }
    assert_problem(api.post(f"/v1/holds/{held['id']}/capture"), 409, "hold_not_active")
    assert_problem(api.post(f"/v1/holds/{held['id']}/void"), 409, "hold_not_active")
    assert api.balance(member)["available"] == 100


def test_another_partner_cannot_see_or_settle_a_hold(api: Api, database: Database) -> None:
    other = Api(api.client, make_partner(database, "SHOP", "members,earn,redeem,read"))
    member = api.enrol("13800000001")
    earn(api, member, 100)
    held = hold(api, member, 30)

    assert_problem(other.get(f"/v1/holds/{held['id']}"), 404, "not_found")
    assert_problem(other.post(f"/v1/holds/{held['id']}/capture"), 404, "not_found")
    assert_problem(other.post(f"/v1/holds/{held['id']}/void"), 404, "not_found")
    assert_problem(
        other.post(f"/v1/transactions/{held['transaction_id']}/reverse"), 404, "not_found"
    )

    assert api.balance(member) == {
        "available": 70,
        "held": 30,
        "expiring": api.balance(member)["expiring"],
    }
    assert (
        ok(api.post(f"/v1/holds/{held['id']}/capture", {"points": 10}), 200)["balance"]["available"]
        == 90
    )


# --- Transfers -------------------------------------------------------------------------------


def test_a_transfer_gives_points_with_their_expiry(api: Api) -> None:
    giver = api.enrol("13800000001")
    receiver = api.enrol("13800000002")
    earn(api, giver, 100, LATE)
    earn(api, giver, 50, SOON)

    body = {"from_member_id": giver, "to_member_id": receiver, "points": 70, "reference": "gift-1"}
    moved = ok(api.post("/v1/transfers", body))

    assert moved["member_id"] == giver
    assert moved["details"] == {"points": 70, "to_member_id": receiver}
    assert moved["balance"] == {
        "available": 80,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 80}],
    }
    assert moved["to_balance"] == {
        "available": 70,
        "held": 0,
        "expiring": [{"date": "2029-01-01", "points": 50}, {"date": "2031-01-01", "points": 20}],
    }
    assert api.balance(receiver) == moved["to_balance"]
    [given] = [t for t in all_transactions(api, giver) if t["kind"] == "transfer"]
    [received] = all_transactions(api, receiver)
    assert given["id"] == received["id"] == moved["id"]
    assert (given["points"], received["points"]) == (-70, 70)


# --- Reversals -------------------------------------------------------------------------------


def test_reversing_an_earn_claws_back_what_is_left_and_reports_the_shortfall(api: Api) -> None:
    member = api.enrol("13800000001")
    later = earn(api, member, 100, LATE)
    earn(api, member, 50, SOON)
    ok(api.redeem(member, 60))  # 50 from the sooner lot, 10 from the earn reversed below

    reversed_ = ok(api.post(f"/v1/transactions/{later['id']}/reverse"))

    assert reversed_["details"] == {"clawed_back": 90, "shortfall": 10}
    assert reversed_["balance"] == {"available": 0, "held": 0, "expiring": []}
    newest = all_transactions(api, member)[0]
    assert newest["id"] == reversed_["id"]
    assert (newest["kind"], newest["points"], newest["reverses_id"]) == (
        "reversal",
        -90,
        later["id"],
    )
    assert newest["details"] == {"reversed_kind": "earn", "clawed_back": 90, "shortfall": 10}
    assert_problem(api.post(f"/v1/transactions/{later['id']}/reverse"), 409, "already_reversed")


def test_reversing_an_unspent_earn_takes_it_all_back(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 30, SOON)
    earned = earn(api, member, 70, LATE)

    reversed_ = ok(api.post(f"/v1/transactions/{earned['id']}/reverse"))

    assert reversed_["details"] == {"clawed_back": 70, "shortfall": 0}
    assert reversed_["balance"]["expiring"] == [{"date": "2029-01-01", "points": 30}]


def test_an_earn_spent_in_full_is_still_reversed_only_once(api: Api) -> None:
    member = api.enrol("13800000001")
    earned = earn(api, member, 100)
    ok(api.redeem(member, 100))

    first = ok(api.post(f"/v1/transactions/{earned['id']}/reverse"))
    assert first["details"] == {"clawed_back": 0, "shortfall": 100}
    assert first["id"] is not None
    assert_problem(api.post(f"/v1/transactions/{earned['id']}/reverse"), 409, "already_reversed")


def test_points_of_a_reversed_earn_do_not_come_back_through_a_void(api: Api) -> None:
    member = api.enrol("13800000001")
    earned = earn(api, member, 100)
    held = hold(api, member, 60)
    ok(api.post(f"/v1/transactions/{earned['id']}/reverse"))

    ok(api.post(f"/v1/holds/{held['id']}/void"), 200)

    assert api.balance(member) == {"available": 0, "held": 0, "expiring": []}


def test_a_capture_after_its_earn_was_reversed_is_reversed_for_what_it_spent(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 30, LATE)
    earned = earn(api, member, 100, SOON)
    held = hold(api, member, 60)
    reversal = ok(api.post(f"/v1/transactions/{earned['id']}/reverse"))
    assert reversal["details"] == {"clawed_back": 40, "shortfall": 60}
    captured = ok(api.post(f"/v1/holds/{held['id']}/capture", {"points": 20}), 200)
    # The 40 released belong to the reversed earn: they are clawed back, not given back.
    assert captured["details"] == {"captured": 20, "released": 40, "clawed_back": 40}
    assert captured["balance"]["available"] == 30

    refund = ok(api.post(f"/v1/transactions/{captured['id']}/reverse"))

    assert refund["details"] == {"returned": 20, "clawed_back": 20}
    assert refund["balance"] == {
        "available": 30,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 30}],
    }
    clawed = sum(
        item["details"]["clawed_back"]
        for item in all_transactions(api, member)
        if item["kind"] == "reversal" and "clawed_back" in (item["details"] or {})
    )
    assert clawed == 100  # never more than was earned


def test_reversing_a_redemption_returns_the_points_with_their_expiry(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 50, SOON)
    earn(api, member, 50, LATE)
    redeemed = ok(api.redeem(member, 70))
    assert redeemed["balance"]["expiring"] == [{"date": "2031-01-01", "points": 30}]

    reversed_ = ok(api.post(f"/v1/transactions/{redeemed['id']}/reverse"))

    assert reversed_["details"] == {"returned": 70}
    assert reversed_["balance"] == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2029-01-01", "points": 50}, {"date": "2031-01-01", "points": 50}],
    }
    assert_problem(api.post(f"/v1/transactions/{redeemed['id']}/reverse"), 409, "already_reversed")
    assert api.balance(member)["available"] == 100


def test_reversing_a_capture_returns_what_was_captured(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 100, LATE)
    held = hold(api, member, 40)
    captured = ok(api.post(f"/v1/holds/{held['id']}/capture", {"points": 25}), 200)
    assert captured["balance"]["available"] == 75

    reversed_ = ok(api.post(f"/v1/transactions/{captured['id']}/reverse"))

    assert reversed_["details"] == {"returned": 25}
    assert reversed_["balance"] == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 100}],
    }
    assert_problem(api.post(f"/v1/transactions/{captured['id']}/reverse"), 409, "already_reversed")


# --- Every write answers with its transaction and the new balance ----------------------------


def test_every_ledger_write_returns_its_transaction_and_the_new_balance(api: Api) -> None:
    member = api.enrol("13800000001")
    friend = api.enrol("13800000002")
    earned = earn(api, member, 200, LATE)
    held = hold(api, member, 20, "h1")
    writes = [
        earned,
        ok(api.redeem(member, 10)),
        held,
        ok(api.post(f"/v1/holds/{held['id']}/capture", {"points": 5}), 200),
        ok(api.post(f"/v1/holds/{hold(api, member, 10, 'h2')['id']}/void"), 200),
        ok(
            api.post(
                "/v1/transfers",
                {"from_member_id": member, "to_member_id": friend, "points": 5, "reference": "t"},
            )
        ),
        ok(api.post(f"/v1/members/{member}/adjustments", {"points": 3, "reason": "goodwill"})),
        ok(api.post(f"/v1/members/{member}/adjustments", {"points": -2, "reason": "correction"})),
        ok(api.post(f"/v1/transactions/{ok(api.redeem(member, 4))['id']}/reverse")),
    ]
    history = {item["id"] for item in all_transactions(api, member)}
    for posted in writes:
        transaction = posted["transaction_id"]
        assert uuid.UUID(transaction), posted
        assert transaction in history, posted
        assert posted["id"] in (transaction, posted.get("hold", {}).get("id")), posted
        assert posted["member_id"] == member
        assert set(posted["balance"]) == {"available", "held", "expiring"}
    assert writes[-1]["balance"] == api.balance(member)
    assert api.balance(member)["available"] == 200 - 10 - 5 - 5 + 3 - 2


def test_adjustments_credit_and_debit_with_a_reason(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 10, SOON)

    credited = ok(
        api.post(
            f"/v1/members/{member}/adjustments",
            {"points": 50, "reason": "goodwill", "expires_at": LATE},
        )
    )
    debited = ok(
        api.post(f"/v1/members/{member}/adjustments", {"points": -15, "reason": "duplicate bonus"})
    )

    assert credited["details"] == {"points": 50}
    assert debited["balance"] == {
        "available": 45,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 45}],
    }
    newest = all_transactions(api, member)[:2]
    assert [(t["kind"], t["points"], t["memo"]) for t in newest] == [
        ("adjust", -15, "duplicate bonus"),
        ("adjust", 50, "goodwill"),
    ]


# --- History ---------------------------------------------------------------------------------


def test_history_pages_are_newest_first_without_gaps_or_repeats(api: Api) -> None:
    member = api.enrol("13800000001")
    written = [earn(api, member, n + 1)["id"] for n in range(23)]
    written.append(ok(api.redeem(member, 5))["id"])

    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = ok(api.get(f"/v1/members/{member}/transactions", params=params), 200)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
    listed = [item["id"] for page in pages for item in page]
    assert listed == list(reversed(written))
    times = [item["created_at"] for page in pages for item in page]
    assert times == sorted(times, reverse=True)
    first = pages[0][0]
    assert (first["kind"], first["points"], first["held"], first["partner_id"]) == (
        "redeem",
        -5,
        0,
        api.key.partner_id,
    )
    assert [item["points"] for item in pages[-1]] == [4, 3, 2, 1]
    # One page holding everything has no next cursor; the default size is 50.
    everything = ok(api.get(f"/v1/members/{member}/transactions", params={"limit": 24}), 200)
    assert everything["next_cursor"] is None
    assert [item["id"] for item in everything["items"]] == listed
    assert len(ok(api.get(f"/v1/members/{member}/transactions"), 200)["items"]) == 24


def test_a_member_without_transactions_has_an_empty_history(api: Api) -> None:
    member = api.enrol("13800000001")
    assert ok(api.get(f"/v1/members/{member}/transactions"), 200) == {
        "items": [],
        "next_cursor": None,
    }
    assert api.balance(member) == {"available": 0, "held": 0, "expiring": []}


def test_a_survivors_history_lists_each_entry_once(api: Api, database: Database) -> None:
    survivor = api.enrol("13800000001")
    merged = api.enrol("13800000002")
    earn(api, survivor, 100)
    earn(api, merged, 50)
    ok(
        api.post(
            "/v1/transfers",
            {"from_member_id": merged, "to_member_id": survivor, "points": 10, "reference": "g"},
        )
    )
    merge(database, survivor, merged)

    ids = [item["id"] for item in all_transactions(api, survivor)]

    assert len(ids) == len(set(ids)) == 4  # the two earns, the transfer and the merge, once each
    assert api.balance(survivor)["available"] == 150


def test_a_merged_member_is_found_through_its_survivor(api: Api, database: Database) -> None:
    survivor = api.enrol("13800000001")
    merged = api.enrol("13800000002")
    earn(api, survivor, 100, LATE)
    earn(api, merged, 50, SOON)
    merge(database, survivor, merged)

    found = ok(
        api.get("/v1/members/lookup", params={"namespace": "phone", "id": "13800000002"}), 200
    )
    assert found["id"] == survivor
    assert api.balance(survivor)["expiring"] == [
        {"date": "2029-01-01", "points": 50},
        {"date": "2031-01-01", "points": 100},
    ]
    gone = ok(api.get(f"/v1/members/{merged}"), 200)
    assert (gone["status"], gone["merged_into_id"], gone["identities"]) == ("merged", survivor, [])
    assert_problem(api.earn(merged, 5), 409, "member_merged")


# --- Freezing --------------------------------------------------------------------------------


def test_a_frozen_member_can_be_read_but_not_earn_or_spend(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 100, LATE)

    frozen = ok(api.post(f"/v1/members/{member}/freeze", {"reason": "card fraud"}), 200)

    assert frozen["status"] == "frozen"
    assert_problem(api.earn(member, 5), 409, "member_frozen")
    assert_problem(api.redeem(member, 5), 409, "member_frozen")
    assert_problem(
        api.post(
            f"/v1/members/{member}/holds", {"points": 5, "expires_in_seconds": 60, "reference": "h"}
        ),
        409,
        "member_frozen",
    )
    assert ok(api.get(f"/v1/members/{member}"), 200)["status"] == "frozen"
    assert api.balance(member) == {
        "available": 100,
        "held": 0,
        "expiring": [{"date": "2031-01-01", "points": 100}],
    }
    assert len(ok(api.get(f"/v1/members/{member}/transactions"), 200)["items"]) == 1
    found = api.get("/v1/members/lookup", params={"namespace": "phone", "id": "13800000001"})
    assert ok(found, 200)["id"] == member

    thawed = ok(api.post(f"/v1/members/{member}/unfreeze"), 200)

    assert thawed["status"] == "active"
    assert ok(api.earn(member, 5))["balance"]["available"] == 105
    assert ok(api.redeem(member, 50))["balance"]["available"] == 55


def test_a_hold_of_a_member_frozen_since_can_still_be_voided(api: Api) -> None:
    member = api.enrol("13800000001")
    earn(api, member, 100)
    held = hold(api, member, 40)
    ok(api.post(f"/v1/members/{member}/freeze", {"reason": "dispute"}), 200)

    assert_problem(api.post(f"/v1/holds/{held['id']}/capture"), 409, "member_frozen")
    voided = ok(api.post(f"/v1/holds/{held['id']}/void"), 200)

    assert (voided["balance"]["available"], voided["balance"]["held"]) == (100, 0)
