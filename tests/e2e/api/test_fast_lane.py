"""The fast lane answers ordinary earns and redeems itself, exactly as FastAPI's endpoint would,
and hands everything else on to FastAPI untouched."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from apikit import assert_problem, issue_key

from conftest import Api, PartnerKey
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.api import fastlane
from tally.api.fastlane import MAX_BODY, FastLane, by_member, lane
from tally.api.schemas import RedeemRequest
from tally.db.session import Database
from tally.ledger.orders import Order
from tally.partners.service import Scope


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request the lane looked at: whether it answered it itself."""
    seen: list[bool] = []
    ordinary = fastlane._ordinary

    def spy(*args: Any) -> Any:
        write = ordinary(*args)
        seen.append(write is not None)
        return write

    monkeypatch.setattr(fastlane, "_ordinary", spy)
    return seen


def test_an_ordinary_earn_and_redeem_take_the_lane(api: Api, taken: list[bool]) -> None:
    member = api.enrol("13900000001")
    earned = api.earn(member, 120, "lane-earn")
    redeemed = api.redeem(member, 20, "lane-redeem")

    assert taken == [True, True]
    assert earned.status_code == 201, earned.text
    assert earned.headers["content-type"] == "application/json"
    body = earned.json()
    assert body["member_id"] == member
    assert body["balance"]["available"] == 120
    assert body["details"]["points"] == 120
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["balance"]["available"] == 100


def test_the_lane_answers_as_the_endpoint_does(api: Api, taken: list[bool]) -> None:
    """The same earn through the lane and through FastAPI (a body padded beyond the lane's
    MAX_BODY, which the lane leaves alone) gives the same answer but for the entry's id."""
    member = api.enrol("13900000002")
    through_lane = api.earn(member, 50, "a")
    padded = b'{"points": 50, "reference": "b"' + b" " * (MAX_BODY + 1) + b"}"
    through_fastapi = api.client.post(
        f"/v1/members/{member}/earn",
        content=padded,
        headers={**api.key.headers("padded-1"), "Content-Type": "application/json"},
    )

    assert taken == [True]  # the lane handed the second one on without a look
    assert through_fastapi.status_code == through_lane.status_code == 201
    first, second = through_lane.json(), through_fastapi.json()
    for body in (first, second):
        body.pop("id")
        body.pop("transaction_id")
    assert second["balance"]["available"] == first["balance"]["available"] + 50
    second["balance"] = first["balance"]
    assert first == second


def test_a_retry_through_the_lane_replays_the_first_answer(api: Api, taken: list[bool]) -> None:
    member = api.enrol("13900000003")
    first = api.post(f"/v1/members/{member}/earn", {"points": 5, "reference": "r"}, "same-key")
    again = api.post(f"/v1/members/{member}/earn", {"points": 5, "reference": "r"}, "same-key")

    assert taken == [True, True]
    assert again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert api.balance(member)["available"] == 5


def test_a_refusal_through_the_lane_is_a_problem_document(api: Api, taken: list[bool]) -> None:
    member = api.enrol("13900000004")

    assert_problem(api.redeem(member, 10), 409, "insufficient_points")
    assert_problem(api.earn(10**12, 10), 404, "not_found")
    assert taken == [True, True]


UNUSUAL: dict[str, tuple[dict[str, str], bytes, int, str]] = {
    "no Idempotency-Key": (
        {"Idempotency-Key": ""},
        b'{"points":1,"reference":"x"}',
        400,
        "idempotency_key_required",
    ),
    "no bearer token": (
        {"Authorization": ""},
        b'{"points":1,"reference":"x"}',
        401,
        "unauthorized",
    ),
    "not JSON": ({}, b'{"points":1,', 422, "validation_error"),
    "points as text": ({}, b'{"points":"1","reference":"x"}', 422, "validation_error"),
    "an unknown field": ({}, b'{"points":1,"reference":"x","bonus":1}', 422, "validation_error"),
    "text/plain": (
        {"Content-Type": "text/plain"},
        b'{"points":1,"reference":"x"}',
        422,
        "validation_error",
    ),
}


@pytest.mark.parametrize(("headers", "content", "status", "code"), UNUSUAL.values(), ids=UNUSUAL)
def test_an_unusual_request_goes_on_to_fastapi(
    api: Api, taken: list[bool], headers: dict[str, str], content: bytes, status: int, code: str
) -> None:
    member = api.enrol("13900000005")
    sent = {
        **api.key.headers("unusual-1"),
        "Content-Type": "application/json",
        **headers,
    }
    for name, value in headers.items():
        if not value:
            sent.pop(name)
    response = api.client.post(f"/v1/members/{member}/earn", content=content, headers=sent)

    assert_problem(response, status, code)
    assert taken in ([], [False])  # FastAPI answered
    assert api.balance(member)["available"] == 0


def test_a_large_body_goes_on_to_fastapi_in_full() -> None:
    """Bodies beyond MAX_BODY, in several chunks, reach the app behind the lane unchanged."""
    content = b'{"points": 1, "reference": "x"' + b" " * (MAX_BODY + 10) + b"}"
    chunks = [content[i : i + 5000] for i in range(0, len(content), 5000)]
    received: list[bytes] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message.get("body", b""))
            if not message.get("more_body"):
                return

    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(_message: Any) -> None:
        raise AssertionError("the lane must not answer")

    def write(member_id: int, payload: RedeemRequest) -> Order:
        raise AssertionError("the lane must not build a write")

    middleware = FastLane(
        downstream,
        [lane("/v1/members/{member_id}/redeem", RedeemRequest, Scope.REDEEM, by_member(write))],
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/members/7/redeem",
        "headers": [(b"content-type", b"application/json")],
    }
    # A loop of its own, on a thread of its own: an earlier test may leave one running here.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, middleware(scope, receive, send)).result()

    assert b"".join(received) == content


def test_a_hold_takes_the_lane_and_answers_as_the_endpoint_does(
    api: Api, taken: list[bool]
) -> None:
    """A hold through the lane and one through FastAPI (padded beyond MAX_BODY) give the same
    answer but for their ids: 201, the hold's id as the answer's, the hold itself."""
    member = api.enrol("13900000009")
    api.earn(member, 100, "lane-hold-seed")
    body = b'{"points": 30, "expires_in_seconds": 600, "reference": "%s"'
    through_lane = api.client.post(
        f"/v1/members/{member}/holds",
        content=body % b"h-1" + b"}",
        headers={**api.key.headers("hold-1"), "Content-Type": "application/json"},
    )
    through_fastapi = api.client.post(
        f"/v1/members/{member}/holds",
        content=body % b"h-2" + b" " * (MAX_BODY + 1) + b"}",
        headers={**api.key.headers("hold-2"), "Content-Type": "application/json"},
    )

    assert taken == [True, True]  # the seed earn, the first hold; the padded one went on
    assert through_lane.status_code == through_fastapi.status_code == 201
    first, second = through_lane.json(), through_fastapi.json()
    assert first["id"] == first["hold"]["id"] != first["transaction_id"]
    assert (first["balance"]["held"], second["balance"]["held"]) == (30, 60)
    for answer in (first, second):
        for key in ("id", "transaction_id", "balance"):
            answer.pop(key)
        for key in ("id", "reference", "expires_at", "created_at"):
            answer["hold"].pop(key)
        answer["details"].pop("hold_id")
    assert first == second
    assert first["hold"] == {
        "member_id": member,
        "points": 30,
        "captured_points": 0,
        "status": "active",
    }


def test_a_capture_takes_the_lane_and_answers_as_the_endpoint_does(
    api: Api, taken: list[bool]
) -> None:
    """A checkout's capture through the lane and one through FastAPI (padded beyond MAX_BODY)
    give the same answer but for their ids; a partial capture releases the rest; a capture of
    a hold that is not there, or by an id FastAPI's path rule refuses, is FastAPI's answer."""
    member = api.enrol("13900000010")
    api.earn(member, 100, "lane-capture-seed")
    holds = [
        api.post(
            f"/v1/members/{member}/holds",
            {"points": 20, "expires_in_seconds": 600, "reference": f"c-{n}"},
            f"capture-hold-{n}",
        ).json()["hold"]["id"]
        for n in range(3)
    ]
    taken.clear()
    headers = {"Content-Type": "application/json"}
    through_lane = api.client.post(
        f"/v1/holds/{holds[0]}/capture",
        content=b"{}",
        headers={**api.key.headers("capture-1"), **headers},
    )
    through_fastapi = api.client.post(
        f"/v1/holds/{holds[1]}/capture",
        content=b"{" + b" " * (MAX_BODY + 1) + b"}",
        headers={**api.key.headers("capture-2"), **headers},
    )
    partial = api.client.post(
        f"/v1/holds/{holds[2]}/capture",
        content=b'{"points": 5}',
        headers={**api.key.headers("capture-3"), **headers},
    )
    missing = api.client.post(
        "/v1/holds/00000000-0000-7000-8000-000000000000/capture",
        content=b"{}",
        headers={**api.key.headers("capture-4"), **headers},
    )
    not_an_id = api.client.post(
        f"/v1/holds/{holds[0].upper()}/capture",
        content=b"{}",
        headers={**api.key.headers("capture-5"), **headers},
    )

    assert taken == [True, True, True]  # lane, partial, missing; padded and upper-case went on
    assert through_lane.status_code == through_fastapi.status_code == partial.status_code == 200
    first, second = through_lane.json(), through_fastapi.json()
    assert first["hold"]["status"] == second["hold"]["status"] == "captured"
    assert first["hold"]["captured_points"] == second["hold"]["captured_points"] == 20
    for answer in (first, second):
        for key in ("id", "transaction_id", "balance"):
            answer.pop(key)
        for key in ("id", "reference", "expires_at", "created_at"):
            answer["hold"].pop(key)
    assert first == second
    assert partial.json()["hold"]["captured_points"] == 5
    assert api.balance(member) == {**api.balance(member), "available": 100 - 45, "held": 0}
    assert_problem(missing, 404, "not_found")
    assert_problem(not_an_id, 404, "not_found")


def test_an_event_naming_its_member_by_id_takes_the_lane(
    api: Api,
    client: Any,
    partner: PartnerKey,
    database: Database,
    taken: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event naming its member by id is answered by the lane as the endpoint answers it;
    one naming its member by an identity, and a dry run, go on to FastAPI."""
    apply_campaigns(database, CAMPAIGNS)
    events = Api(client, issue_key(database, partner, "events,members,read"))
    member = api.enrol("13900000011")
    # The suite re-reads the programme on every request; the lane needs it known without a
    # query, as it is for `programme_refresh_seconds` after each check in a deployment.
    monkeypatch.setattr(client.app.state.programme, "_refresh", 3600)
    api.balance(member)  # a request that checks the versions
    taken.clear()

    def purchase(event_id: str, **who: Any) -> dict[str, Any]:
        return {
            "type": "purchase",
            "event_id": event_id,
            "occurred_at": "2026-12-02T10:00:00+08:00",
            "amount": {"value": "10.00", "currency": "CNY"},
            **who,
        }

    by_id = events.post("/v1/events", purchase("lane-1", member_id=member))
    padded = events.client.post(
        "/v1/events",
        content=orjson.dumps(purchase("lane-2", member_id=member))[:-1]
        + b" " * (MAX_BODY + 1)
        + b"}",
        headers={**events.key.headers("lane-event-2"), "Content-Type": "application/json"},
    )
    by_identity = events.post(
        "/v1/events", purchase("lane-3", member={"namespace": "phone", "id": "13900000011"})
    )
    dry_run = events.post("/v1/events?dry_run=true", purchase("lane-4", member_id=member))
    again = events.post("/v1/events", purchase("lane-1", member_id=member))

    # by id; by identity, handed on by the event's own write; the repeat (padded and dry run:
    # not looked at)
    assert taken == [True, False, True]
    assert by_id.status_code == padded.status_code == by_identity.status_code == 201
    assert (dry_run.status_code, dry_run.json()["status"]) == (200, "dry_run")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    first, second = by_id.json(), padded.json()
    for answer in (first, second):
        for key in ("id", "event_id", "transaction_id"):
            answer.pop(key)
    assert first == second
    assert api.balance(member)["available"] == 3 * first["points"]
