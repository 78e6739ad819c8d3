"""The auction room in headless Chromium on two phones over the demo: both watch one auction;
one member bids through the room's form and the other's page shows the new price and leader
at once (server-sent events, no reload), then its own higher bid leads on both."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Browser, Page, expect
from web_fixtures import DemoSite

from tally.api.member_links import mint_token
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.kit.clock import utcnow
from tally.ledger.posting import policy_for
from tally.partners import service as partners
from tally.programme import runtime

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page

pytestmark = pytest.mark.browser

#: Demo members no other browser test changes.
FIRST, SECOND = 11, 13


def _auction(site: DemoSite) -> str:
    now = utcnow()
    with site.db.write() as session:
        programme = runtime.effective(session, site.settings)
        spec = auctions.AuctionSpec(
            f"LUNCH-{os.urandom(3).hex()}",
            {"zh-CN": "企业家午餐", "en": "Lunch with a founder"},
            now - timedelta(minutes=1),
            now + timedelta(minutes=30),
            10,
            None,
            (Increment(0, 5), Increment(1000, 50)),
            60,
        )
        owner = partners.partner_by_code(session, "MOBILE").id
        return str(
            auctions.create(session, owner, spec, now, policy_for(programme, site.settings)).id
        )


def _phone(browser: Browser, site: DemoSite, member: int) -> Page:
    context = browser.new_context(
        locale="zh-CN",
        viewport=web_fixtures.PHONE_VIEWPORT,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(site.url(f"/m/sign-in?token={mint_token(site.settings.secret_key, member)}"))
    return page


def test_two_phones_watch_the_price_move_live(
    browser: Browser, demo_site: DemoSite, artifacts: Path
) -> None:
    auction = _auction(demo_site)
    watcher, bidder = _phone(browser, demo_site, FIRST), _phone(browser, demo_site, SECOND)
    try:
        for page in (watcher, bidder):
            page.goto(demo_site.url(f"/m/auctions/{auction}"))
            expect(page.get_by_test_id("price")).to_have_text("10")
            expect(page.get_by_test_id("leader")).to_have_text("暂无出价")
        expect(watcher.get_by_test_id("countdown")).to_have_text(re.compile(r"^00:(29|30):\d\d$"))

        bidder.fill("#max-points", "60")
        bidder.get_by_role("button", name="出价").click()
        expect(bidder.locator(".flash-success")).to_contain_text("领先")
        # The watcher's page moves by itself: a leader now, masked, and one bid.
        expect(watcher.get_by_test_id("bids")).to_have_text("1")
        expect(watcher.get_by_test_id("leader")).to_have_text(f"•••{SECOND}")
        expect(watcher.locator("#max-points")).to_have_value("15")
        expect(watcher.get_by_test_id("minimum")).to_contain_text("至少 15 积分")
        watcher.screenshot(path=str(artifacts / "auction-room-watching.png"), full_page=True)

        watcher.fill("#max-points", "100")
        watcher.get_by_role("button", name="出价").click()
        expect(watcher.get_by_test_id("leader")).to_have_text("你领先")
        expect(watcher.get_by_test_id("price")).to_have_text("65")
        expect(bidder.get_by_test_id("price")).to_have_text("65")  # live, no reload
        expect(bidder.get_by_test_id("standing")).to_have_text("你已被超越")
        bidder.screenshot(path=str(artifacts / "auction-room-outbid.png"), full_page=True)
    finally:
        watcher.context.close()
        bidder.context.close()


def test_the_console_lists_an_auction_and_shows_its_bids(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    auction = _auction(demo_site)
    web_fixtures.sign_in(page, demo_site, "admin")
    page.goto(demo_site.url("/console/auctions"))
    expect(page.locator(f'tr[data-auction="{auction}"]')).to_contain_text("企业家午餐")
    expect(page.locator("#new-auction")).to_be_visible()
    page.screenshot(path=str(artifacts / "console-auctions.png"), full_page=True)
    page.locator(f'tr[data-auction="{auction}"] a').click()
    expect(page.get_by_test_id("status")).to_have_text("竞拍中")
    page.screenshot(path=str(artifacts / "console-auction.png"), full_page=True)
