"""The adjustment guardrails in headless Chromium: the confirmation of a large amount, a request
above the limit, and its approval on the requests page by another staff member."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Browser, Page, expect
from web_fixtures import DemoSite, sign_in

from tally.kit.clock import utcnow
from tally.ledger import service as ledger

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page

pytestmark = pytest.mark.browser
CONFIRMED_MEMBER = 2
REQUESTED_MEMBER = 3


def available(site: DemoSite, member_id: int) -> int:
    with site.db.read() as session:
        return ledger.balance(session, member_id, utcnow(), site.settings.zone).available


def test_a_large_amount_needs_the_amount_re_typed(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    before = available(demo_site, CONFIRMED_MEMBER)
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url(f"/console/members/{CONFIRMED_MEMBER}"))
    expect(page.locator("#adjust-limits")).to_contain_text("100,000")

    page.fill("#adjust input[name=points]", "50000")
    page.fill("#adjust textarea[name=reason]", "补偿：重大服务中断")
    page.click("#adjust button[type=submit]")

    step = page.locator("#adjust-confirm")
    expect(step).to_contain_text(f"为会员 #{CONFIRMED_MEMBER} 增加 50,000 积分（价值 ¥500.00）？")
    expect(page.locator("#adjust input[name=points]")).to_have_attribute("readonly", "")
    page.locator("#adjust").screenshot(path=str(artifacts / "console-adjust-confirm.png"))
    assert available(demo_site, CONFIRMED_MEMBER) == before

    page.fill("#adjust input[name=confirm]", "5000")
    page.click("#adjust button[type=submit]")
    expect(page.locator(".flash-error")).to_have_text("确认时输入的数额不一致，请重新输入。")
    assert available(demo_site, CONFIRMED_MEMBER) == before

    page.fill("#adjust input[name=confirm]", "50,000")
    page.click("#adjust button[type=submit]")
    expect(page.locator(".flash-success")).to_have_text("余额已调整。")
    expect(page.get_by_test_id("available")).to_have_text(f"{before + 50_000:,}")

    page.fill("#adjust input[name=points]", "20000000")
    page.fill("#adjust textarea[name=reason]", "fat finger")
    page.click("#adjust button[type=submit]")
    expect(page.locator(".flash-error")).to_have_text(
        "单次调整最多 10,000,000 积分。未做任何更改。"
    )
    assert available(demo_site, CONFIRMED_MEMBER) == before + 50_000


def test_a_request_above_the_limit_is_approved_by_another_staff_member(
    page: Page, browser: Browser, demo_site: DemoSite, artifacts: Path
) -> None:
    before = available(demo_site, REQUESTED_MEMBER)
    sign_in(page, demo_site, "support")
    page.goto(demo_site.url(f"/console/members/{REQUESTED_MEMBER}"))
    preview = page.locator("#adjust-preview")
    expect(preview).to_be_hidden()
    page.fill("#adjust input[name=points]", "5000")
    expect(preview).to_have_text("在您的权限内：立即入账。")
    page.fill("#adjust input[name=points]", "6000")
    expect(preview).to_have_text("超出您的权限：将成为申请，由其他员工审批。")
    page.fill("#adjust input[name=points]", "60,000")
    expect(preview).to_have_text(
        "超出您的权限：将成为申请，由其他员工审批。 数额较大：需要再次输入以确认。"
    )
    page.fill("#adjust input[name=points]", "99999999")
    expect(preview).to_have_text("超过单次调整上限（10,000,000 积分）：将被拒绝。")
    page.fill("#adjust input[name=points]", "6000")
    page.fill("#adjust textarea[name=reason]", "补偿：会员日活动漏发")
    page.locator("#adjust").screenshot(path=str(artifacts / "console-adjust-preview.png"))
    page.click("#adjust button[type=submit]")

    expect(page.locator(".flash-success")).to_contain_text("超出您 5,000 积分的权限：已作为申请 #")
    number = re.search(r"#(\d+)", page.locator(".flash-success").inner_text())
    assert number
    request_id = number.group(1)
    expect(page.locator("#member-requests")).to_contain_text("+6,000")
    expect(page.get_by_test_id("pending-count")).to_be_visible()
    assert available(demo_site, REQUESTED_MEMBER) == before
    page.locator("#member-requests").screenshot(
        path=str(artifacts / "console-member-pending-request.png")
    )

    page.click("#nav-adjustments")
    own = page.locator(f"#request-{request_id}")
    expect(own).to_contain_text("您的申请：须由其他员工审批")
    expect(own.locator("button", has_text="批准并入账")).to_have_count(0)

    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    approver = context.new_page()
    try:
        sign_in(approver, demo_site, "admin")
        approver.goto(demo_site.url("/console/adjustments"))
        item = approver.locator(f"#request-{request_id}")
        expect(item).to_contain_text("Sam Support")
        expect(item).to_contain_text("补偿：会员日活动漏发")
        expect(item).to_contain_text("¥60.00")
        approver.screenshot(path=str(artifacts / "console-adjustment-requests.png"), full_page=True)

        item.locator("button", has_text="批准并入账").click()
        expect(approver.locator(".flash-success")).to_have_text(
            f"申请 #{request_id} 已批准并入账。"
        )
        expect(approver.locator(f"#request-{request_id}")).to_have_count(0)
        expect(approver.locator(f'#decided tr[data-request="{request_id}"]')).to_contain_text(
            "已批准并入账"
        )
        approver.screenshot(path=str(artifacts / "console-adjustment-decided.png"), full_page=True)
    finally:
        context.close()
    assert available(demo_site, REQUESTED_MEMBER) == before + 6_000


def test_an_administrator_creates_a_key_seen_once_and_revokes_it(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    sign_in(page, demo_site, "admin")
    page.click("#nav-partners")
    page.fill("#register input[name=code]", "E2E-BROWSER")
    page.fill("#register input[name=name]", "浏览器测试商户")
    page.click("#register button[type=submit]")
    expect(page.locator(".flash-success")).to_have_text("合作方 E2E-BROWSER 已注册。")
    expect(page.locator("#create-key input[value=transfer]")).to_be_disabled()

    page.fill("#create-key input[name=label]", "收银台")
    page.click("#create-key button[type=submit]")
    shown = page.get_by_test_id("new-key")
    expect(shown).to_have_text(re.compile(r"^tly_[0-9a-f]{12}\.\S+$"))
    key = shown.inner_text()
    page.screenshot(path=str(artifacts / "console-partner-new-key.png"), full_page=True)
    headers = {"Authorization": f"Bearer {key}"}
    assert page.request.get(demo_site.url("/v1/members/999999"), headers=headers).status == 404

    page.goto(demo_site.url("/console/partners/E2E-BROWSER"))
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    row = page.locator(f'#keys tr[data-key="{key.split(".")[0]}"]')
    expect(row).to_contain_text("收银台")
    row.locator("button", has_text="吊销").click()
    expect(page.locator(".flash-success")).to_contain_text("已吊销")
    assert page.request.get(demo_site.url("/v1/members/999999"), headers=headers).status == 401

    page.click("#nav-staff")
    expect(page.locator('tr[data-staff="admin"]')).to_contain_text("您")
    expect(page.locator('tr[data-staff="admin"] button', has_text="停用")).to_have_count(0)
    page.screenshot(path=str(artifacts / "console-staff.png"), full_page=True)
