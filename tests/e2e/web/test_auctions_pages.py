"""The auction pages over HTTP on the demo: a manager creates an auction in the console (once
per form, audited; a bad form refilled, nothing written), an auditor sees it without the form;
a member bids in the auction room, is told when the bid is too low, and sees its maximum."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_web_guardrails import as_staff
from test_web_http import flashes, hidden
from web_fixtures import DemoData

from conftest import SECRET
from tally.api.member_links import mint_token
from tally.auctions.models import Auction
from tally.audit.models import AuditEntry
from tally.kit.clock import utcnow

client = web_fixtures.client
demo_data = web_fixtures.demo_data
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Demo members no other test changes.
BIDDER, RIVAL = 15, 16


def _local(minutes: int) -> str:
    """A datetime-local value ``minutes`` from now in the programme's zone."""
    return (utcnow() + timedelta(minutes=minutes)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _form(html: str, **changes: str) -> dict[str, str]:
    found = {
        "csrf": hidden(html, "csrf"),
        "nonce": hidden(html, "nonce"),
        "owner": "MOBILE",
        "item": f"LUNCH-{os.urandom(3).hex()}",
        "name_zh": "企业家午餐",
        "name_en": "Lunch with a founder",
        "starts_at": _local(-1),
        "ends_at": _local(60),
        "start_points": "10",
        "reserve": "",
        "increments": "0:5, 1000:50",
        "soft_close_seconds": "60",
        "max_extension_seconds": "600",
    }
    found.update(changes)
    return found


def _count(data: DemoData) -> int:
    with data.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Auction)) or 0)


def create(client: TestClient, data: DemoData) -> str:
    """An auction made through the console's form as the administrator; its id."""
    as_staff(client, "admin")
    made = client.post("/console/auctions", data=_form(client.get("/console/auctions").text))
    assert made.status_code == 303, made.text
    return str(made.headers["location"]).rsplit("/", 1)[1]


def test_a_manager_creates_an_auction_once_and_an_auditor_reads_it(
    client: TestClient, demo_data: DemoData
) -> None:
    as_staff(client, "admin")
    listed = client.get("/console/auctions")
    assert 'id="nav-auctions"' in listed.text
    assert 'id="new-auction"' in listed.text
    before = _count(demo_data)

    refused = client.post("/console/auctions", data=_form(listed.text, increments="10"))
    assert refused.status_code == 422
    assert 'value="10"' in refused.text  # refilled
    assert _count(demo_data) == before

    form = _form(listed.text)
    made = client.post("/console/auctions", data=form)
    again = client.post("/console/auctions", data=form)  # the same form, sent twice
    assert made.status_code == again.status_code == 303
    assert made.headers["location"] == again.headers["location"]
    assert _count(demo_data) == before + 1
    detail = client.get(made.headers["location"])
    assert "竞拍已创建。" in flashes(detail.text)
    assert form["item"] in detail.text
    assert "企业家午餐" in detail.text
    with demo_data.db.read() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "auction.create")
        ).all()
    assert len(actions) >= 1

    as_staff(client, "auditor")
    seen = client.get("/console/auctions")
    assert seen.status_code == 200
    assert form["item"] in seen.text
    assert 'id="new-auction"' not in seen.text
    attempt = {**form, "csrf": hidden(seen.text, "csrf"), "nonce": "x"}
    assert client.post("/console/auctions", data=attempt).status_code == 403


def test_a_member_bids_in_the_auction_room(client: TestClient, demo_data: DemoData) -> None:
    auction = create(client, demo_data)
    client.cookies.clear()
    assert client.get(f"/m/sign-in?token={mint_token(SECRET, RIVAL)}").status_code == 303
    room = client.get(f"/m/auctions/{auction}")
    client.post(f"/m/auctions/{auction}/bids", data={"csrf": hidden(room.text, "csrf"),
                "max_points": "40"})  # fmt: skip
    client.cookies.clear()
    assert client.get(f"/m/sign-in?token={mint_token(SECRET, BIDDER)}").status_code == 303

    listed = client.get("/m/auctions")
    assert f'data-auction="{auction}"' in listed.text
    room = client.get(f"/m/auctions/{auction}")
    assert room.status_code == 200
    assert 'data-testid="price" data-field="price">10<' in room.text  # one bid: the start
    assert "你还没有出价" in room.text
    assert "•••" in room.text
    csrf = hidden(room.text, "csrf")

    low = client.post(f"/m/auctions/{auction}/bids", data={"csrf": csrf, "max_points": "12"})
    assert low.status_code == 303
    assert "请至少出价 15 积分。" in flashes(client.get(f"/m/auctions/{auction}").text)

    high = client.post(f"/m/auctions/{auction}/bids", data={"csrf": csrf, "max_points": "80"})
    assert high.status_code == 303
    shown = client.get(f"/m/auctions/{auction}").text
    assert "你最高 80 积分的出价领先，当前价 45 积分。" in flashes(shown)
    assert 'data-testid="my-maximum">80<' in shown
    assert re.search(r'data-testid="leader" data-field="leader">你领先<', shown)

    forged = client.post(f"/m/auctions/{auction}/bids", data={"csrf": "x", "max_points": "99"})
    assert forged.status_code == 403
    assert client.get(f"/m/auctions/{auction}/events", headers={"Cookie": ""}).status_code == 401
