"""The console and the member pages in headless Chromium, against a real uvicorn server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import (
    DIAMOND_GROWTH,
    GRACE_GROWTH,
    RICH_MEMBER,
    SILVER_GROWTH,
    SOON_POINTS,
    DemoSite,
    sign_in,
)

from tally.api.member_links import mint_token
from tally.kit.clock import utcnow
from tally.ledger import service as ledger

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser


def balance_of(site: DemoSite, member_id: int) -> ledger.Balance:
    with site.db.read() as session:
        return ledger.balance(session, member_id, utcnow(), site.settings.zone)


def shown_number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def test_wrong_password_is_refused_and_the_right_one_signs_in(
    page: Page, demo_site: DemoSite
) -> None:
    page.goto(demo_site.url("/console"))
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console$"))

    sign_in(page, demo_site, "support", "not-the-password")
    expect(page.locator(".flash-error")).to_have_text("用户名或密码错误。")
    expect(page.locator("input[name=username]")).to_have_value("support")

    sign_in(page, demo_site, "support")
    expect(page).to_have_url(demo_site.url("/console"))
    expect(page.locator(".who")).to_contain_text("Sam Support")
    expect(page.locator("h1")).to_have_text("查找会员")


def test_search_by_phone_finds_the_member(page: Page, demo_site: DemoSite) -> None:
    sign_in(page, demo_site, "support")
    # Typed the way people type phone numbers; the demo's member 4 has 13800000004.
    page.fill("input[name=q]", "138 0000 0004")
    results = page.locator("#results .result")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("#4")
    expect(page).to_have_url(re.compile(r"q=138"))  # live results keep a shareable address
    results.first.click()
    expect(page).to_have_url(demo_site.url("/console/members/4"))
    expect(page.locator("#profile")).to_contain_text("13800000004")  # support sees it in full


def test_member_page_shows_balance_lots_holds_and_history(page: Page, demo_site: DemoSite) -> None:
    balance = balance_of(demo_site, RICH_MEMBER)
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url(f"/console/members/{RICH_MEMBER}"))

    expect(page.get_by_test_id("available")).to_have_text(f"{balance.available:,}")
    expect(page.get_by_test_id("held")).to_have_text(f"{balance.held:,}")
    expect(page.locator("#balance tbody tr")).to_have_count(len(balance.expiring))
    expect(page.locator("#lots tbody tr").first).to_contain_text("有效")
    expect(page.locator("#holds tbody tr").first).to_contain_text("e2e-booking")
    expect(page.locator("#holds tbody tr").first).to_contain_text("进行中")
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(20)
    first_time = history.first.locator("td").first.inner_text()

    page.locator("#history a[rel=next]").click()  # htmx swaps in the next page
    expect(page).to_have_url(re.compile(rf"/console/members/{RICH_MEMBER}\?before="))
    expect(history.first.locator("td").first).not_to_have_text(first_time)


def test_support_adjustment_changes_the_balance_and_shows_in_history(
    page: Page, demo_site: DemoSite
) -> None:
    before = balance_of(demo_site, 5).available
    sign_in(page, demo_site, "support")
    page.goto(demo_site.url("/console/members/5"))

    page.fill("#adjust input[name=points]", "250")
    page.fill("#adjust textarea[name=reason]", "补偿：物流延误")
    page.click("#adjust button[type=submit]")

    expect(page.locator(".flash-success")).to_have_text("余额已调整。")
    expect(page.get_by_test_id("available")).to_have_text(f"{before + 250:,}")
    newest = page.locator("#history tbody tr").first
    expect(newest).to_contain_text("调整")
    expect(newest).to_contain_text("+250")
    expect(newest).to_contain_text("Sam Support")
    expect(newest).to_contain_text("补偿：物流延误")
    assert balance_of(demo_site, 5).available == before + 250

    # Taking more than a member has is refused before any limit or confirmation applies.
    poor = next(m for m in range(1, 21) if 0 < balance_of(demo_site, m).available < 9_000)
    left = balance_of(demo_site, poor).available
    page.goto(demo_site.url(f"/console/members/{poor}"))
    page.fill("#adjust input[name=points]", "-9999")
    page.fill("#adjust textarea[name=reason]", "too much")
    page.click("#adjust button[type=submit]")
    expect(page.locator(".flash-error")).to_have_text("积分不足。")
    expect(page.locator("#adjust input[name=points]")).to_have_value("-9999")
    assert balance_of(demo_site, poor).available == left
    assert balance_of(demo_site, 5).available == before + 250


def test_auditor_sees_no_forms_and_a_forged_post_is_refused(
    page: Page, demo_site: DemoSite
) -> None:
    before = balance_of(demo_site, 6).available
    sign_in(page, demo_site, "auditor")
    page.goto(demo_site.url("/console/members/6"))
    expect(page.locator(".badge-readonly")).to_have_text("只读")
    expect(page.locator("form[action*='/adjust']")).to_have_count(0)
    expect(page.locator("form[action*='/freeze']")).to_have_count(0)
    expect(page.locator("form[action*='/merge']")).to_have_count(0)
    expect(page.locator("#profile")).to_contain_text("138****0006")  # masked for auditors

    token = page.locator("form[action='/console/sign-out'] input[name=csrf]").get_attribute("value")
    response = page.request.post(
        demo_site.url("/console/members/6/adjust"),
        form={"csrf": token or "", "points": "1000", "reason": "forged", "nonce": "n" * 24},
    )
    assert response.status == 403
    assert "您没有执行此操作的权限。" in response.text()
    assert balance_of(demo_site, 6).available == before


def test_a_post_without_the_csrf_token_is_refused(page: Page, demo_site: DemoSite) -> None:
    before = balance_of(demo_site, 7).available
    sign_in(page, demo_site, "support")
    response = page.request.post(
        demo_site.url("/console/members/7/adjust"),
        form={"points": "1000", "reason": "no token", "nonce": "n" * 24},
    )
    assert response.status == 403
    assert "表单已失效" in response.text()
    assert balance_of(demo_site, 7).available == before


def test_a_member_link_from_the_partner_api_opens_the_member_pages(
    phone: Page, demo_site: DemoSite
) -> None:
    balance = balance_of(demo_site, 8)
    response = phone.request.post(
        demo_site.url("/v1/members/8/links"),
        headers={
            "Authorization": f"Bearer {demo_site.api_keys['MOBILE']}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert response.status == 201, response.text()
    link = response.json()["url"]
    assert link.startswith("/m/sign-in?token=")

    phone.goto(demo_site.url("/m"))
    expect(phone.locator("h1")).to_have_text("请从 App 打开此页面")
    phone.goto(demo_site.url(link))
    expect(phone).to_have_url(demo_site.url("/m"))
    expect(phone.get_by_test_id("available")).to_have_text(f"{balance.available:,}")
    expect(phone.locator(".m-hero-unit")).to_have_text("AI豆")

    phone.goto(demo_site.url(link.replace("token=", "token=x")))
    expect(phone.locator("h1")).to_have_text("链接已失效")


def test_language_switch_to_english_and_back(phone: Page, demo_site: DemoSite) -> None:
    phone.goto(demo_site.url("/m/sign-in?token=bad"))
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")

    phone.get_by_role("link", name="English").click()
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    expect(phone.locator("h1")).to_have_text("Open this page from the app")

    phone.goto(demo_site.url("/console/sign-in"))  # the choice is remembered everywhere
    expect(phone.locator("h1")).to_have_text("Sign in to the operator console")

    phone.get_by_role("link", name="中文").click()
    expect(phone.locator("h1")).to_have_text("登录运营后台")
    phone.goto(demo_site.url("/m"))
    expect(phone.locator("h1")).to_have_text("请从 App 打开此页面")


def test_phone_screenshots_of_the_member_pages_and_the_console(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    balance = balance_of(demo_site, RICH_MEMBER)
    sign_in(phone, demo_site, "support")
    phone.goto(demo_site.url(f"/console/members/{RICH_MEMBER}"))
    expect(phone.get_by_test_id("available")).to_have_text(f"{balance.available:,}")
    phone.screenshot(path=str(artifacts / "console-member-phone.png"))
    phone.screenshot(path=str(artifacts / "console-member-phone-full.png"), full_page=True)

    with phone.expect_popup() as popup_info:
        phone.click("#open-as-member")
    member = popup_info.value
    expect(member).to_have_url(demo_site.url("/m"))
    expect(member.get_by_test_id("available")).to_have_text(f"{balance.available:,}")
    warning = member.get_by_test_id("expiring-soon")
    expect(warning).to_contain_text(f"{SOON_POINTS} AI豆即将过期")
    member.screenshot(path=str(artifacts / "member-points-phone.png"))
    member.screenshot(path=str(artifacts / "member-points-phone-full.png"), full_page=True)

    member.get_by_role("link", name="English").click()
    expect(member.get_by_test_id("expiring-soon")).to_contain_text(
        f"{SOON_POINTS} AI Beans expire soon"
    )
    member.screenshot(path=str(artifacts / "member-points-phone-en.png"), full_page=True)

    member.get_by_role("link", name="History").click()
    expect(member.locator(".m-row")).to_have_count(20)
    member.get_by_role("link", name="Load more").click()
    expect(member.locator(".m-row")).not_to_have_count(20)
    member.screenshot(path=str(artifacts / "member-history-phone-en.png"))


# --- tiers: the member's status on a phone, the console's programme pages -----------------

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

    # The in-force line and the versions table both link v2; follow the table's.
    page.locator("tr[data-version='2']").get_by_role("link", name="v2").click()
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
    phone.locator("#tiers").screenshot(path=str(artifacts / "console-programme-tiers-phone-en.png"))

    phone.goto(demo_site.url(f"/console/members/{demo_site.members['grace']}"))
    expect(phone.get_by_test_id("downgrade")).to_be_visible()
    assert_fits(phone)
    phone.screenshot(path=str(artifacts / "console-member-tier-phone-en.png"), full_page=True)
    for section in ("tier", "tier-history", "growth-history", "memberships"):
        phone.locator(f"#{section}").screenshot(
            path=str(artifacts / f"console-member-{section}-phone-en.png")
        )


def test_console_member_tier_sections(page: Page, demo_site: DemoSite, artifacts: Path) -> None:
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url(f"/console/members/{demo_site.members['silver']}"))
    expect(page.locator("#tier .tier-badge")).to_have_text("白银")
    expect(page.locator("#memberships")).to_contain_text("88会员")
    expect(page.locator("#family tbody tr")).to_have_count(2)
    page.screenshot(path=str(artifacts / "console-member-tier.png"), full_page=True)
    page.locator("#family").screenshot(path=str(artifacts / "console-member-family.png"))
