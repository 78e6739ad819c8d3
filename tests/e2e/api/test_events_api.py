"""``POST /v1/events``, its batch and its dry run, ``GET /v1/events/{id}``: events turned into
points by the programme's rules, explained, stored once, and refused cleanly."""

from __future__ import annotations

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


@pytest.fixture
def events_key(database: Database, partner: PartnerKey) -> PartnerKey:
    apply_campaigns(database, CAMPAIGNS)
    return issue_key(database, partner, "events,members,read")


def _purchase(event_id: str, member_id: int, value: str = "152.00", **extra: Any) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member_id,
        "occurred_at": "2026-12-02T10:00:00+08:00",
        "amount": {"value": value, "currency": "CNY"},
        **extra,
    }


def _count(database: Database, model: Any) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_purchase_earns_by_the_rules_explained_and_stored_once(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13700000001")
    events = Api(client, events_key)
    sent = _purchase(
        "order-1", member, items=[{"sku": "t1", "amount": "30.00", "category": "drinks"}]
    )

    answer = events.post("/v1/events", sent)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["status"], body["points"], body["growth"]) == ("processed", 212, 152)
    assert [(r["campaign"], r["rule"], r["points"], r["growth"]) for r in body["rules"]] == [
        ("BASE", "per-yuan", 152, 0),
        ("BASE", "growth", 0, 152),
        ("BONUS", "drinks", 60, 0),
    ]
    assert {(s["campaign"], s["reason"]) for s in body["skipped"]} == {
        ("SURVEY", "not_this_event_type"),
        ("WELCOME", "not_this_event_type"),
    }
    assert api.balance(member)["available"] == 212
    with database.read() as session:
        entry = session.get(JournalEntry, uuid.UUID(body["transaction_id"]))
        assert entry is not None
        assert [line["reason"] for line in entry.details["lines"]] == [
            "BASE/per-yuan",
            "BONUS/drinks",
        ]

    again = events.post("/v1/events", sent)  # another Idempotency-Key, the same event

    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat["status"] == "duplicate"
    assert (repeat["id"], repeat["points"], repeat["transaction_id"]) == (
        body["id"],
        212,
        body["transaction_id"],
    )
    assert api.balance(member)["available"] == 212
    assert _count(database, StoredEvent) == 1
    assert events.get(f"/v1/events/{body['id']}").json()["rules"] == body["rules"]
    with database.read() as session:
        assert verify(session).ok


def test_a_budget_cuts_the_grant_then_skips_and_a_dry_run_writes_nothing(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13700000002")
    events = Api(client, events_key)
    drinks = [{"sku": "t1", "amount": "80.00", "category": "drinks"}]

    first = events.post("/v1/events", _purchase("o-1", member, "80.00", items=drinks)).json()
    second = events.post("/v1/events", _purchase("o-2", member, "80.00", items=drinks)).json()
    third = events.post("/v1/events", _purchase("o-3", member, "80.00", items=drinks)).json()

    bonus = [
        [r["points"] for r in e["rules"] if r["campaign"] == "BONUS"]
        for e in (first, second, third)
    ]
    assert bonus == [[160], [40], []]  # the budget of 200: 160, then the 40 left, then nothing
    assert {(s["campaign"], s["reason"]) for s in third["skipped"]} >= {
        ("BONUS", "budget_exhausted")
    }
    with database.read() as session:
        assert session.get(RuleCounter, "budget:BONUS").used == 200  # type: ignore[union-attr]

    balance = api.balance(member)["available"]
    stored = _count(database, StoredEvent)
    dry = events.post("/v1/events?dry_run=true", _purchase("o-4", member, "10.00"))

    assert dry.status_code == 200, dry.text
    assert (dry.json()["status"], dry.json()["points"], dry.json()["id"]) == ("dry_run", 10, None)
    assert api.balance(member)["available"] == balance
    assert _count(database, StoredEvent) == stored


def test_a_batch_answers_each_event_on_its_own_in_order(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13700000003")
    events = Api(client, events_key)
    batch = [
        _purchase("b-1", member, "10.00"),
        _purchase("b-2", member, "10.00", amount={"value": "10.00", "currency": "USD"}),
        _purchase("b-1", member, "10.00"),
        {
            "type": "sign_in",
            "event_id": "s-1",
            "member_id": member,
            "occurred_at": "2026-12-02T08:00:00Z",
        },
        _purchase("b-3", 999_999),
    ]

    answer = events.post("/v1/events/batch", {"events": batch})

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r.get("status") for r in results] == ["processed", 422, "duplicate", "processed", 404]
    assert results[1]["code"] == "validation_error"
    assert (results[0]["points"], results[3]["points"]) == (10, 5)
    assert api.balance(member)["available"] == 15
    assert _count(database, StoredEvent) == 2


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"type": "teleport"}, 422, "validation_error"),
        ({"amount": {"value": 152.0, "currency": "CNY"}}, 422, "validation_error"),
        ({"amount": {"value": "1.001", "currency": "CNY"}}, 422, "validation_error"),
        ({"amount": {"value": "10.00", "currency": "EUR"}}, 422, "validation_error"),
        ({"occurred_at": "2026-12-02T10:00:00"}, 422, "validation_error"),
        ({"attributes": {"colour": "red"}}, 422, "validation_error"),
        ({"member_id": 987_654}, 404, "not_found"),
    ],
)
def test_a_bad_event_is_refused_and_writes_nothing(
    api: Api,
    client: Any,
    events_key: PartnerKey,
    database: Database,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    member = api.enrol("13700000004")
    entries = _count(database, JournalEntry)

    answer = Api(client, events_key).post("/v1/events", {**_purchase("bad-1", member), **change})

    assert_problem(answer, status, code)
    assert _count(database, StoredEvent) == 0
    assert _count(database, JournalEntry) == entries


def test_events_need_the_events_scope_and_a_partner_reads_only_its_own(
    api: Api, client: Any, events_key: PartnerKey, database: Database, partner: PartnerKey
) -> None:
    member = api.enrol("13700000005")
    assert_problem(
        Api(client, partner).post("/v1/events", _purchase("x-1", member)), 403, "forbidden"
    )
    stored = Api(client, events_key).post("/v1/events", _purchase("x-1", member)).json()
    other = make_partner(database, "SHOP", "events")

    assert_problem(Api(client, other).get(f"/v1/events/{stored['id']}"), 404, "not_found")
    # The same event_id from another partner is another event.
    theirs = Api(client, other).post("/v1/events", _purchase("x-1", member))
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != stored["id"]


def test_a_member_is_found_by_an_identity_in_a_namespace_the_partner_may_use(
    api: Api, client: Any, events_key: PartnerKey
) -> None:
    member = api.enrol("13700000006")
    sent = _purchase("n-1", member)
    del sent["member_id"]
    sent["member"] = {"namespace": "phone", "id": "13700000006"}

    answer = Api(client, events_key).post("/v1/events", sent)

    assert answer.status_code == 201, answer.text
    assert answer.json()["member_id"] == member
    both = {**sent, "event_id": "n-2", "member_id": member}
    assert_problem(Api(client, events_key).post("/v1/events", both), 422, "validation_error")


def test_a_batch_takes_a_thousand_events_and_refuses_more(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13700000007")
    events = Api(client, events_key)
    batch = [
        _purchase(f"k-{index}", member, "1.00", channel="store", attributes={})
        for index in range(1000)
    ]

    answer = events.post("/v1/events/batch", {"events": batch})

    assert answer.status_code == 200, answer.text[:500]
    assert [r["status"] for r in answer.json()["results"]] == ["processed"] * 1000
    assert api.balance(member)["available"] == 1000
    too_many = events.post("/v1/events/batch", {"events": [*batch, _purchase("k-x", member)]})
    assert_problem(too_many, 422, "validation_error")
    assert _count(database, StoredEvent) == 1000


@pytest.mark.parametrize(
    ("attributes", "points"),
    [
        ({"score": 9, "spent": "9.50"}, 20),
        ({"score": 9, "spent": "9.49"}, 0),
        ({"score": 7, "spent": "12.00"}, 0),
    ],
)
def test_a_custom_event_type_carries_typed_attributes_the_rules_read(
    api: Api, client: Any, events_key: PartnerKey, attributes: dict[str, Any], points: int
) -> None:
    member = api.enrol("13700000008")
    sent = {
        "type": "survey_done",
        "event_id": "survey-1",
        "member_id": member,
        "occurred_at": "2026-12-02T08:00:00Z",
        "attributes": attributes,
    }

    answer = Api(client, events_key).post("/v1/events", sent)

    assert answer.status_code == 201, answer.text
    assert answer.json()["points"] == points


@pytest.mark.parametrize(
    "attributes",
    [{"score": "9"}, {"score": 9.0}, {"spent": 9.5}, {"spent": "nine"}, {"mood": "good"}],
)
def test_an_attribute_of_another_type_or_undeclared_is_refused(
    api: Api, client: Any, events_key: PartnerKey, database: Database, attributes: dict[str, Any]
) -> None:
    member = api.enrol("13700000009")
    sent = {
        "type": "survey_done",
        "event_id": "survey-2",
        "member_id": member,
        "occurred_at": "2026-12-02T08:00:00Z",
        "attributes": attributes,
    }

    problem = assert_problem(
        Api(client, events_key).post("/v1/events", sent), 422, "validation_error"
    )

    assert "attribute" in problem["detail"].lower()
    assert _count(database, StoredEvent) == 0
