"""The member history in a phone's browser: an entry an event earned opens to the rules that
gave its points, one a refund took back to what it took."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apikit import issue_key

from conftest import Api, PartnerKey, require_or_skip
from support.browser import chromium_path, shared_chromium
from support.event_programme import CAMPAIGNS, apply_campaigns
from support.live import serving
from tally.db.session import Database

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def test_how_i_earned_this_opens_on_a_phone(
    app: Any, client: Any, api: Api, partner: PartnerKey, database: Database, dialect: str
) -> None:
    if dialect != "sqlite":
        pytest.skip("the page is the same on both databases")
    require_or_skip(chromium_path() is not None, "Chromium")
    apply_campaigns(database, CAMPAIGNS)
    events = Api(client, issue_key(database, partner, "events,members,read"))
    member = api.enrol("13800000099")
    purchase = {
        "type": "purchase",
        "event_id": "order-1",
        "member_id": member,
        "occurred_at": "2026-12-02T10:00:00+08:00",
        "amount": {"value": "200.00", "currency": "CNY"},
        "items": [{"sku": "tea", "amount": "80.00", "category": "drinks"}],
    }
    assert events.post("/v1/events", purchase).status_code == 201
    link = events.post(f"/v1/members/{member}/links").json()["url"]
    ARTIFACTS.mkdir(exist_ok=True)

    with serving(app) as base, shared_chromium() as chromium:
        context = chromium.new_context(
            viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True
        )
        page = context.new_page()
        page.goto(base + link)
        page.goto(base + "/m/history")
        why = page.get_by_test_id("earned-by").first
        why.locator("summary").click()
        lines = why.locator("li")
        texts = [lines.nth(i).inner_text() for i in range(lines.count())]
        page.screenshot(path=str(ARTIFACTS / "member-history-earned-by.png"), full_page=True)
        context.close()

    assert [text.split()[0] for text in texts] == ["消费积分", "加赠"]
    assert texts[0].split()[-1] == "+200"
