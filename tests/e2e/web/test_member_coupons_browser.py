"""The coupon wallet in headless Chromium on a phone, over the demo: the member sees a code
it can use (and copies it), one used, one expired, in Chinese and English; the console's
coupon pages as an administrator."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_fixtures import DemoSite, sign_in

from tally.api.member_links import mint_token
from tally.coupons import service as coupons
from tally.coupons.domain import Cart, Kind
from tally.coupons.models import Coupon
from tally.kit.clock import utcnow

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
phone = web_fixtures.phone
page = web_fixtures.page

pytestmark = pytest.mark.browser

#: A demo member no other browser test changes.
MEMBER = 23


def _wallet(site: DemoSite) -> tuple[str, str]:
    """Three coupons for MEMBER: a percent one to use, one used, one expired; the template of
    the first and its code."""
    now = utcnow()
    tag = os.urandom(2).hex().upper()
    with site.db.write() as session:
        food = {"zh-CN": "美食八折券", "en": "20% off food"}
        specs = [
            coupons.TemplateSpec(f"B{tag}FOOD", Kind.PERCENT, 2000, food, cap=3000,
                                 min_spend=10_000, valid_until=now + timedelta(days=20)),
            coupons.TemplateSpec(f"B{tag}USED", Kind.AMOUNT, 500, {"zh-CN": "五元券", "en": "5"}),
            coupons.TemplateSpec(f"B{tag}OLD", Kind.AMOUNT, 1000, {"zh-CN": "十元券", "en": "10"},
                                 valid_until=now - timedelta(days=1)),
        ]  # fmt: skip
        rows = [coupons.create_template(session, spec, "CNY", now) for spec in specs]
        for row in rows:
            coupons.issue(
                session, row, coupons.Issuer(), now - timedelta(days=2), member_ids=[MEMBER]
            )
        used = session.scalar(select(Coupon.code).where(Coupon.template_id == rows[1].id))
        code = session.scalar(select(Coupon.code).where(Coupon.template_id == rows[0].id))
        assert used is not None
        assert code is not None
        checkout = coupons.Checkout(partner_id=1, partner_code="SHOP")
        coupons.redeem(session, coupons.Ask(used, Cart(2000), MEMBER), checkout, now)
    return rows[0].code, code


def test_a_member_sees_its_wallet_and_copies_a_code(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    _template, code = _wallet(demo_site)
    phone.context.grant_permissions(["clipboard-read", "clipboard-write"])
    phone.goto(
        demo_site.url(f"/m/sign-in?token={mint_token(demo_site.settings.secret_key, MEMBER)}")
    )

    phone.get_by_role("link", name="优惠券").click()

    expect(phone).to_have_url(demo_site.url("/m/coupons"))
    expect(phone.locator("h1")).to_have_text("我的优惠券")
    valid = phone.locator("[data-state=valid]", has_text="美食八折券")
    expect(valid).to_contain_text("减 20%")
    expect(valid).to_contain_text("最多减 ¥30.00 · 满 ¥100.00 可用")
    shown = f"{code[:4]}-{code[4:8]}-{code[8:]}"
    expect(valid.get_by_test_id("coupon-code")).to_have_text(shown)
    expect(phone.locator("#coupons-used [data-state=used]", has_text="五元券")).to_be_visible()
    expect(
        phone.locator("#coupons-expired [data-state=expired]", has_text="十元券")
    ).to_be_visible()
    phone.screenshot(path=str(artifacts / "member-coupons-phone.png"), full_page=True)

    valid.get_by_role("button", name="复制券码").click()
    expect(valid.get_by_role("button", name="已复制")).to_be_visible()
    assert phone.evaluate("navigator.clipboard.readText()") == shown

    phone.get_by_role("link", name="English").click()
    expect(phone.locator("h1")).to_have_text("My coupons")
    expect(phone.locator("[data-state=valid]", has_text="20% off food")).to_contain_text("20% off")
    phone.screenshot(path=str(artifacts / "member-coupons-en-phone.png"), full_page=True)


def test_the_console_lists_templates_and_their_use(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    template, _code = _wallet(demo_site)
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url("/console/coupons"))
    expect(page.locator(f"[data-template={template}]")).to_be_visible()
    page.screenshot(path=str(artifacts / "console-coupons.png"), full_page=True)
    page.locator(f"[data-template={template}] a").click()
    expect(page.get_by_test_id("offer")).to_contain_text("20%")
    expect(page.get_by_test_id("in-wallets")).to_have_text("1")
    page.screenshot(path=str(artifacts / "console-coupon.png"), full_page=True)
