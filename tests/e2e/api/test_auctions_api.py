"""Points auctions over the partner API, on SQLite and PostgreSQL: create, bid by proxy, the
holds that follow the lead, the soft close, the reserve, the close job; every refusal with its
code and nothing written."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state, tolerant_client
from sqlalchemy import select

from conftest import OPERATOR_SCOPES, Api, make_partner
from tally.auctions import jobs
from tally.auctions import service as auctions
from tally.db.session import Database
from tally.ledger.domain import Policy
from tally.outbox.models import OutboxEvent

# After the programme versions a test applies (a version applies from when it is applied).
START = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
END = START + timedelta(minutes=30)
POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=10**9)


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: Any) -> Clock:
    found = Clock(START - timedelta(minutes=5))
    app.state.clock = found
    return found


@pytest.fixture
def api(app: Any, database: Database, clock: Clock) -> Iterator[Api]:
    key = make_partner(database, "MOBILE", OPERATOR_SCOPES + ",catalog,mall", operator_channel=True)
    with tolerant_client(app) as client:
        yield Api(client, key)


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def body(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "item": "LUNCH-1",
        "names": {"zh-CN": "企业家午餐", "en": "Lunch with a founder"},
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "start_points": 100,
        "reserve": 800,
        "increments": [{"from": 0, "step": 10}, {"from": 1000, "step": 50}],
        "soft_close_seconds": 60,
        "max_extension_seconds": 300,
    }
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


def member_with(api: Api, points: int) -> int:
    member = api.enrol(f"138{int.from_bytes(os.urandom(4)) % 10**8:08d}")
    if points:
        ok(api.earn(member, points), 201)
    return member


def bid(api: Api, auction: str, member: int, points: int) -> Any:
    return api.post(f"/v1/auctions/{auction}/bids", {"member_id": member, "max_points": points})


def held(api: Api, member: int) -> tuple[int, int]:
    balance = api.balance(member)
    return balance["available"], balance["held"]


def test_an_auction_runs_from_the_first_bid_to_the_winner_paying(
    api: Api, clock: Clock, database: Database
) -> None:
    made = ok(api.post("/v1/mall/auctions", body()), 201)
    auction = made["id"]
    assert (made["status"], made["price"], made["reserve"], made["minimum_bid"]) == (
        "scheduled",
        100,
        800,
        100,
    )
    assert made["increments"] == [{"from": 0, "step": 10}, {"from": 1000, "step": 50}]
    li, wang, zhao = member_with(api, 2000), member_with(api, 2000), member_with(api, 300)

    clock.now = START + timedelta(minutes=1)
    first = ok(bid(api, auction, li, 500), 201)
    assert first["bid"]["leading"] is True
    assert first["bid"]["hold_id"]
    assert (first["auction"]["price"], first["auction"]["reserve_met"]) == (100, False)
    assert held(api, li) == (1500, 500)

    second = ok(bid(api, auction, wang, 300), 201)  # outbid at once by Li's 500
    assert second["bid"]["leading"] is False
    assert second["bid"]["hold_id"] is None
    assert second["auction"]["price"] == 310
    assert held(api, wang) == (2000, 0)  # outbid at once: nothing held

    too_low = bid(api, auction, zhao, 319)
    assert assert_problem(too_low, 409, "bid_too_low")["minimum"] == 320
    state = db_state(database)
    poor = bid(api, auction, zhao, 400)  # Zhao has 300 points: cannot hold 400
    assert_problem(poor, 409, "insufficient_points")
    assert db_state(database) == state

    takeover = ok(bid(api, auction, wang, 1200), 201)
    assert takeover["bid"]["leading"] is True
    assert takeover["auction"]["leader_member_id"] == wang
    assert takeover["auction"]["price"] == 800  # the reserve, once met, is the least price
    assert takeover["auction"]["reserve_met"] is True
    assert held(api, li) == (2000, 0)  # outbid: released at once
    assert held(api, wang) == (800, 1200)

    raised = ok(bid(api, auction, wang, 1500), 201)  # the leader raises its own maximum
    assert (raised["bid"]["leading"], raised["auction"]["price"]) == (True, 800)
    assert held(api, wang) == (500, 1500)

    seen = ok(api.get(f"/v1/auctions/{auction}", params={"member_id": li}))
    assert "reserve" not in seen
    assert "1500" not in str(seen)
    assert seen["mine"] == {"member_id": li, "max_points": 500, "leading": False}
    assert (seen["status"], seen["bids"], seen["minimum_bid"]) == ("open", 4, 810)

    clock.now = END - timedelta(seconds=10)  # the last minute: the end moves
    late = ok(bid(api, auction, li, 1600), 201)
    moved = datetime.fromisoformat(late["auction"]["ends_at"])
    assert moved == clock.now + timedelta(seconds=60)
    assert late["auction"]["price"] == 1550  # Wang's 1,500 plus the 50 step above 1,000

    with database.write() as session:
        assert auctions.check_holds(session, uuid.UUID(auction)) == []
    report = jobs.close_due(database.write, END, POLICY)  # not ended yet: extended
    assert (report.sold, report.unsold) == (0, 0)
    closing = END + timedelta(seconds=50)
    assert jobs.close_due(database.write, closing, POLICY).sold == 1
    assert jobs.close_due(database.write, closing, POLICY).sold == 0  # once only

    assert held(api, li) == (450, 0)  # paid 1,550 of its 1,600; the rest came back
    assert held(api, wang) == (2000, 0)
    clock.now = closing
    final = ok(api.get(f"/v1/auctions/{auction}"))
    assert final["status"] == "sold"
    assert final["result"]["winner_member_id"] == li
    assert final["result"]["price"] == 1550
    assert final["minimum_bid"] is None
    assert_problem(bid(api, auction, wang, 3000), 409, "auction_closed")
    with database.read() as session:
        result = auctions.result_for_order(session, uuid.UUID(auction))
        assert result is not None
        assert (result.member_id, result.points, result.item_code) == (li, 1550, "LUNCH-1")
        types = [
            (event.type, event.member_id)
            for event in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
            if event.type.startswith("auction.")
        ]
    assert ("auction.outbid", li) in types
    assert ("auction.outbid", wang) in types
    assert ("auction.won", li) in types
    assert ("auction.lost", wang) in types
    assert ("auction.lost", zhao) not in types  # Zhao's bids were refused: never a bidder
    assert ("auction.closed", None) in types
    listed = ok(api.get("/v1/mall/auctions"))["items"]
    assert listed[0]["capture_transaction_id"] == str(result.capture_transaction_id)


def test_below_the_reserve_nothing_is_sold_and_the_hold_goes_back(
    api: Api, clock: Clock, database: Database
) -> None:
    auction = ok(api.post("/v1/mall/auctions", body(reserve=5000)), 201)["id"]
    member = member_with(api, 1000)
    clock.now = START
    ok(bid(api, auction, member, 900), 201)
    assert held(api, member) == (100, 900)
    assert jobs.close_due(database.write, END, POLICY).unsold == 1
    assert held(api, member) == (1000, 0)
    clock.now = END
    found = ok(api.get(f"/v1/auctions/{auction}"))
    assert (found["status"], found["result"]["reason"]) == ("unsold", "reserve_not_met")


def test_bids_outside_the_auction_are_refused(api: Api, clock: Clock, database: Database) -> None:
    auction = ok(api.post("/v1/mall/auctions", body()), 201)["id"]
    member = member_with(api, 1000)
    state = db_state(database)
    assert_problem(bid(api, auction, member, 200), 409, "auction_not_open")
    clock.now = END
    assert_problem(bid(api, auction, member, 200), 409, "auction_closed")
    missing = "0190f3c5-7d2a-7b4e-9a61-2f0c1d9e8b70"
    assert_problem(bid(api, missing, member, 200), 404, "not_found")
    clock.now = START
    assert_problem(bid(api, auction, 987654, 200), 404, "not_found")
    assert db_state(database) == state


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": START.isoformat()}, "ends_at"),
        ({"increments": [{"from": 5, "step": 10}]}, "increments"),
        ({"increments": [{"from": 0, "step": 0}]}, "increments"),
        ({"increments": []}, "increments"),
        ({"reserve": 50}, "reserve"),
        ({"start_points": 0}, "start_points"),
        ({"ends_at": (START + timedelta(days=30)).isoformat()}, "ends_at"),
        ({"starts_at": "2026-12-04T12:00:00"}, "starts_at"),
        ({"names": {"en": "Lunch"}}, "names"),
        ({"soft_close_seconds": -1}, "soft_close_seconds"),
    ],
)
def test_an_auction_that_could_not_run_is_refused(
    api: Api, database: Database, changes: dict[str, Any], field: str
) -> None:
    state = db_state(database)
    refused = assert_problem(
        api.post("/v1/mall/auctions", body(**changes)), 422, "validation_error"
    )
    assert field in str(refused)
    assert db_state(database) == state


def test_a_bid_is_answered_once_per_idempotency_key(api: Api, clock: Clock) -> None:
    auction = ok(api.post("/v1/mall/auctions", body()), 201)["id"]
    member = member_with(api, 1000)
    clock.now = START
    payload = {"member_id": member, "max_points": 300}
    first = api.post(f"/v1/auctions/{auction}/bids", payload, idempotency_key="bid-1")
    again = api.post(f"/v1/auctions/{auction}/bids", payload, idempotency_key="bid-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert held(api, member) == (700, 300)
    assert ok(api.get(f"/v1/auctions/{auction}"))["bids"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"member_id": 1, "max_points": 0},
        {"member_id": 1, "max_points": -5},
        {"member_id": 1, "max_points": "500"},
        {"member_id": 1, "max_points": 10.5},
        {"member_id": 1, "max_points": 10**10},
        {"max_points": 500},
        {"member_id": 1, "max_points": 500, "reserve": 1},
    ],
)
def test_a_malformed_bid_is_refused_and_writes_nothing(
    api: Api, clock: Clock, database: Database, payload: dict[str, Any]
) -> None:
    auction = ok(api.post("/v1/mall/auctions", body()), 201)["id"]
    clock.now = START
    state = db_state(database)
    assert_problem(api.post(f"/v1/auctions/{auction}/bids", payload), 422, "validation_error")
    assert db_state(database) == state
    assert_problem(api.post("/v1/auctions/not-a-uuid/bids", payload), 404, "not_found")
