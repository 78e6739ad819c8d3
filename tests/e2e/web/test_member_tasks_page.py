"""The member's tasks page (``/m/tasks``) over HTTP on both databases, with an injected clock:
sign in for today once (a second submit is told so), again after midnight in Asia/Shanghai
with the streak grown, tasks with their progress, the referral code and its share link; a
form without the session's token writes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import SECRET, Api, PartnerKey
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.api.member_links import mint_token
from tally.db.session import Database
from tally.events.models import StoredEvent
from tally.kit.clock import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EN = {"Accept-Language": "en"}
SHARE = {
    "code": "SHARE",
    "names": {"zh-CN": "分享好物", "en": "Share a find"},
    "on": ["share"],
    "task": {"goal": 3, "period": "week"},
    "caps": [{"per": "member", "period": "week", "times": 3}],
    "rules": [{"code": "shared", "award": {"points": 10}}],
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: Any, monkeypatch: pytest.MonkeyPatch, database: Database) -> Clock:
    """23:59 tomorrow in Shanghai (the programme is in force from a day ago)."""
    apply_campaigns(database, [*CAMPAIGNS, SHARE])
    day = (utcnow() + timedelta(days=1)).astimezone(SHANGHAI).date()
    found = Clock(datetime(day.year, day.month, day.day, 23, 59, tzinfo=SHANGHAI).astimezone(UTC))
    app.state.clock = found
    for module in ("tally.api.deps", "tally.api.members"):
        monkeypatch.setattr(f"{module}.utcnow", found)
    return found


@pytest.fixture
def web(app: Any, clock: Clock) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def member(web: TestClient, partner: PartnerKey) -> int:
    member_id = Api(web, partner).enrol("13800000001")
    answer = web.get(f"/m/sign-in?token={mint_token(SECRET, member_id)}")
    assert answer.status_code == 303, answer.text
    return member_id


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html
    return found.group(1)


def _sign_in(web: TestClient, csrf: str | None = None) -> str:
    token = csrf if csrf is not None else _csrf(web.get("/m/tasks").text)
    answer = web.post("/m/tasks/sign-in", data={"csrf": token}, headers=EN)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/m/tasks"
    return web.get("/m/tasks", headers=EN).text


def _sign_ins(database: Database) -> int:
    with database.read() as session:
        query = select(func.count()).select_from(StoredEvent).where(StoredEvent.source == "tally")
        return int(session.scalar(query) or 0)


def test_a_member_signs_in_once_a_day_and_the_streak_crosses_midnight(
    web: TestClient, member: int, clock: Clock, database: Database, partner: PartnerKey
) -> None:
    page = web.get("/m/tasks", headers=EN)
    assert page.status_code == 200
    assert 'href="/m/tasks" class="current"' in page.text
    assert "Sign in every day to build a streak." in page.text
    assert 'data-task="SHARE" data-complete="no"' in page.text
    assert "0 of 3 this week" in page.text

    first = _sign_in(web)
    assert "Signed in for today: +5 points." in first
    assert "Days in a row: 1" in first
    assert 'data-testid="signed-in-today"' in first
    again = _sign_in(web, _csrf(first))  # a second submit, the same day
    assert "You have already signed in today." in again
    assert _sign_ins(database) == 1
    balance = Api(web, partner).balance(member)
    assert balance["available"] == 5

    clock.now += timedelta(minutes=2)  # 00:01 the next day in Shanghai
    after = web.get("/m/tasks", headers=EN).text
    assert "Sign in for today" in after
    assert "Days in a row: 1" in after  # yesterday's streak, still alive
    assert "Days in a row: 2" in _sign_in(web, _csrf(after))
    assert _sign_ins(database) == 2
    chinese = web.get("/m/tasks", headers={"Accept-Language": "zh-CN"}).text
    assert "连续签到 2 天" in chinese
    assert "本周 0/3" in chinese


def test_the_referral_code_is_stable_and_comes_with_its_share_link(
    web: TestClient, member: int
) -> None:
    first = web.get("/m/tasks", headers=EN).text
    code = re.search(r'data-testid="referral-code">([A-Z0-9-]+)<', first)
    assert code is not None
    assert re.fullmatch(r"[2-9A-Z]{5}-[2-9A-Z]{5}", code.group(1))
    assert code.group(1) in web.get("/m/tasks").text  # made once, shown again
    assert f"join?ref={code.group(1).replace('-', '')}" in first
    assert 'data-copy="https://cloudway.example/join?ref=' in first
    assert re.search(r'<script src="/static/js/copy\.js[^"]*" defer>', first)


def test_a_form_without_the_sessions_token_writes_nothing(
    web: TestClient, member: int, database: Database
) -> None:
    answer = web.post("/m/tasks/sign-in", data={"csrf": "forged"})
    assert answer.status_code == 403
    assert _sign_ins(database) == 0
    stranger = TestClient(web.app, follow_redirects=False)
    assert stranger.get("/m/tasks").headers["location"] == "/m"
