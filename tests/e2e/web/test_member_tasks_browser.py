"""The tasks page in headless Chromium on a phone, over the demo: sign in for today, see the
streak and the tasks, copy the referral link (no CDN: the page's own script)."""

from __future__ import annotations

import re
from pathlib import Path

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

#: A demo member no other browser test changes.
MEMBER = 14


def test_a_member_signs_in_for_today_and_copies_the_referral_link(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    phone.context.grant_permissions(["clipboard-read", "clipboard-write"])
    phone.goto(
        demo_site.url(f"/m/sign-in?token={mint_token(demo_site.settings.secret_key, MEMBER)}")
    )
    phone.get_by_role("link", name="任务").click()
    expect(phone).to_have_url(demo_site.url("/m/tasks"))
    expect(phone.locator("h1")).to_have_text("每日签到")
    expect(phone.locator("[data-task=SHARE]")).to_contain_text(re.compile(r"本周 [0-3]/3|已完成"))
    streak = re.search(r"连续签到 (\d+) 天", phone.get_by_test_id("streak").inner_text())
    days = int(streak.group(1)) if streak else 0  # the demo signed members in on earlier days
    phone.screenshot(path=str(artifacts / "member-tasks-phone.png"), full_page=True)

    phone.get_by_role("button", name="今日签到").click()
    expect(phone.locator(".flash-success")).to_have_text(re.compile(r"今日签到成功：\+\d+ 积分。"))
    expect(phone.get_by_test_id("streak")).to_have_text(f"连续签到 {days + 1} 天")
    expect(phone.get_by_test_id("signed-in-today")).to_be_visible()
    expect(phone.locator("[data-task=SIGN_IN]")).to_contain_text("已完成")

    code = phone.get_by_test_id("referral-code").inner_text()
    phone.get_by_role("button", name="复制链接").click()
    expect(phone.get_by_role("button", name="已复制")).to_be_visible()
    copied = phone.evaluate("navigator.clipboard.readText()")
    assert copied == f"https://cloudway.example/join?ref={code.replace('-', '')}"
    phone.screenshot(path=str(artifacts / "member-tasks-signed-in-phone.png"), full_page=True)

    phone.goto(demo_site.url("/m/tasks"))  # the sign-in button is gone for today
    expect(phone.get_by_role("button", name="今日签到")).to_have_count(0)
    expect(phone.get_by_test_id("referral-code")).to_have_text(code)

    phone.get_by_role("link", name="English").click()
    expect(phone.locator("h1")).to_have_text("Daily sign-in")
    expect(phone.get_by_test_id("streak")).to_have_text(f"Days in a row: {days + 1}")
    expect(phone.locator("[data-task=SHARE]")).to_contain_text(
        re.compile(r"[0-3] of 3 this week|Done")
    )
    phone.screenshot(path=str(artifacts / "member-tasks-en-phone.png"), full_page=True)
