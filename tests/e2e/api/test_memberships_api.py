"""Paid memberships over the partner API, on SQLite and PostgreSQL: subscribe, pay, renew,
cancel and resume, refund, expire; every refusal with its code and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state, tolerant_client
from sqlalchemy import select

from conftest import Api, PartnerKey, make_partner
from support.membership_programme import apply_programme
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.memberships import jobs
from tally.memberships import service as memberships
from tally.memberships.models import MembershipEvent
from tally.programme.domain import Programme

VIP = {"minor_units": 8800, "currency": "CNY"}
MONTHLY = {"minor_units": 1500, "currency": "CNY"}


@pytest.fixture
def programme(database: Database, partner: PartnerKey) -> Programme:
    return apply_programme(database)


@pytest.fixture
def api(app: Any, partner: PartnerKey, programme: Programme) -> Iterator[Api]:
    with tolerant_client(app) as client:
        yield Api(client, partner)


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def give_growth(database: Database, programme: Programme, member: int, points: int) -> None:
    from tally.tiers import service as tiers

    with database.write() as session:
        tiers.adjust(session, member, points, "test", utcnow(), programme)


def subscribe(api: Api, member: int, plan: str = "MONTHLY", status: int = 201) -> dict[str, Any]:
    return ok(api.post(f"/v1/members/{member}/memberships", {"plan": plan}), status)


def pay(
    api: Api,
    membership: str,
    reference: str,
    amount: dict[str, Any] | None = None,
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body = {"reference": reference, "amount": amount or MONTHLY, **extra}
    return ok(api.post(f"/v1/memberships/{membership}/payments", body), status)


def unknown_id() -> str:
    return "0190f5a0-0000-7000-8000-000000000000"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def events(database: Database, membership: str) -> list[str]:
    import uuid

    with database.read() as session:
        rows = session.scalars(
            select(MembershipEvent.kind)
            .where(MembershipEvent.membership_id == uuid.UUID(membership))
            .order_by(MembershipEvent.id)
        )
        return [kind.value for kind in rows]


# --- Lifecycle --------------------------------------------------------------------------------


def test_subscribe_pay_renew_cancel_resume_refund(api: Api, database: Database) -> None:
    member = api.enrol("13900000001")

    created = subscribe(api, member)
    assert created["status"] == "pending"
    assert created["plan"] == {"code": "MONTHLY", "names": {"zh-CN": "月卡", "en": "Monthly"}}
    assert created["amount_due"] == {**MONTHLY, "display": "15.00 CNY"}
    assert created["term"] == "P1M"
    assert created["current_period"] is None
    assert created["payments"] == []
    # Asking again returns the same pending membership.
    assert subscribe(api, member, status=200) == created
    membership = created["id"]

    before = utcnow()
    first = pay(api, membership, "pay-1")
    after = utcnow()
    active = first["membership"]
    assert active["status"] == "active"
    start, end = at(active["current_period"]["start"]), at(active["current_period"]["end"])
    assert before <= start <= after
    assert first["payment"]["period"] == active["current_period"]
    assert first["payment"]["amount"]["display"] == "15.00 CNY"
    assert 28 <= (end - start).days <= 31

    renewed = pay(api, membership, "pay-2")["membership"]
    assert at(renewed["current_period"]["start"]) == start
    second_end = at(renewed["current_period"]["end"])
    assert 28 <= (second_end - end).days <= 31  # from the current end, not from now
    assert [p["reference"] for p in renewed["payments"]] == ["pay-1", "pay-2"]

    cancelled = ok(api.post(f"/v1/memberships/{membership}/cancel"))
    assert (cancelled["status"], cancelled["cancel_at_period_end"]) == ("active", True)
    resumed = ok(api.post(f"/v1/memberships/{membership}/resume"))
    assert (resumed["status"], resumed["cancel_at_period_end"]) == ("active", False)

    # Refunding the earlier payment while the later one stands is refused.
    assert_problem(
        api.post(f"/v1/memberships/{membership}/refunds", {"payment_reference": "pay-1"}),
        409,
        "conflict",
    )
    # A partial refund of the latest payment returns money only.
    partial = ok(
        api.post(
            f"/v1/memberships/{membership}/refunds",
            {"payment_reference": "pay-2", "amount": {"minor_units": 500, "currency": "CNY"}},
        ),
        201,
    )
    assert partial["payment"]["refunded"]["minor_units"] == 500
    assert at(partial["membership"]["current_period"]["end"]) == second_end
    # The rest of it revokes the second period: the end rolls back to the first period's end.
    rest = ok(
        api.post(f"/v1/memberships/{membership}/refunds", {"payment_reference": "pay-2"}), 201
    )
    assert rest["payment"]["refunded"]["minor_units"] == 1500
    assert rest["payment"]["revoked_at"] is not None
    assert rest["membership"]["status"] == "active"
    assert at(rest["membership"]["current_period"]["end"]) == end
    # Now the first payment is the latest standing one: refunding it ends the membership now.
    ended = ok(
        api.post(f"/v1/memberships/{membership}/refunds", {"payment_reference": "pay-1"}), 201
    )["membership"]
    assert ended["status"] == "refunded"
    assert ended["ended_at"] is not None
    assert at(ended["current_period"]["end"]) <= utcnow()

    listed = ok(api.get(f"/v1/members/{member}/memberships"))
    assert [item["id"] for item in listed["items"]] == [membership]
    assert ok(api.get(f"/v1/memberships/{membership}")) == listed["items"][0]
    assert events(database, membership) == [
        "subscribed",
        "activated",
        "renewed",
        "cancelled",
        "resumed",
        "refunded",
        "refunded",
        "refunded",
    ]
    with database.read() as session:
        assert memberships.active_memberships(session, member, utcnow()) == []
    history = ok(api.get(f"/v1/memberships/{membership}/events"))["items"]
    assert [item["kind"] for item in history] == events(database, membership)
    assert history[1]["partner_id"] == api.key.partner_id
    assert history[1]["amount"] == {**MONTHLY, "display": "15.00 CNY"}
    assert (history[1]["status_before"], history[1]["status_after"]) == ("pending", "active")
    assert history[1]["details"]["reference"] == "pay-1"
    assert history[-1]["details"] == {"reference": "pay-1", "effect": "ends_membership"}
    assert_problem(api.get(f"/v1/memberships/{unknown_id()}/events"), 404, "not_found")


def test_a_renewal_resumes_a_membership_cancelled_at_period_end(api: Api) -> None:
    member = api.enrol("13900000002")
    membership = subscribe(api, member)["id"]
    pay(api, membership, "r-1")
    ok(api.post(f"/v1/memberships/{membership}/cancel"))
    renewed = pay(api, membership, "r-2")["membership"]
    assert (renewed["status"], renewed["cancel_at_period_end"]) == ("active", False)


def bought_at(
    database: Database, programme: Programme, partner: PartnerKey, member: int, when: datetime
) -> str:
    """A MONTHLY membership subscribed and paid at ``when``, through the services (the API
    takes only payments made in the last few days)."""
    actor = memberships.Actor(partner_id=partner.partner_id)
    plan = programme.plan("MONTHLY")
    assert plan is not None
    with database.write() as session:
        row, _ = memberships.subscribe(session, actor, member, "MONTHLY", programme, when)
        memberships.pay(
            session, actor, row.id, f"old-{member}", plan.price.money, when, programme, when
        )
    return str(row.id)


def test_the_first_period_starts_when_the_money_was_taken(
    api: Api, database: Database, programme: Programme, partner: PartnerKey
) -> None:
    member = api.enrol("13900000003")
    subscribed = subscribe(api, member)
    membership = subscribed["id"]
    taken = at(subscribed["created_at"])  # a payment never precedes its subscription
    body = pay(api, membership, "p-1", paid_at=taken.isoformat())["membership"]
    assert at(body["current_period"]["start"]) == taken
    assert body["status"] == "active"

    # Paid on 31 January (Shanghai): one month later is the last day of February; long over,
    # the read shows it expired though the job has not run.
    other = api.enrol("13900000103")
    membership = bought_at(database, programme, partner, other, at("2026-01-31T10:00:00+08:00"))
    body = ok(api.get(f"/v1/memberships/{membership}"))
    assert body["current_period"] == {
        "start": "2026-01-31T02:00:00Z",
        "end": "2026-02-28T02:00:00Z",
    }
    assert body["status"] == "expired"
    # Paying an expired membership starts a new period now.
    before = utcnow()
    again = pay(api, membership, "p-2")["membership"]
    assert again["status"] == "active"
    assert at(again["current_period"]["start"]) >= before


def test_the_same_payment_reference_never_buys_a_second_period(
    api: Api, database: Database
) -> None:
    member = api.enrol("13900000004")
    membership = subscribe(api, member)["id"]
    first = pay(api, membership, "dup-1")
    # Another Idempotency-Key, the same reference: the same payment, nothing new.
    again = pay(api, membership, "dup-1", status=200)
    assert again["payment"] == first["payment"]
    assert again["membership"]["current_period"] == first["membership"]["current_period"]
    assert len(again["membership"]["payments"]) == 1
    # The same reference for another amount or membership is refused.
    other = subscribe(api, api.enrol("13900000005"))["id"]
    state = db_state(database)
    assert_problem(
        api.post(f"/v1/memberships/{other}/payments", {"reference": "dup-1", "amount": MONTHLY}),
        409,
        "duplicate_reference",
    )
    assert db_state(database) == state
    assert events(database, membership) == ["subscribed", "activated"]


def test_an_idempotency_key_replays_the_first_answer(api: Api) -> None:
    member = api.enrol("13900000006")
    membership = subscribe(api, member)["id"]
    body = {"reference": "k-1", "amount": MONTHLY}
    path = f"/v1/memberships/{membership}/payments"
    first = api.post(path, body, idempotency_key="same-key")
    second = api.post(path, body, idempotency_key="same-key")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()


# --- Eligibility ------------------------------------------------------------------------------


def test_eligibility_on_growth_value_and_tier(
    api: Api, database: Database, programme: Programme
) -> None:
    member = api.enrol("13900000007")
    state = db_state(database)
    body = assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "VIP88"}), 403, "not_eligible"
    )
    assert body["plan"] == "VIP88"
    assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "CLUB"}), 403, "not_eligible"
    )
    assert db_state(database) == state

    give_growth(database, programme, member, 1000)
    assert subscribe(api, member, "VIP88")["status"] == "pending"
    assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "CLUB"}), 403, "not_eligible"
    )
    give_growth(database, programme, member, 15000)  # PLATINUM
    assert subscribe(api, member, "CLUB")["status"] == "pending"


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "status", "code"),
    [
        ({"minor_units": 1499, "currency": "CNY"}, 422, "payment_mismatch"),
        ({"minor_units": 1500, "currency": "USD"}, 422, "payment_mismatch"),
        ({"minor_units": 1500, "currency": "XYZ"}, 422, "payment_mismatch"),
        ({"minor_units": 10**16, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": 15.0, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": 1500.5, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": "1500", "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": 1500, "currency": "cny"}, 422, "validation_error"),
        ({"minor_units": 0, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": -1500, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": True, "currency": "CNY"}, 422, "validation_error"),
        ({"minor_units": 1500}, 422, "validation_error"),
    ],
)
def test_wrong_payments_are_refused_and_write_nothing(
    api: Api, database: Database, amount: dict[str, Any], status: int, code: str
) -> None:
    membership = subscribe(api, api.enrol("13900000008"))["id"]
    state = db_state(database)
    response = api.post(
        f"/v1/memberships/{membership}/payments", {"reference": "bad", "amount": amount}
    )
    assert_problem(response, status, code)
    assert db_state(database) == state


def test_unknown_things_are_refused_and_write_nothing(api: Api, database: Database) -> None:
    member = api.enrol("13900000009")
    state = db_state(database)
    unknown = "0190f5a0-0000-7000-8000-000000000000"
    assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "NOPE"}), 422, "validation_error"
    )
    assert_problem(
        api.post("/v1/members/999999/memberships", {"plan": "MONTHLY"}), 404, "not_found"
    )
    for path in (f"/v1/memberships/{unknown}", "/v1/memberships/not-a-uuid"):
        assert_problem(api.get(path), 404, "not_found")
        assert_problem(
            api.post(f"{path}/payments", {"reference": "x", "amount": MONTHLY}), 404, "not_found"
        )
        assert_problem(api.post(f"{path}/cancel"), 404, "not_found")
        assert_problem(api.post(f"{path}/refunds", {"payment_reference": "x"}), 404, "not_found")
    assert_problem(api.get("/v1/members/999999/memberships"), 404, "not_found")
    assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "MONTHLY", "x": 1}),
        422,
        "validation_error",
    )
    assert db_state(database) == state


def test_refund_refusals_write_nothing(api: Api, database: Database) -> None:
    membership = subscribe(api, api.enrol("13900000010"))["id"]
    path = f"/v1/memberships/{membership}/refunds"
    assert_problem(api.post(path, {"payment_reference": "none"}), 404, "not_found")
    pay(api, membership, "rf-1")
    state = db_state(database)
    assert_problem(
        api.post(
            path,
            {"payment_reference": "rf-1", "amount": {"minor_units": 1501, "currency": "CNY"}},
        ),
        422,
        "refund_exceeds_payment",
    )
    assert_problem(
        api.post(
            path, {"payment_reference": "rf-1", "amount": {"minor_units": 10, "currency": "USD"}}
        ),
        422,
        "payment_mismatch",
    )
    assert_problem(
        api.post(
            path, {"payment_reference": "rf-1", "amount": {"minor_units": 9.5, "currency": "CNY"}}
        ),
        422,
        "validation_error",
    )
    assert_problem(api.post(path, {"payment_reference": "unknown"}), 404, "not_found")
    assert db_state(database) == state
    ok(api.post(path, {"payment_reference": "rf-1"}), 201)
    assert_problem(api.post(path, {"payment_reference": "rf-1"}), 422, "refund_exceeds_payment")


def test_a_refund_is_idempotent_by_its_key(api: Api) -> None:
    membership = subscribe(api, api.enrol("13900000011"))["id"]
    pay(api, membership, "i-1")
    body = {"payment_reference": "i-1", "amount": {"minor_units": 100, "currency": "CNY"}}
    path = f"/v1/memberships/{membership}/refunds"
    first = ok(api.post(path, body, idempotency_key="refund-1"), 201)
    again = ok(api.post(path, body, idempotency_key="refund-1"), 201)
    assert again == first
    assert first["payment"]["refunded"]["minor_units"] == 100


def test_cancel_and_resume_need_an_active_membership(api: Api, database: Database) -> None:
    membership = subscribe(api, api.enrol("13900000012"))["id"]
    state = db_state(database)
    for action in ("cancel", "resume"):
        body = assert_problem(
            api.post(f"/v1/memberships/{membership}/{action}"), 409, "membership_not_active"
        )
        assert body["membership_status"] == "pending"
    assert db_state(database) == state


def test_a_frozen_member_cannot_subscribe(api: Api, database: Database) -> None:
    member = api.enrol("13900000013")
    ok(api.post(f"/v1/members/{member}/freeze", {"reason": "fraud"}))
    state = db_state(database)
    assert_problem(
        api.post(f"/v1/members/{member}/memberships", {"plan": "MONTHLY"}), 409, "member_frozen"
    )
    assert db_state(database) == state


def test_scopes(app: Any, database: Database, programme: Programme) -> None:
    reader = make_partner(database, "READER", "read")
    with tolerant_client(app) as client:
        api = Api(client, reader)
        assert_problem(api.post("/v1/members/1/memberships", {"plan": "MONTHLY"}), 403, "forbidden")


# --- Expiry -----------------------------------------------------------------------------------


def test_expiry_job_at_the_period_end_exactly(
    api: Api, database: Database, programme: Programme, partner: PartnerKey
) -> None:
    member = api.enrol("13900000014")
    # Paid at midnight in Shanghai on 31 March: the period ends at midnight on 30 April.
    when = at("2026-03-31T00:00:00+08:00")
    membership = bought_at(database, programme, partner, member, when)
    paid = ok(api.get(f"/v1/memberships/{membership}"))
    end = at(paid["current_period"]["end"])
    assert end == at("2026-04-30T00:00:00+08:00")
    # Already over when read, though the job has not run: it cannot be cancelled.
    cancel = api.post(f"/v1/memberships/{membership}/cancel")
    assert assert_problem(cancel, 409, "membership_not_active")["membership_status"] == "expired"

    assert jobs.expire(database.write, end - timedelta(microseconds=1)).expired == 0
    report = jobs.expire(database.write, end)
    assert (report.expired, report.abandoned) == (1, 0)
    assert jobs.expire(database.write, end + timedelta(days=1)).expired == 0  # idempotent
    body = ok(api.get(f"/v1/memberships/{membership}"))
    assert (body["status"], body["ended_at"]) == ("expired", "2026-04-29T16:00:00Z")
    kinds = events(database, membership)
    assert kinds.count("expired") == 1


def test_unpaid_subscriptions_are_abandoned_after_a_day(api: Api, database: Database) -> None:
    member = api.enrol("13900000015")
    created = subscribe(api, member)
    made = at(created["created_at"])
    assert jobs.expire(database.write, made + timedelta(hours=23)).abandoned == 0
    assert jobs.expire(database.write, made + timedelta(hours=24)).abandoned == 1
    # A new subscription may start once the old one is abandoned.
    assert subscribe(api, member)["id"] != created["id"]


def test_paid_at_must_be_aware_and_neither_in_the_future_nor_far_in_the_past(
    api: Api, database: Database
) -> None:
    membership = subscribe(api, api.enrol("13900000016"))["id"]
    path = f"/v1/memberships/{membership}/payments"
    state = db_state(database)
    now = utcnow()
    cases = {
        (now + timedelta(hours=1)).isoformat(): "in the future",
        (now - timedelta(days=8)).isoformat(): "more than 7 days ago",
        "2020-01-01T00:00:00Z": "more than 7 days ago",
        (now - timedelta(hours=1)).isoformat(): "before the membership was subscribed",
        "2026-01-31T10:00:00": "timezone",
        "yesterday": "datetime",
    }
    for paid_at, reason in cases.items():
        body = {"reference": "t-1", "amount": MONTHLY, "paid_at": paid_at}
        refused = assert_problem(api.post(path, body), 422, "validation_error")
        assert reason in refused["detail"], (paid_at, refused)
    assert db_state(database) == state
    # Just after the subscription, and 4 minutes ahead (clock skew), are fine.
    pay(api, membership, "t-2", paid_at=(utcnow() + timedelta(minutes=4)).isoformat())


def test_a_partner_refunds_only_its_own_payments(
    app: Any, api: Api, database: Database, partner: PartnerKey
) -> None:
    membership = subscribe(api, api.enrol("13900000017"))["id"]
    pay(api, membership, "own-1")
    # Another of the operator's channels: it may manage the membership, not refund MOBILE's.
    other = make_partner(database, "OTHER", "members,read", operator_channel=True)
    with tolerant_client(app) as client:
        stranger = Api(client, other)
        state = db_state(database)
        refused = stranger.post(
            f"/v1/memberships/{membership}/refunds", {"payment_reference": "own-1"}
        )
        assert_problem(refused, 404, "not_found")
        assert db_state(database) == state
        # The other partner may pay with the same reference: references are per partner.
        renewed = pay(stranger, membership, "own-1")
        assert len(renewed["membership"]["payments"]) == 2
        assert renewed["payment"]["partner_id"] == other.partner_id
        assert renewed["payment"] == renewed["membership"]["payments"][1]
