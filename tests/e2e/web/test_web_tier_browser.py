"""The tier pages in headless Chromium: the member's status on a phone in both languages and
both themes, and the console's programme pages. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import DIAMOND_GROWTH, GRACE_GROWTH, SILVER_GROWTH, DemoSite, sign_in

from tally.api.member_links import mint_token

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser

#: The black-gold theme's page background and tier-name gold (tally.css).
DARK_BACKGROUND = "rgb(13, 12, 10)"
GOLD = "rgb(240, 207, 115)"


def open_as(page: Page, site: DemoSite, name: str, path: str = "/m/status") -> None:
    """Sign in to the member pages as one of the fixture's tier members, then open ``path``."""
    token = mint_token(site.settings.secret_key, site.members[name])
    page.goto(site.url(f"/m/sign-in?token={token}"))
    expect(page).to_have_url(site.url("/m"))
    page.goto(site.url(path))


def assert_fits(page: Page) -> None:
    """Nothing makes the page scroll sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the viewport"


def style_of(page: Page, selector: str, prop: str) -> str:
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")
    return str(value)


def test_my_membership_on_a_phone_in_chinese_and_english(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    open_as(phone, demo_site, "silver")
    expect(phone.get_by_test_id("tier-name")).to_have_text("白银")
    expect(phone.get_by_test_id("to-next")).to_have_text(
        f"再获 {5000 - SILVER_GROWTH:,} 成长值即可升级为黄金"
    )
    expect(phone.locator("progress.tier-progress")).to_have_attribute("value", "12")
    expect(phone.locator("#benefits")).to_contain_text("生日礼")
    expect(phone.locator("#benefits")).to_contain_text("每月 8 张优惠券")
    expect(phone.locator("#paid")).to_contain_text("88会员")
    expect(phone.locator("#family")).to_contain_text("积分共享")
    expect(phone.locator(".m-tabs a.current")).to_have_text("我的会员")
    assert "theme-default" in (phone.locator("body").get_attribute("class") or "")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-phone.png"), full_page=True)

    phone.get_by_role("link", name="English").click()
    expect(phone.get_by_test_id("tier-name")).to_have_text("Silver")
    expect(phone.get_by_test_id("to-next")).to_have_text(
        f"{5000 - SILVER_GROWTH:,} more growth to reach Gold"
    )
    expect(phone.get_by_test_id("multiplier")).to_have_text("×1.2")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-phone-en.png"), full_page=True)


def test_a_pending_downgrade_and_a_cancelled_plan_on_a_phone(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    open_as(phone, demo_site, "grace")
    expect(phone.get_by_test_id("tier-name")).to_have_text("黄金")
    downgrade = phone.get_by_test_id("downgrade")
    expect(downgrade).to_contain_text("保住您的黄金等级")
    expect(downgrade).to_contain_text(f"再获得 {5000 - GRACE_GROWTH:,} 成长值以保级")
    expect(phone.locator("#paid")).to_contain_text("到期后不再续费")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-grace-phone.png"), full_page=True)


def test_the_top_tiers_look_black_and_gold(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    open_as(phone, demo_site, "diamond")
    expect(phone.get_by_test_id("tier-name")).to_have_text("钻石")
    assert "theme-black-gold" in (phone.locator("body").get_attribute("class") or "")
    assert style_of(phone, "body", "backgroundColor") == DARK_BACKGROUND
    assert style_of(phone, ".m-tier-name", "color") == GOLD
    expect(phone.get_by_test_id("growth")).to_contain_text(f"{DIAMOND_GROWTH:,}")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-black-gold-phone.png"), full_page=True)

    phone.get_by_role("link", name="English").click()
    expect(phone.get_by_test_id("to-next")).to_have_text(
        "55,000 more growth to reach Black Diamond"
    )
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-black-gold-phone-en.png"), full_page=True)

    phone.get_by_role("link", name="My points").click()
    expect(phone.get_by_test_id("tier-strip")).to_contain_text("Diamond")
    assert style_of(phone, "body", "backgroundColor") == DARK_BACKGROUND
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-points-black-gold-phone-en.png"), full_page=True)


def test_the_family_member_sees_its_allowance(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    open_as(phone, demo_site, "kid", "/m")
    strip = phone.get_by_test_id("tier-strip")
    expect(strip).to_contain_text("青铜")
    phone.screenshot(path=str(artifacts / "member-points-tier-strip-phone.png"))
    strip.click()
    expect(phone).to_have_url(demo_site.url("/m/status"))
    expect(phone.get_by_test_id("allowance")).to_contain_text("3,000")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "member-status-family-phone.png"), full_page=True)


def test_console_programme_pages(page: Page, demo_site: DemoSite, artifacts: Path) -> None:
    sign_in(page, demo_site, "auditor")
    page.get_by_role("link", name="会员方案").click()
    expect(page).to_have_url(demo_site.url("/console/programme"))
    expect(page.locator("tr[data-version]")).to_have_count(2)
    expect(page.locator("tr[data-version='2']")).to_contain_text("生效中")
    page.screenshot(path=str(artifacts / "console-programme.png"), full_page=True)

    page.get_by_role("link", name="v2").click()
    expect(page).to_have_url(demo_site.url("/console/programme/2"))
    expect(page.locator("#changes")).to_contain_text("family.max_members: 6 → 4")
    expect(page.locator("#tiers tbody tr")).to_have_count(6)
    expect(page.locator("#plans")).to_contain_text("¥88.00")
    page.screenshot(path=str(artifacts / "console-programme-version.png"), full_page=True)

    page.locator("a[rel=prev]").click()
    expect(page.locator("#changes")).to_contain_text("首个版本")


def test_console_programme_and_member_pages_on_a_phone(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    sign_in(phone, demo_site, "support")
    phone.goto(demo_site.url("/console/programme/2?lang=en"))
    expect(phone.locator("h1")).to_contain_text("Programme version 2")
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "console-programme-version-phone-en.png"), full_page=True)

    phone.goto(demo_site.url(f"/console/members/{demo_site.members['grace']}"))
    expect(phone.get_by_test_id("downgrade")).to_be_visible()
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "console-member-tier-phone-en.png"), full_page=True)


def test_console_member_tier_sections(page: Page, demo_site: DemoSite, artifacts: Path) -> None:
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url(f"/console/members/{demo_site.members['silver']}"))
    expect(page.locator("#tier .tier-badge")).to_have_text("白银")
    expect(page.locator("#memberships")).to_contain_text("88会员")
    expect(page.locator("#family tbody tr")).to_have_count(2)
    page.screenshot(path=str(artifacts / "console-member-tier.png"), full_page=True)
