"""The sessions page, the audit log and the throttled sign-in in headless Chromium."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Browser, Page, expect
from web_fixtures import RICH_MEMBER, DemoSite, sign_in

from tally.api.member_links import link_for
from tally.kit.clock import utcnow

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def test_staff_end_a_session_on_another_device(
    page: Page, browser: Browser, demo_site: DemoSite, artifacts: Path
) -> None:
    other = browser.new_context(locale="zh-CN", user_agent=PHONE_UA)
    elsewhere = other.new_page()
    try:
        sign_in(elsewhere, demo_site, "admin")
        expect(elsewhere).to_have_url(demo_site.url("/console"))
        sign_in(page, demo_site, "admin")
        page.click("#my-sessions")
        expect(page.locator("h1")).to_have_text("我的会话")
        rows = page.locator("table.sessions tbody tr")
        expect(rows.first).to_contain_text("当前会话")
        phone_row = page.locator("tr", has_text="Safari · iOS")
        expect(phone_row).to_have_count(1)
        page.screenshot(path=str(artifacts / "console-sessions.png"), full_page=True)

        phone_row.get_by_role("button", name="结束会话").click()
        expect(page.locator(".flash-success")).to_have_text("该会话已结束。")
        expect(page.locator("tr", has_text="Safari · iOS")).to_have_count(0)
        page.screenshot(path=str(artifacts / "console-sessions-ended.png"), full_page=True)

        elsewhere.reload()
        expect(elsewhere).to_have_url(re.compile(r"/console/sign-in\?next="))
        expect(elsewhere.locator("h1")).to_have_text("登录运营后台")
    finally:
        other.close()


def test_an_auditor_filters_the_audit_log(page: Page, demo_site: DemoSite, artifacts: Path) -> None:
    sign_in(page, demo_site, "support")
    page.goto(demo_site.url(f"/console/members/{RICH_MEMBER}"))
    page.get_by_role("button", name="退出", exact=True).click()
    expect(page.locator("h1")).to_have_text("登录运营后台")
    sign_in(page, demo_site, "auditor")
    expect(page.locator("#open-as-member")).to_have_count(0)
    page.goto(demo_site.url(f"/console/members/{RICH_MEMBER}"))
    expect(page.locator("#open-as-member")).to_have_count(0)

    page.click("#nav-audit")
    expect(page.locator("h1")).to_have_text("审计日志")
    expect(page.locator("table.audit tbody tr").first).to_contain_text("查看会员")
    page.select_option("select[name=action]", "member.view")
    page.fill("input[name=member]", str(RICH_MEMBER))
    page.get_by_role("button", name="筛选").click()
    expect(page).to_have_url(re.compile(r"action=member.view"))
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("Avery Auditor")  # newest first: the auditor's own look
    expect(rows.first).to_contain_text(f"#{RICH_MEMBER}")
    expect(rows.first).to_contain_text("127.0.0.1")
    expect(page.locator("table.audit tbody tr", has_text="Sam Support").first).to_be_visible()
    for row in rows.all():
        expect(row).to_have_attribute("data-action", "member.view")
    page.screenshot(path=str(artifacts / "console-audit.png"), full_page=True)

    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(rows.first).to_contain_text("Viewed a member")
    page.screenshot(path=str(artifacts / "console-audit-en.png"), full_page=True)


def test_the_audit_log_on_a_phone(phone: Page, demo_site: DemoSite, artifacts: Path) -> None:
    sign_in(phone, demo_site, "admin")
    phone.goto(demo_site.url("/console/audit"))
    expect(phone.locator("h1")).to_have_text("审计日志")
    phone.screenshot(path=str(artifacts / "console-audit-phone.png"), full_page=True)


def test_repeated_wrong_passwords_are_slowed_down(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    username = f"nobody-{uuid.uuid4().hex[:8]}"
    for _attempt in range(3):  # the free ones
        sign_in(page, demo_site, username, "wrong")
        expect(page.locator(".flash-error")).to_have_text("用户名或密码错误。")
    messages = []
    for _attempt in range(6):  # then each must wait twice as long: soon one comes too early
        sign_in(page, demo_site, username, "wrong")
        messages.append(page.locator(".flash-error").inner_text())
        if "登录失败次数过多" in messages[-1]:
            break
    assert re.fullmatch(r"登录失败次数过多，请等待 \d+ 秒后再试。", messages[-1]), messages
    page.screenshot(path=str(artifacts / "console-sign-in-throttled.png"), full_page=True)


def test_a_member_link_used_twice_shows_a_clear_page(
    phone: Page, browser: Browser, demo_site: DemoSite, artifacts: Path
) -> None:
    link = link_for(demo_site.settings.resolved_secret(), RICH_MEMBER, utcnow()).url
    phone.goto(demo_site.url(link))
    expect(phone).to_have_url(demo_site.url("/m"))
    other = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    try:
        stranger = other.new_page()
        stranger.goto(demo_site.url(link))
        expect(stranger.locator("h1")).to_have_text("此链接已被使用")
        stranger.screenshot(path=str(artifacts / "member-link-used-phone.png"), full_page=True)
    finally:
        other.close()
