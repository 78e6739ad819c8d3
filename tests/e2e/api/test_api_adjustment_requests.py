"""Partner-API adjustments under the programme's guardrails, on SQLite and PostgreSQL: within
``staff.api_adjustment_limit`` posted at once; above it a ``202`` request (with its
``Location``) that the partner whose key filed it polls, that a staff approver decides on in
the console, and that expires at its deadline by the app's clock; a replay files nothing new;
the impossible is refused with the real limit; refusals write nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Api, PartnerKey, make_partner
from support.access import apply, with_api_adjustment_limit
from tally.adjustments.models import AdjustmentRequest
from tally.audit.models import AuditEntry
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import runtime
from tally.staff import service as staff_service
from tally.staff.models import StaffRole

LIMIT = 1_000
PASSWORD = "a-long-password"
TTL = timedelta(hours=72)


@dataclass
class Clock:
    """The time the app sees; tests move it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    app: FastAPI
    db: Database
    clock: Clock
    mobile: Api  # the operator's channel, every scope
    member: int


@pytest.fixture
def world(app: FastAPI, database: Database, partner: PartnerKey) -> Iterator[World]:
    with database.write() as session:
        apply(session, with_api_adjustment_limit(runtime.effective(session, Settings()), LIMIT))
        for role in (StaffRole.ADMIN, StaffRole.SUPPORT):  # the default approvers: admin
            staff_service.create(session, role.value, PASSWORD, role, role.title(), utcnow())
    clock = Clock(utcnow())  # from now on, the app's time (the programme applied is in force)
    app.state.clock = clock
    with TestClient(app, follow_redirects=False) as client:
        mobile = Api(client, partner)
        member = mobile.enrol("13900000001")
        assert mobile.earn(member, 3_000).status_code == 201
        yield World(app, database, clock, mobile, member)


def adjust(api: Api, member: int, points: int, key: str | None = None, **extra: Any) -> Any:
    body = {"points": points, "reason": "goodwill", **extra}
    return api.post(f"/v1/members/{member}/adjustments", body, idempotency_key=key)


def request_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AdjustmentRequest)) or 0)


def audit(db: Database, action: str) -> list[AuditEntry]:
    with db.read() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def console(world: World, username: str) -> tuple[TestClient, str]:
    """A browser signed in to the console as ``username``; its CSRF token."""
    browser = TestClient(world.app, follow_redirects=False)
    page = browser.get("/console/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    signed_in = browser.post(
        "/console/sign-in",
        data={"username": username, "password": PASSWORD, "csrf": csrf.group(1)},
    )
    assert signed_in.status_code == 303, signed_in.text
    token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/console/adjustments").text)
    assert token is not None
    return browser, token.group(1)


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)


def test_within_the_api_limit_an_adjustment_posts_at_once(world: World) -> None:
    posted = adjust(world.mobile, world.member, LIMIT)
    debited = adjust(world.mobile, world.member, -LIMIT)

    assert posted.status_code == debited.status_code == 201, posted.text
    assert "location" not in posted.headers
    assert posted.json()["balance"]["available"] == 3_000 + LIMIT
    assert world.mobile.balance(world.member)["available"] == 3_000
    assert request_count(world.db) == 0
    entries = audit(world.db, "member.adjust")
    assert [(entry.actor, entry.member_id) for entry in entries] == [
        (f"partner:{world.mobile.key.partner_id}", world.member)
    ] * 2
    assert entries[0].details is not None
    assert entries[0].details["key"] == world.mobile.key.api_key.split(".")[0]


def test_above_the_api_limit_the_answer_is_202_with_the_request_to_poll(world: World) -> None:
    before = world.mobile.balance(world.member)
    filed_at = world.clock.now
    valid_through = "2031-01-01T00:00:00Z"

    answer = adjust(world.mobile, world.member, LIMIT + 1, expires_at=valid_through)

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert answer.headers["location"] == f"/v1/adjustment-requests/{body['id']}"
    prefix = world.mobile.key.api_key.split(".")[0]
    assert {key: value for key, value in body.items() if key != "id"} == {
        "member_id": world.member,
        "points": LIMIT + 1,
        "reason": "goodwill",
        "points_expire_at": "2031-01-01T00:00:00Z",
        "status": "pending",
        "requested_by": {"partner": "MOBILE", "key": prefix},
        "requested_at": body["requested_at"],
        "expires_at": body["expires_at"],
        "limit": LIMIT,
        "decided_at": None,
        "transaction_id": None,
        "note": None,
    }
    assert datetime.fromisoformat(body["expires_at"]) == filed_at + TTL
    assert world.mobile.balance(world.member) == before  # nothing posted

    polled = world.mobile.get(answer.headers["location"])
    assert polled.status_code == 200
    assert polled.json() == body
    another_key = Api(world.mobile.client, make_partner(world.db, "MOBILE", "admin"))
    assert another_key.get(answer.headers["location"]).json() == body  # the same partner
    filed = audit(world.db, "adjustment.request")
    assert [(entry.actor, entry.member_id) for entry in filed] == [
        (f"partner:{world.mobile.key.partner_id}", world.member)
    ]


@pytest.mark.parametrize("operator_channel", [True, False])
def test_another_partner_polling_the_request_is_told_it_does_not_exist(
    world: World, operator_channel: bool
) -> None:
    number = adjust(world.mobile, world.member, LIMIT + 1).json()["id"]
    code = "APP" if operator_channel else "SHOP"
    other = Api(
        world.mobile.client,
        make_partner(world.db, code, "admin,read", operator_channel=operator_channel),
    )

    refused = other.get(f"/v1/adjustment-requests/{number}")
    unknown = world.mobile.get(f"/v1/adjustment-requests/{number + 1}")

    assert_problem(refused, 404, "not_found")
    assert_problem(unknown, 404, "not_found")
    lacking = Api(world.mobile.client, make_partner(world.db, "MOBILE", "read"))
    assert (
        assert_problem(lacking.get(f"/v1/adjustment-requests/{number}"), 403, "forbidden")["scope"]
        == "admin"
    )


def test_a_replay_returns_the_same_202_and_files_nothing_new(world: World) -> None:
    first = adjust(world.mobile, world.member, 50_000, key="adjust-once")
    again = adjust(world.mobile, world.member, 50_000, key="adjust-once")
    changed = adjust(world.mobile, world.member, 60_000, key="adjust-once")

    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert_problem(changed, 409, "idempotency_conflict")
    assert request_count(world.db) == 1
    assert len(audit(world.db, "adjustment.request")) == 1


@pytest.mark.parametrize("points", [10_000_001, -10_000_001])
def test_above_the_programmes_largest_adjustment_the_api_is_refused_with_it(
    world: World, points: int
) -> None:
    before = db_state(world.db)

    refused = adjust(world.mobile, world.member, points)

    body = assert_problem(refused, 422, "adjustment_too_large")
    assert body["limit"] == 10_000_000
    assert "at most 10,000,000 points" in body["detail"]
    assert db_state(world.db) == before


def test_a_debit_the_member_cannot_cover_is_refused_not_requested(world: World) -> None:
    before = db_state(world.db)

    refused = adjust(world.mobile, world.member, -(LIMIT + 5_000))

    assert_problem(refused, 409, "insufficient_points")
    assert db_state(world.db) == before


def test_a_staff_approver_posts_the_request_in_the_console(world: World) -> None:
    answer = adjust(world.mobile, world.member, LIMIT + 500)
    number = answer.json()["id"]
    browser, csrf = console(world, "admin")
    prefix = world.mobile.key.api_key.split(".")[0]

    listed = browser.get("/console/adjustments").text
    assert f"由合作方 MOBILE 通过 API 申请（密钥 {prefix}，API 权限 1,000）" in listed
    assert f'action="/console/adjustments/{number}/approve"' in listed
    approved = browser.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})
    assert approved.status_code == 303
    twice = browser.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})
    assert twice.status_code == 409

    polled = world.mobile.get(answer.headers["location"]).json()
    assert polled["status"] == "approved"
    assert polled["decided_at"] is not None
    assert world.mobile.balance(world.member)["available"] == 3_000 + LIMIT + 500
    history = world.mobile.get(f"/v1/members/{world.member}/transactions").json()["items"]
    assert (history[0]["id"], history[0]["kind"], history[0]["points"]) == (
        polled["transaction_id"],
        "adjust",
        LIMIT + 500,
    )
    assert history[0]["partner_id"] == world.mobile.key.partner_id  # the requester's
    approvals = audit(world.db, "adjustment.approve")
    assert len(approvals) == 1
    assert approvals[0].details is not None
    assert approvals[0].details["requested_by"] == f"partner:{world.mobile.key.partner_id}"


def test_a_role_that_does_not_approve_cannot_decide_on_an_api_request(world: World) -> None:
    number = adjust(world.mobile, world.member, LIMIT + 1).json()["id"]
    browser, csrf = console(world, "support")
    before = db_state(world.db)

    refused = browser.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})

    assert refused.status_code == 403
    assert db_state(world.db) == before
    assert world.mobile.get(f"/v1/adjustment-requests/{number}").json()["status"] == "pending"


def test_a_rejection_is_polled_with_its_note(world: World) -> None:
    answer = adjust(world.mobile, world.member, LIMIT + 1)
    browser, csrf = console(world, "admin")

    rejected = browser.post(
        f"/console/adjustments/{answer.json()['id']}/reject",
        data={"csrf": csrf, "note": "no ticket"},
    )

    assert rejected.status_code == 303
    polled = world.mobile.get(answer.headers["location"]).json()
    assert (polled["status"], polled["note"], polled["transaction_id"]) == (
        "rejected",
        "no ticket",
        None,
    )
    assert world.mobile.balance(world.member)["available"] == 3_000


def test_at_its_deadline_the_request_is_expired_and_cannot_be_approved(world: World) -> None:
    answer = adjust(world.mobile, world.member, LIMIT + 1)
    body = answer.json()
    deadline = datetime.fromisoformat(body["expires_at"])

    world.clock.now = deadline - timedelta(seconds=1)
    assert world.mobile.get(answer.headers["location"]).json()["status"] == "pending"
    world.clock.now = deadline
    polled = world.mobile.get(answer.headers["location"]).json()
    assert (polled["status"], polled["decided_at"]) == ("expired", body["expires_at"])

    browser, csrf = console(world, "admin")  # signed in at the deadline (by the app's clock)
    page = browser.get("/console/adjustments").text
    assert f'action="/console/adjustments/{body["id"]}/approve"' not in page
    assert "已过期：无人按时审批" in page
    before = db_state(world.db)
    refused = browser.post(f"/console/adjustments/{body['id']}/approve", data={"csrf": csrf})
    assert refused.status_code == 409
    assert flashes(refused.text) == [
        "此申请在有人审批前已过期：不能再批准或驳回。如仍需调整，请重新提交申请。"
    ]
    assert db_state(world.db) == before
    assert world.mobile.balance(world.member)["available"] == 3_000
