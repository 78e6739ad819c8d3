"""The accounts page in Chromium: an auditor reaches it from the navigation on a phone and on a
desktop (screenshots in test-artifacts/), the liability and every partner shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import DemoSite, sign_in

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("device", ["phone", "page"])
def test_an_auditor_opens_the_accounts_from_the_navigation(
    device: str, request: pytest.FixtureRequest, demo_site: DemoSite, artifacts: Path
) -> None:
    view: Page = request.getfixturevalue(device)
    sign_in(view, demo_site, "auditor")

    view.click("#nav-accounts")

    expect(view.locator("h1")).to_have_text("账户")
    expect(view.get_by_test_id("unspent-points")).to_contain_text("未使用积分")
    expect(view.locator("[data-partner]")).to_have_count(len(demo_site.api_keys))
    view.screenshot(path=str(artifacts / f"console-accounts-{device}.png"), full_page=True)
    view.get_by_role("link", name="English").click()
    expect(view.locator("h1")).to_have_text("Accounts")
    view.screenshot(path=str(artifacts / f"console-accounts-{device}-en.png"), full_page=True)
