"""Tier, programme and membership pages over HTTP: roles, content, bad addresses."""

from __future__ import annotations

import re
import uuid

import pytest
import web_fixtures
from fastapi.testclient import TestClient
from test_web_http import HTML, sign_in
from web_fixtures import DIAMOND_GROWTH, GRACE_GROWTH, PASSWORD, SILVER_GROWTH, DemoData

from tally.api.member_links import mint_token
from tally.config import Settings
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.programme import runtime
from tally.programme import service as programmes
from tally.programme.domain import Programme
from tally.staff import service as staff_service
from tally.staff.models import StaffRole
from tally.tiers import service as tiers

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
client = web_fixtures.client
demo_data = web_fixtures.demo_data

EN = {"Accept-Language": "en"}


def text_of(html: str) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def staff_with_role(data: DemoData, role: StaffRole) -> str:
    """A new staff member of ``role``; returns the username."""
    username = f"{role.value}-{uuid.uuid4().hex[:8]}"
    with data.db.write() as session:
        staff_service.create(session, username, PASSWORD, role, f"E2E {role.value}", utcnow())
    return username


def as_member(client: TestClient, data: DemoData, member_id: int) -> None:
    response = client.get("/m/sign-in?token=" + mint_token(data.settings.secret_key, member_id))
    assert response.status_code == 303


# --- console: programme versions ------------------------------------------------------------


@pytest.mark.parametrize("role", list(StaffRole))
def test_every_staff_role_sees_the_programme_versions(
    client: TestClient, demo_data: DemoData, role: StaffRole
) -> None:
    sign_in(client, staff_with_role(demo_data, role))
    listing = client.get("/console/programme")
    assert listing.status_code == 200
    assert listing.headers["content-type"] == HTML
    assert 'href="/console/programme" class="current"' in listing.text  # the console's nav
    detail = client.get("/console/programme/1")
    assert detail.status_code == 200


def test_the_version_list_shows_who_when_hash_and_summary(
    client: TestClient, demo_data: DemoData
) -> None:
    sign_in(client, "auditor")
    html = client.get("/console/programme", headers=EN).text
    rows = re.findall(r'<tr data-version="(\d+)">', html)
    assert rows == ["2", "1"]  # newest first
    newest = html.split('data-version="2"')[1].split("</tr>")[0]
    oldest = html.split('data-version="1"')[1].split("</tr>")[0]
    assert "In force" in newest
    assert "In force" not in oldest
    assert ">ops<" in newest
    assert ">demo<" in oldest
    assert "BRONZE · SILVER · GOLD · PLATINUM · DIAMOND · BLACK_DIAMOND" in newest
    assert "VIP88" in newest
    assert "AIB" in newest
    assert re.search(r'title="[0-9a-f]{64}">[0-9a-f]{12}<', newest)


def test_a_version_shows_its_changes_tiers_plans_family_and_source(
    client: TestClient, demo_data: DemoData
) -> None:
    sign_in(client, "auditor")
    html = client.get("/console/programme/2", headers=EN).text
    page = text_of(html)
    assert "Changes against version 1" in page
    assert "family.max_members: 6 → 4" in page
    assert "family.default_monthly_limit: 5000 → 3000" in page
    assert "Black Diamond" in page
    assert "Theme: black-gold" in page
    diamond = text_of(html.split('<tr data-tier="DIAMOND">')[1].split("</tr>")[0])
    assert "40,000" in diamond
    assert "×1.8" in diamond
    assert "Free returns" in diamond
    assert "6 coupons a month" in diamond
    assert "Mall exclusive" in diamond
    plan = text_of(html.split('data-plan="VIP88"')[1].split("</tr>")[0])
    assert "88 VIP" in plan
    assert "CN¥88.00" in plan
    assert "1 year" in plan
    assert "Growth value at least 1,000" in plan
    assert "Members per family 4" in page
    assert "Default monthly spend limit 3,000" in page
    assert "family: {max_members: 4, default_monthly_limit: 3000}" in html  # the source text
    assert 'rel="prev"' in html
    assert 'rel="next"' not in html

    chinese = text_of(client.get("/console/programme/1").text)
    assert "首个版本" in chinese
    assert "黑钻" in chinese
    assert "¥88.00" in chinese
    assert "每月 6 张优惠券" in chinese
    assert "已被取代" in chinese


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/console/programme/3", 404),
        ("/console/programme/999999", 404),
        ("/console/programme/0", 404),
        ("/console/programme/-1", 404),
        ("/console/programme/abc", 404),
        ("/console/programme/99999999999999999999", 404),
        ("/console/programme/1.5", 404),
    ],
)
def test_unknown_versions_are_a_not_found_page(client: TestClient, path: str, status: int) -> None:
    sign_in(client, "auditor")
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == HTML
    assert "页面不存在" in response.text or "没有找到" in response.text


def test_programme_pages_need_a_signed_in_staff_member(client: TestClient) -> None:
    for path in ("/console/programme", "/console/programme/1", "/console/programme/999"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/sign-in?next=")


# --- console: a member's tier, history and memberships --------------------------------------


def test_the_console_member_page_shows_tier_progress_and_history(
    client: TestClient, demo_data: DemoData
) -> None:
    sign_in(client, "auditor")
    html = client.get(f"/console/members/{demo_data.members['diamond']}", headers=EN).text
    tier = text_of(html.split('id="tier"')[1].split("</section>")[0])
    assert "Diamond" in tier
    assert "Level 5 of 6" in tier
    assert f"Qualifying growth {DIAMOND_GROWTH:,}" in tier
    assert "Black Diamond · 55,000 more growth" in tier
    assert "×1.8" in tier
    assert "Priority service" in tier
    history = text_of(html.split('id="tier-history"')[1].split("</section>")[0])
    assert "Bronze → Diamond" in history
    assert "Upgrade" in history
    growth = text_of(html.split('id="growth-history"')[1].split("</section>")[0])
    assert f"+{DIAMOND_GROWTH:,}" in growth
    assert "Earned" in growth
    assert "No paid membership in force." in html


def test_the_console_shows_a_pending_downgrade_and_paid_memberships(
    client: TestClient, demo_data: DemoData
) -> None:
    with demo_data.db.read() as session:
        standing = tiers.standing(
            session, demo_data.members["grace"], utcnow(), programme_of(demo_data)
        )
    assert standing.downgrade_at is not None
    sign_in(client, "support")
    html = client.get(f"/console/members/{demo_data.members['grace']}", headers=EN).text
    tier = text_of(html.split('id="tier"')[1].split("</section>")[0])
    assert "Gold" in tier
    assert f"Qualifying growth {GRACE_GROWTH:,}" in tier
    assert "Pending downgrade" in tier
    assert f"{5000 - GRACE_GROWTH:,} more growth keeps the tier" in tier
    history = text_of(html.split('id="tier-history"')[1].split("</section>")[0])
    assert "Grace period started" in history
    paid = text_of(html.split('id="memberships"')[1].split("</section>")[0])
    assert "88 VIP" in paid
    assert "Cancels at period end" in paid

    other = text_of(client.get(f"/console/members/{demo_data.members['silver']}", headers=EN).text)
    assert "88 VIP In force Current period ends" in other
    assert "Cancels at period end" not in other


def test_a_member_without_growth_is_at_the_first_tier(
    client: TestClient, demo_data: DemoData
) -> None:
    sign_in(client, "auditor")
    html = client.get(f"/console/members/{demo_data.members['bronze']}", headers=EN).text
    tier = text_of(html.split('id="tier"')[1].split("</section>")[0])
    assert "Bronze" in tier
    assert "Level 1 of 6" in tier
    assert "Silver · 1,000 more growth" in tier
    assert "The tier has not changed yet." in html
    assert "No growth yet." in html


def test_unknown_members_are_a_not_found_page(client: TestClient) -> None:
    sign_in(client, "auditor")
    for path in ("/console/members/999999", "/console/members/0", "/console/members/x"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == HTML


def programme_of(data: DemoData) -> Programme:
    with data.db.read() as session:
        running = programmes.running(session)
    assert running is not None
    return running


# --- member pages -----------------------------------------------------------------------------


def test_my_membership_shows_tier_progress_benefits_and_the_paid_plan(
    client: TestClient, demo_data: DemoData
) -> None:
    as_member(client, demo_data, demo_data.members["silver"])
    response = client.get("/m/status", headers=EN)
    assert response.status_code == 200
    html = response.text
    assert 'class="member theme-default"' in html
    assert 'href="/m/status" class="current"' in html
    page = text_of(html)
    assert "Your tier Silver" in page
    assert f"Growth value {SILVER_GROWTH:,}" in page
    assert "Since" in page
    assert f"{5000 - SILVER_GROWTH:,} more growth to reach Gold" in page
    assert re.search(r'<progress class="tier-progress" value="12" max="100"', html)  # 500/4000
    benefits = text_of(html.split('id="benefits"')[1].split("</section>")[0])
    # Silver's birthday gift stacked with VIP88's free returns, priority service and coupons.
    for text in ("×1.2", "Birthday gift", "Free returns", "Priority service", "8 coupons a month"):
        assert text in benefits
    assert "Includes the benefits of your paid membership." in benefits
    paid = text_of(html.split('id="paid"')[1].split("</section>")[0])
    assert "88 VIP In force Valid until" in paid
    assert 'data-testid="downgrade"' not in html


def test_my_membership_in_chinese_with_a_pending_downgrade(
    client: TestClient, demo_data: DemoData
) -> None:
    as_member(client, demo_data, demo_data.members["grace"])
    html = client.get("/m/status").text
    page = text_of(html)
    assert "您的等级 黄金" in page
    assert "保住您的黄金等级" in page
    assert f"再获得 {5000 - GRACE_GROWTH:,} 成长值以保级" in page
    assert "到期后不再续费" in page
    assert "88会员" in page
    assert "每月 10 张优惠券" in page  # Gold's 2 and VIP88's 8


def test_the_top_tiers_get_the_black_gold_look(client: TestClient, demo_data: DemoData) -> None:
    as_member(client, demo_data, demo_data.members["diamond"])
    for path in ("/m/status", "/m", "/m/history"):
        html = client.get(path).text
        assert 'class="member theme-black-gold"' in html, path
    page = text_of(client.get("/m/status", headers=EN).text)
    assert "Your tier Diamond" in page
    assert "55,000 more growth to reach Black Diamond" in page
    assert "You have no paid membership." in page


def test_my_points_shows_a_compact_tier_strip(client: TestClient, demo_data: DemoData) -> None:
    as_member(client, demo_data, demo_data.members["silver"])
    html = client.get("/m", headers=EN).text
    strip = html.split('data-testid="tier-strip"')[1].split("</a>")[0]
    assert 'href="/m/status"' in html.split('data-testid="tier-strip"')[0][-80:]
    assert 'data-tier="SILVER"' in strip
    assert "3,500 more growth to reach Gold" in text_of(strip)


def test_my_membership_needs_a_session(client: TestClient) -> None:
    response = client.get("/m/status")
    assert response.status_code == 200
    assert 'data-reason="signed_out"' in response.text
    assert client.get("/m/status/x").status_code == 404


def test_my_membership_shows_the_family_and_this_months_allowance(
    client: TestClient, demo_data: DemoData
) -> None:
    kid, owner = demo_data.members["kid"], demo_data.members["silver"]
    as_member(client, demo_data, kid)
    html = client.get("/m/status", headers=EN).text
    assert re.search(r"<title>\s*My membership\s*</title>", html), "the title is the page's name"
    assert html.count('id="family"') == 1  # the family section, once, in the page's body
    family = text_of(html.split('id="family"')[1].split("</section>")[0])
    assert "Shared points" in family
    assert "E2E Silver Owner" in family
    assert "E2E Kid (you) Member" in family
    # Version 2 of the programme lowered the default monthly limit to 3,000.
    assert "This month you can still spend 3,000 of 3,000 AI Beans from the family." in family

    as_member(client, demo_data, owner)
    owner_family = text_of(client.get("/m/status", headers=EN).text.split('id="family"')[1])
    assert "E2E Silver (you) Owner" in owner_family
    assert "can still spend" not in owner_family  # the owner spends its own points


def test_the_console_shows_the_family(client: TestClient, demo_data: DemoData) -> None:
    kid, owner = demo_data.members["kid"], demo_data.members["silver"]
    sign_in(client, "auditor")
    html = client.get(f"/console/members/{kid}", headers=EN).text
    family = html.split('id="family"')[1].split("</section>")[0]
    assert f'href="/console/members/{owner}"' in family
    assert "Shared points" in family
    assert "2 of 4 seats taken" in text_of(family)
    assert "0 / 3,000" in text_of(family) or "3,000 / 3,000" in text_of(family)
    alone = client.get(f"/console/members/{demo_data.members['bronze']}", headers=EN).text
    assert "Not in a family." in alone


def test_merged_and_frozen_members_still_show_their_tier(
    client: TestClient, demo_data: DemoData
) -> None:
    now = utcnow()
    with demo_data.db.write() as session:
        ids = [
            enrolment.enrol(session, members.Identity("shop", f"e2e-{uuid.uuid4().hex}"), {}, now)[
                0
            ]
            for _ in range(3)
        ]
        programme = runtime.effective(session, Settings())
        enrolment.merge(session, ids[0], ids[1], None, "same person", now, programme)
        members.freeze(session, ids[2], "checking", now)
    sign_in(client, "auditor")
    for member_id in ids:
        response = client.get(f"/console/members/{member_id}", headers=EN)
        assert response.status_code == 200, member_id
        assert "Level 1 of 6" in text_of(response.text)
    as_member(client, demo_data, ids[2])
    frozen = client.get("/m/status", headers=EN)
    assert frozen.status_code == 200
    assert "Your tier Bronze" in text_of(frozen.text)
