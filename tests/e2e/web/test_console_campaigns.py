"""The console's campaigns and event explorer: campaigns with status, schedule, budget used and
the day's points; one campaign's A/B results per arm, added up from the stored outcomes;
pausing and resuming once per form (CSRF, a one-time token, audited) for staff who may, the
others refused; events found by Tally id, by partner and event id, or a member's latest, each
with its explanation."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_web_guardrails import as_staff
from test_web_http import flashes, hidden
from web_fixtures import DemoData

from support.campaign_events import purchase, report
from tally.audit.models import AuditEntry
from tally.campaigns.models import CampaignOutcome, CampaignState
from tally.demo.loader import DEMO_PROGRAMME
from tally.kit.clock import utcnow
from tally.programme import service as programme_service
from tally.staff import service as staff

client = web_fixtures.client
demo_data = web_fixtures.demo_data
PAGE = "/console/campaigns/HIGH_FREQUENCY"

DEMO_CAMPAIGNS = programme_service.validate(DEMO_PROGRAMME.read_text(encoding="utf-8")).campaigns


def _events(data: DemoData, count: int = 6) -> list[str]:
    """``count`` purchases by members 1 to ``count`` through SHOP, an hour ago; their ids."""
    tag = os.urandom(3).hex()
    at = utcnow() - timedelta(hours=1)
    sent = [purchase(f"c-{tag}-{n}", n, "88.00", at) for n in range(1, count + 1)]
    return [str(done.stored_id) for done in report(data.db, data.settings, "SHOP", sent)]


def _nonce(html: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', html)
    assert found is not None, "no pause or resume form"
    return found.group(1)


def _audited(data: DemoData) -> list[tuple[str, str]]:
    with data.db.read() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.action.like("campaign.%"))
            .order_by(AuditEntry.id)
        )
        return [(action, actor) for action, actor in rows]


def test_the_campaigns_list_shows_each_campaign(client: TestClient, demo_data: DemoData) -> None:
    _events(demo_data, 2)
    as_staff(client, "auditor")

    listed = client.get("/console/campaigns")

    assert listed.status_code == 200, listed.text
    rows = re.findall(r'data-campaign="([A-Z_]+)"', listed.text)
    assert rows == [campaign.code for campaign in DEMO_CAMPAIGNS]
    assert "进行中" in listed.text  # running
    assert 'id="nav-campaigns"' in listed.text
    row = listed.text.split('data-campaign="HIGH_FREQUENCY"', 1)[1].split("</tr>", 1)[0]
    assert "/ 1,000,000" in row  # the budget
    assert "A/B" in row


def test_results_per_arm_add_up_to_the_stored_outcomes(
    client: TestClient, demo_data: DemoData
) -> None:
    _events(demo_data)
    as_staff(client, "auditor")

    shown = client.get(PAGE)

    assert shown.status_code == 200, shown.text
    with demo_data.db.read() as session:
        stored = dict(
            session.execute(
                select(func.coalesce(CampaignOutcome.arm, ""), func.count())
                .where(CampaignOutcome.campaign == "HIGH_FREQUENCY", ~CampaignOutcome.is_refund)
                .group_by(CampaignOutcome.arm)
            ).all()
        )
    arms = re.findall(
        r'data-arm="([^"]*)">.*?data-testid="events">([\d,]+)<', shown.text, flags=re.S
    )
    assert [arm for arm, _ in arms] == ["", "holdout"]
    assert {arm: int(n.replace(",", "")) for arm, n in arms} == {
        "": stored.get("", 0),
        "holdout": stored.get("holdout", 0),
    }
    assert sum(stored.values()) >= 6
    assert 'name="nonce"' not in shown.text  # an auditor may not pause
    refused = client.post(f"{PAGE}/pause", data={"csrf": hidden(shown.text, "csrf")})
    assert refused.status_code == 403


def test_an_administrator_pauses_once_and_resumes(client: TestClient, demo_data: DemoData) -> None:
    as_staff(client, "admin")
    before = _audited(demo_data)
    shown = client.get("/console/campaigns/BASE")
    form = {"csrf": hidden(shown.text, "csrf"), "nonce": _nonce(shown.text)}

    tokenless = client.post("/console/campaigns/BASE/pause", data={"csrf": form["csrf"]})
    assert tokenless.status_code == 422  # without its one-time token: refused, nothing paused
    assert _audited(demo_data) == before
    paused = client.post("/console/campaigns/BASE/pause", data=form)
    again = client.post("/console/campaigns/BASE/pause", data=form)  # a double submit

    assert paused.status_code == 303
    assert again.status_code == 303
    page = client.get(again.headers["location"])
    assert flashes(page.text)[-2:] == [
        "活动已暂停：其规则不再发放任何奖励。",
        "此表单已提交过，未重复执行。",
    ]
    assert 'data-testid="status">已暂停' in page.text
    assert "Ada Admin (#" in page.text  # who paused it
    with demo_data.db.read() as session:
        admin = f"staff:{staff.id_of(session, 'admin')}"
        state = session.get(CampaignState, "BASE")
        assert state is not None
        assert (state.is_paused, state.changed_by) == (True, admin)
    assert _audited(demo_data)[len(before) :] == [("campaign.pause", admin)]
    ids = _events(demo_data, 1)
    explained = client.get("/console/events", params={"id": ids[0]})
    assert 'data-rule="BASE/per-yuan" data-reason="paused"' in explained.text
    assert "活动已暂停" in explained.text

    resumed = client.post(
        "/console/campaigns/BASE/resume",
        data={"csrf": form["csrf"], "nonce": _nonce(page.text)},
    )

    assert resumed.status_code == 303
    page = client.get(resumed.headers["location"])
    assert 'data-testid="status">进行中' in page.text
    assert [action for action, _ in _audited(demo_data)[len(before) :]] == [
        "campaign.pause",
        "campaign.resume",
    ]


def test_the_event_explorer_finds_and_explains(client: TestClient, demo_data: DemoData) -> None:
    ids = _events(demo_data, 1)
    as_staff(client, "support")

    by_id = client.get("/console/events", params={"id": ids[0]})
    by_partner = client.get(
        "/console/events", params={"partner": "SHOP", "event_id": _event_id(demo_data, ids[0])}
    )
    by_member = client.get("/console/events", params={"member": "1"})

    for found in (by_id, by_partner, by_member):
        assert found.status_code == 200, found.text
        assert f'data-event="{ids[0]}"' in found.text
    assert 'data-rule="BASE/per-yuan"' in by_id.text
    assert "88" in by_id.text
    assert 'data-reason="condition_false"' in by_id.text  # BEVERAGES: the event has no items
    assert "items: the event has no items" in by_id.text
    with demo_data.db.read() as session:
        looks = session.scalars(
            select(AuditEntry.member_id).where(AuditEntry.action == "member.events_view")
        ).all()
    assert list(looks)[-3:] == [1, 1, 1]  # each look at the member's events is audited
    assert client.get("/console/events").status_code == 200
    nothing = client.get("/console/events", params={"id": "0190f3c5-7d2a-7b4e-9a61-2f0c1d9e8b70"})
    assert 'id="no-events"' in nothing.text
    for params, message in (
        ({"id": "not-a-uuid"}, "Tally 事件编号是 UUID"),
        ({"partner": "SHOP"}, "请同时填写合作方代码和其事件编号。"),
        ({"partner": "NOPE", "event_id": "x"}, "没有使用该代码的合作方。"),
        ({"member": "abc"}, "请输入会员的 Tally 编号。"),
    ):
        refused = client.get("/console/events", params=params)
        assert refused.status_code == 422
        assert any(text.startswith(message) for text in flashes(refused.text)), params


def _event_id(data: DemoData, stored: str) -> str:
    from uuid import UUID

    from tally.events.models import StoredEvent

    with data.db.read() as session:
        row = session.get(StoredEvent, UUID(stored))
        assert row is not None
        return row.event_id


def test_a_members_page_leads_to_their_events(client: TestClient, demo_data: DemoData) -> None:
    ids = _events(demo_data, 1)
    as_staff(client, "support")

    page = client.get("/console/members/1")
    found = re.search(r'<a class="button" href="([^"]+)" id="member-events">([^<]+)</a>', page.text)
    assert found is not None, "no link to the member's events"
    assert found.group(2) == "事件与规则"
    events = client.get(found.group(1))
    assert events.status_code == 200
    assert f'data-event="{ids[0]}"' in events.text
