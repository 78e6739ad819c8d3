"""The member code page in headless Chromium on a phone: opened from the home page, a barcode
and a QR code, renewed by htmx before the code expires (the browser's clock is driven, nobody
sleeps), and the code shown finds the member through a partner's API key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import DemoSite

from tally.api.member_links import mint_token

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
phone = web_fixtures.phone

pytestmark = pytest.mark.browser

#: A demo member no other browser test freezes or merges.
MEMBER = 12


def looked_up(page: Page, site: DemoSite, code: str) -> Any:
    return page.request.get(
        site.url("/v1/members/lookup"),
        params={"code": code},
        headers={"Authorization": f"Bearer {site.api_keys['SHOP']}"},
    )


def test_the_member_code_renews_itself_and_finds_the_member(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    phone.clock.install()
    token = mint_token(demo_site.settings.secret_key, MEMBER)
    phone.goto(demo_site.url(f"/m/sign-in?token={token}"))
    expect(phone).to_have_url(demo_site.url("/m"))
    expect(phone.get_by_test_id("member-code-link")).to_be_visible()
    phone.screenshot(path=str(artifacts / "member-home-with-code-link-phone.png"))

    phone.get_by_test_id("member-code-link").click()
    expect(phone).to_have_url(demo_site.url("/m/code"))
    expect(phone.locator("h2#code-heading")).to_have_text("会员码")
    expect(phone.get_by_test_id("barcode").locator("svg")).to_be_visible()
    expect(phone.get_by_test_id("qr").locator("svg")).to_be_visible()
    digits = phone.get_by_test_id("code-digits")
    first = digits.inner_text()
    assert len(first.replace(" ", "")) == 16
    phone.screenshot(path=str(artifacts / "member-code-phone.png"), full_page=True)

    found = looked_up(phone, demo_site, first)
    assert found.status == 200, found.text()
    assert found.json()["id"] == MEMBER

    phone.evaluate("window.stillThisPage = true")
    phone.clock.run_for(46_000)  # past the 45 s after which the page asks for a fresh code
    expect(digits).not_to_have_text(first)
    assert phone.evaluate("window.stillThisPage") is True  # renewed in place, not reloaded
    second = digits.inner_text()
    assert looked_up(phone, demo_site, second).json()["id"] == MEMBER

    phone.get_by_role("link", name="立即换一个码").click()
    expect(digits).not_to_have_text(second)
    assert phone.evaluate("window.stillThisPage") is True
