"""The member code page (``/m/code``): a rotating code as a Code 128 barcode and a QR code, linked
from the member home, renewed by htmx before it expires; the code it shows finds the member
through the partner API. Over HTTP on both databases, with an injected clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import SECRET, Api, PartnerKey
from tally.api.member_links import mint_token
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.member_codes.models import MemberCode
from tally.members import service as members

HTMX = {"HX-Request": "true"}
DIGITS = re.compile(r'data-testid="code-digits">([0-9 ]+)<')


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(app: Any, monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(utcnow().replace(microsecond=0))
    app.state.clock = found
    for module in ("tally.api.deps", "tally.api.members", "tally.api.member_codes"):
        monkeypatch.setattr(f"{module}.utcnow", found)
    return found


@pytest.fixture
def web(app: Any, clock: Clock) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api(web: TestClient, partner: PartnerKey) -> Api:
    return Api(web, partner)


def sign_in(web: TestClient, member_id: int) -> None:
    response = web.get(f"/m/sign-in?token={mint_token(SECRET, member_id)}", follow_redirects=False)
    assert response.status_code == 303, response.text


def shown_code(html: str) -> str:
    found = DIGITS.search(html)
    assert found is not None, html
    return found.group(1).replace(" ", "")


def stored(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(MemberCode)) or 0)


def test_the_home_page_links_to_the_code_page(web: TestClient, api: Api) -> None:
    member = api.enrol("13800000001")
    sign_in(web, member)
    home = web.get("/m")
    assert 'href="/m/code"' in home.text
    assert 'data-testid="member-code-link"' in home.text


def test_the_page_shows_a_barcode_a_qr_code_and_digits_that_find_the_member(
    web: TestClient, api: Api, database: Database
) -> None:
    member = api.enrol("13800000001")
    sign_in(web, member)

    page = web.get("/m/code", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    code = shown_code(page.text)
    assert len(code) == 16
    assert re.search(r'data-testid="barcode"><svg [^>]*role="img"', page.text)
    assert re.search(r'data-testid="qr"><svg ', page.text)
    assert 'hx-get="/m/code/fresh" hx-trigger="load delay:45s"' in page.text
    assert "Show this code at the checkout" in page.text

    found = api.get("/v1/members/lookup", params={"code": code})
    assert found.status_code == 200, found.text
    assert found.json()["id"] == member
    chinese = web.get("/m/code", headers={"Accept-Language": "zh-CN"})
    assert "结账时出示此码" in chinese.text


def test_htmx_renews_the_code_and_the_one_before_stays_valid_to_its_end(
    web: TestClient, api: Api, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    sign_in(web, member)
    first = shown_code(web.get("/m/code").text)

    clock.advance(seconds=45)
    fresh = web.get("/m/code/fresh", headers=HTMX)
    assert fresh.status_code == 200
    assert "<!doctype html>" not in fresh.text
    assert fresh.text.lstrip().startswith('<div id="member-code"')
    second = shown_code(fresh.text)
    assert second != first
    lookup = {"code": first}
    assert api.get("/v1/members/lookup", params=lookup).json()["id"] == member

    clock.advance(seconds=15)  # the first code's minute is over
    assert api.get("/v1/members/lookup", params=lookup).status_code == 404
    assert api.get("/v1/members/lookup", params={"code": second}).json()["id"] == member


def test_a_frozen_member_is_shown_no_code(
    web: TestClient, api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    with database.write() as session:
        members.freeze(session, member, "dispute", clock.now)
    sign_in(web, member)

    page = web.get("/m/code", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'data-testid="code-refused"' in page.text
    assert "This member is frozen." in page.text
    assert DIGITS.search(page.text) is None
    assert 'data-testid="member-code-link"' not in web.get("/m").text
    assert stored(database) == 0


def test_signed_out_visitors_get_no_code(web: TestClient, database: Database) -> None:
    page = web.get("/m/code")
    assert 'data-reason="signed_out"' in page.text
    fresh = web.get("/m/code/fresh", headers=HTMX)
    assert fresh.status_code == 204
    assert fresh.headers["hx-refresh"] == "true"
    assert stored(database) == 0
