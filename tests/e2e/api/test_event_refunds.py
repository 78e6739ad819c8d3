"""Refund events: a ``refund`` that refers to a purchase takes back, in proportion to the money
refunded, the points and growth the purchase earned rule by rule, never twice for the same
money, and gives back the budget it used; and an event that earns growth only credits it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from apikit import assert_problem, issue_key
from sqlalchemy import func, select

from conftest import Api, PartnerKey, make_partner
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.db.session import Database
from tally.events.models import RuleCounter, StoredEvent
from tally.ledger.models import JournalEntry
from tally.ledger.verify import verify
from tally.tiers.models import GrowthEntry

REVIEWS = {
    "code": "REVIEWS",
    "names": {"zh-CN": "评价", "en": "Reviews"},
    "on": ["review"],
    "rules": [{"code": "growth", "award": {"growth": 7}}],
}


@pytest.fixture
def events_key(database: Database, partner: PartnerKey) -> PartnerKey:
    apply_campaigns(database, [*CAMPAIGNS, REVIEWS])
    return issue_key(database, partner, "events,members,read,earn,redeem")


def _purchase(event_id: str, member_id: int, value: str) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member_id,
        "occurred_at": "2026-12-02T10:00:00+08:00",
        "amount": {"value": value, "currency": "CNY"},
        "items": [{"sku": "tea", "amount": "80.00", "category": "drinks"}],
    }


def _refund(event_id: str, member_id: int, value: str, refers_to: str) -> dict[str, Any]:
    return {
        "type": "refund",
        "event_id": event_id,
        "member_id": member_id,
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "amount": {"value": value, "currency": "CNY"},
        "refers_to": refers_to,
    }


def _growth(database: Database, member_id: int) -> int:
    with database.read() as session:
        total = session.scalar(
            select(func.sum(GrowthEntry.points)).where(GrowthEntry.member_id == member_id)
        )
    return int(total or 0)


def _budget_used(database: Database) -> int:
    with database.read() as session:
        counter = session.get(RuleCounter, "budget:BONUS")
        return 0 if counter is None else counter.used


def _rules(answer: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [(r["campaign"], r["rule"], r["points"], r["growth"]) for r in answer["rules"]]


def test_a_refund_takes_back_in_proportion_rule_by_rule_and_gives_the_budget_back(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13800000001")
    events = Api(client, events_key)
    bought = events.post("/v1/events", _purchase("order-1", member, "200.00")).json()
    assert _rules(bought) == [
        ("BASE", "per-yuan", 200, 0),
        ("BASE", "growth", 0, 200),
        ("BONUS", "drinks", 160, 0),
    ]
    assert _budget_used(database) == 160

    half = events.post("/v1/events", _refund("refund-1", member, "100.00", "order-1"))

    assert half.status_code == 201, half.text
    body = half.json()
    assert (body["points"], body["growth"], body["refund_of"]) == (-180, -100, "order-1")
    assert _rules(body) == [
        ("BASE", "per-yuan", -100, 0),
        ("BASE", "growth", 0, -100),
        ("BONUS", "drinks", -80, 0),
    ]
    assert api.balance(member)["available"] == 180
    assert _growth(database, member) == 100
    assert _budget_used(database) == 80
    with database.read() as session:
        entry = session.get(JournalEntry, uuid.UUID(body["transaction_id"]))
        assert entry is not None
        assert (entry.kind.value, entry.details["clawed_back"], entry.details["shortfall"]) == (
            "clawback",
            180,
            0,
        )

    # The same refund again writes nothing; the rest of the money takes back exactly the rest.
    again = events.post("/v1/events", _refund("refund-1", member, "100.00", "order-1"))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    rest = events.post("/v1/events", _refund("refund-2", member, "100.00", "order-1")).json()
    assert (rest["points"], rest["growth"]) == (-180, -100)
    assert api.balance(member)["available"] == 0
    assert _growth(database, member) == 0
    assert _budget_used(database) == 0

    # Money already refunded is never refunded again.
    beyond = events.post("/v1/events", _refund("refund-3", member, "0.01", "order-1"))
    assert_problem(beyond, 422, "validation_error")
    assert "exceeds what is left" in beyond.json()["detail"]
    with database.read() as session:
        purchase = session.scalars(
            select(StoredEvent).where(StoredEvent.event_id == "order-1")
        ).one()
        assert purchase.refunded_minor == 20_000
        assert verify(session).ok


def test_uneven_refunds_never_take_back_more_than_was_earned(
    api: Api, client: Any, events_key: PartnerKey
) -> None:
    member = api.enrol("13800000002")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-3", member, "100.00"))  # 100 + 160 points
    taken = [
        events.post("/v1/events", _refund(f"r-{i}", member, value, "order-3")).json()["points"]
        for i, value in enumerate(["33.33", "33.33", "33.34"])
    ]

    assert sum(taken) == -260
    assert all(points < 0 for points in taken)
    assert api.balance(member)["available"] == 0


def test_a_refund_of_spent_points_claws_what_is_left_and_reports_the_shortfall(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13800000003")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-4", member, "200.00"))  # 360 points
    assert events.redeem(member, 300).status_code == 201

    body = events.post("/v1/events", _refund("r-4", member, "200.00", "order-4")).json()

    assert body["points"] == -360
    assert api.balance(member)["available"] == 0
    with database.read() as session:
        entry = session.get(JournalEntry, uuid.UUID(body["transaction_id"]))
        assert entry is not None
        assert (entry.details["clawed_back"], entry.details["shortfall"]) == (60, 300)
        assert verify(session).ok


def test_a_purchase_and_its_refund_in_one_batch_go_in_order(
    api: Api, client: Any, events_key: PartnerKey
) -> None:
    member = api.enrol("13800000004")
    batch = [
        _refund("r-early", member, "10.00", "order-5"),  # before its purchase: nothing to refund
        _purchase("order-5", member, "100.00"),
        _refund("r-5", member, "50.00", "order-5"),
    ]

    results = Api(client, events_key).post("/v1/events/batch", {"events": batch}).json()["results"]

    assert [r.get("status") for r in results] == [422, "processed", "processed"]
    assert (results[1]["points"], results[2]["points"]) == (260, -130)
    assert api.balance(member)["available"] == 130


def test_a_refund_dry_run_writes_nothing(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13800000005")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-6", member, "200.00"))

    dry = events.post("/v1/events?dry_run=true", _refund("r-6", member, "50.00", "order-6"))

    assert dry.status_code == 200, dry.text
    assert (dry.json()["status"], dry.json()["points"]) == ("dry_run", -90)
    assert api.balance(member)["available"] == 360
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == 1
        assert session.scalars(select(StoredEvent.refunded_minor)).all() == [0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"refers_to": "no-such-order"}, "refers_to"),
        ({"refers_to": None}, "refers_to"),
        ({"amount": None}, "amount"),
        ({"amount": {"value": "200.01", "currency": "CNY"}}, "amount"),
        ({"items": [{"sku": "tea", "amount": "1.00"}]}, "items"),
    ],
)
def test_a_bad_refund_is_refused_and_writes_nothing(
    api: Api,
    client: Any,
    events_key: PartnerKey,
    database: Database,
    change: dict[str, Any],
    field: str,
) -> None:
    member = api.enrol("13800000006")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-7", member, "200.00"))
    sent = {**_refund("r-7", member, "10.00", "order-7"), **change}

    answer = events.post("/v1/events", {k: v for k, v in sent.items() if v is not None})

    assert_problem(answer, 422, "validation_error")
    assert field in answer.text
    assert api.balance(member)["available"] == 360
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == 1


def test_a_refund_refers_only_to_the_same_partner_and_member(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13800000007")
    other_member = api.enrol("13800000008")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-8", member, "200.00"))
    shop = Api(client, make_partner(database, "SHOP", "events"))

    assert_problem(
        shop.post("/v1/events", _refund("r-8", member, "10.00", "order-8")),
        422,
        "validation_error",
    )
    assert_problem(
        events.post("/v1/events", _refund("r-9", other_member, "10.00", "order-8")),
        422,
        "validation_error",
    )
    assert api.balance(member)["available"] == 360


def test_a_refunded_purchase_is_not_reversed_whole_and_a_reversed_one_not_refunded(
    api: Api, client: Any, events_key: PartnerKey
) -> None:
    member = api.enrol("13800000009")
    events = Api(client, events_key)
    first = events.post("/v1/events", _purchase("order-9", member, "200.00")).json()
    events.post("/v1/events", _refund("r-10", member, "50.00", "order-9"))

    whole = events.post(f"/v1/transactions/{first['transaction_id']}/reverse", {})
    assert_problem(whole, 409, "not_reversible")

    second = events.post("/v1/events", _purchase("order-10", member, "100.00")).json()
    assert (
        events.post(f"/v1/transactions/{second['transaction_id']}/reverse", {}).status_code == 201
    )
    assert_problem(
        events.post("/v1/events", _refund("r-11", member, "10.00", "order-10")),
        409,
        "already_reversed",
    )


def test_an_event_that_earns_growth_only_credits_the_growth(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13800000010")
    review = {
        "type": "review",
        "event_id": "rev-1",
        "member_id": member,
        "occurred_at": "2026-12-02T10:00:00Z",
    }

    body = Api(client, events_key).post("/v1/events", review).json()

    assert (body["points"], body["growth"], body["transaction_id"]) == (0, 7, None)
    assert _growth(database, member) == 7
    assert api.balance(member)["available"] == 0


def test_the_member_history_says_how_each_event_earned_and_what_a_refund_took_back(
    api: Api, client: Any, events_key: PartnerKey
) -> None:
    member = api.enrol("13800000011")
    events = Api(client, events_key)
    events.post("/v1/events", _purchase("order-11", member, "200.00"))
    events.post("/v1/events", _refund("r-12", member, "100.00", "order-11"))
    events.redeem(member, 10)
    link = events.post(f"/v1/members/{member}/links").json()["url"]
    assert client.get(link, follow_redirects=False).status_code == 303

    page = client.get("/m/history", headers={"Accept-Language": "en"}).text

    explained = re.findall(r'<details class="m-row-why".*?</details>', page, re.S)
    assert len(explained) == 2  # the earn and the take-back; the redemption has none
    taken_back, earned = explained  # newest first
    assert "What was taken back" in taken_back
    assert "How I earned this" in earned
    lines = [
        (name, points)
        for name, points in re.findall(
            r"<li><span>(.*?)</span> <span class=\"num\">(.*?)</span>", earned
        )
    ]
    assert lines == [("Points on spend", "+200"), ("Bonus", "+160")]
    assert "−80" in taken_back or "-80" in taken_back
    chinese = client.get("/m/history", headers={"Accept-Language": "zh-CN"}).text
    assert "积分来源" in chinese
    assert "消费积分" in chinese
