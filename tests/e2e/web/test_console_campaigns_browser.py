"""The campaigns and the event explorer in Chromium, on a phone and a desktop (screenshots in
test-artifacts/): an administrator opens a campaign from the navigation, reads its results per
arm, pauses it after the confirmation and resumes it, then finds a member's events explained."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import DemoSite, sign_in

from support.campaign_events import purchase, report
from tally.kit.clock import utcnow

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("device", ["phone", "page"])
def test_an_administrator_pauses_a_campaign_and_explores_events(
    device: str, request: pytest.FixtureRequest, demo_site: DemoSite, artifacts: Path
) -> None:
    tag, at = os.urandom(3).hex(), utcnow() - timedelta(hours=1)
    sent = [purchase(f"b-{tag}-{n}", n, "128.00", at) for n in range(1, 9)]
    report(demo_site.db, demo_site.settings, "SHOP", sent)
    view: Page = request.getfixturevalue(device)
    sign_in(view, demo_site, "admin")

    view.click("#nav-campaigns")

    expect(view.locator("h1")).to_have_text("活动")
    expect(view.locator("tr[data-campaign]")).to_have_count(4)
    view.screenshot(path=str(artifacts / f"console-campaigns-{device}.png"), full_page=True)
    view.locator('tr[data-campaign="HIGH_FREQUENCY"] a').click()
    expect(view.locator("tr[data-arm]")).to_have_count(2)
    expect(view.locator('tr[data-arm="holdout"] td').first).to_have_text("对照组")
    view.get_by_text("暂停…").click()
    expect(view.locator("#confirm-campaign-action")).to_be_visible()
    view.screenshot(path=str(artifacts / f"console-campaign-confirm-{device}.png"), full_page=True)
    view.click("#confirm-campaign-action")
    expect(view.get_by_test_id("status")).to_have_text("已暂停")
    view.screenshot(path=str(artifacts / f"console-campaign-paused-{device}.png"), full_page=True)
    view.get_by_text("恢复…").click()
    view.click("#confirm-campaign-action")
    expect(view.get_by_test_id("status")).to_have_text("进行中")

    view.click("#nav-events")
    view.fill("input[name=member]", "1")
    view.locator("input[name=member]").press("Enter")

    expect(view.locator("section.event").first).to_be_visible()
    expect(view.locator('section.event tr[data-rule="BASE/per-yuan"]').first).to_be_visible()
    view.screenshot(path=str(artifacts / f"console-events-{device}.png"), full_page=True)
    view.get_by_role("link", name="English").click()
    expect(view.locator("h1")).to_have_text("Events")
    view.screenshot(path=str(artifacts / f"console-events-{device}-en.png"), full_page=True)
