"""The mall in headless Chromium on a phone, over the demo: the whole purchase path (points
only; points + cash, paid by the payment partner through the service, then shown paid), the
flash sale's countdown ticking in the page's own script, and screenshots of every mall page
(member and console) in Chinese and English."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import web_fixtures
from playwright.sync_api import Browser, Page, expect
from web_fixtures import PHONE_VIEWPORT, DemoSite, sign_in

from support.policy import policy_of
from tally.api.member_links import mint_token
from tally.flows import enrolment
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.mall import service as catalog
from tally.mall.schemas import ItemCreate
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import service as programme_service
from tally.programme.domain import Money
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
phone = web_fixtures.phone

pytestmark = pytest.mark.browser


def _tag() -> str:
    return os.urandom(3).hex().upper()


def _item(site: DemoSite, code: str, kind: str, points: int, **extra: Any) -> str:
    names = extra.pop("names", {"zh-CN": f"商品 {code}", "en": f"Item {code}"})
    spec = ItemCreate.model_validate(
        {"code": code, "kind": kind, "names": names, "price": {"points": points}, **extra}
    )
    with site.db.write() as session:
        programme = programme_service.running(session, utcnow())
        assert programme is not None
        catalog.create_item(session, catalog.OPERATOR, spec, programme, utcnow())
    return code


def _member(site: DemoSite, points: int, growth: int = 0) -> int:
    now = utcnow()
    with site.db.write() as session:
        member_id, _ = enrolment.enrol(session, Identity("shop", f"mall-{_tag()}"), {}, now)
        mobile = partners.partner_by_code(session, "MOBILE").id
        ledger.earn(
            session,
            Origin(partner_id=mobile),
            member_id,
            points,
            f"mall-seed-{member_id}",
            now,
            policy_of(site.settings),
        )
        if growth:
            programme = programme_service.running(session, now)
            assert programme is not None
            tiers.credit(
                session, member_id, growth, kind=GrowthKind.EARN, programme=programme, now=now
            )
    return member_id


def _open(page: Page, site: DemoSite, member_id: int) -> None:
    page.goto(site.url(f"/m/sign-in?token={mint_token(site.settings.secret_key, member_id)}"))


def _pay(site: DemoSite, order_id: str, cash: Money) -> None:
    with site.db.write() as session:
        mobile = partners.partner_by_code(session, "MOBILE").id
        flow.pay(
            session,
            flow.Actor(partner_id=mobile, is_operator=True),
            uuid.UUID(order_id),
            f"pay-{order_id}",
            cash,
            utcnow(),
            policy_of(site.settings),
        )


def _shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_a_member_buys_with_points_and_with_points_and_cash(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    tag = _tag()
    gift = _item(
        demo_site,
        f"GIFT{tag}",
        "donation",
        300,
        names={"zh-CN": f"公益捐赠 {tag}", "en": f"Donation {tag}"},
        categories=["charity"],
    )
    cash = _item(
        demo_site,
        f"CASH{tag}",
        "donation",
        500,
        names={"zh-CN": f"视频会员月卡 {tag}", "en": f"Video month {tag}"},
        price={"points": 500, "cash": {"amount": "12.50", "currency": "CNY"}},
    )
    member_id = _member(demo_site, 2000)
    _open(phone, demo_site, member_id)
    phone.get_by_test_id("nav-mall").click()
    expect(phone).to_have_url(demo_site.url("/m/mall"))
    expect(phone.locator("h1")).to_have_text("全部商品")
    phone.get_by_role("searchbox").fill(tag)
    phone.get_by_role("button", name="搜索").click()
    expect(phone.locator(".mall-tile")).to_have_count(2)
    _shot(phone, artifacts, "mall-index-zh-phone")

    phone.locator(f"[data-item={gift}] a").click()
    expect(phone.locator("h1")).to_have_text(f"公益捐赠 {tag}")
    _shot(phone, artifacts, "mall-item-zh-phone")
    phone.get_by_test_id("buy").click()
    expect(phone.locator(".flash-success")).to_have_text("兑换成功，订单已提交。")
    expect(phone.get_by_test_id("status")).to_have_text("已完成")
    expect(phone.get_by_test_id("payment")).to_have_text("已付款")
    _shot(phone, artifacts, "mall-order-completed-zh-phone")

    phone.goto(demo_site.url(f"/m/mall/items/{cash}?lang=en"))
    expect(phone.get_by_test_id("cash-note")).to_contain_text("CN¥12.50")
    phone.get_by_test_id("buy").click()
    expect(phone.get_by_test_id("awaiting-payment")).to_contain_text("Pay CN¥12.50")
    expect(phone.get_by_test_id("payment")).to_have_text("Not paid yet")
    _shot(phone, artifacts, "mall-order-awaiting-en-phone")
    order_id = phone.url.rsplit("/", 1)[1]
    _pay(demo_site, order_id, Money(1250, "CNY"))
    phone.reload()
    expect(phone.get_by_test_id("payment")).to_have_text("Payment received")
    expect(phone.get_by_test_id("awaiting-payment")).to_have_count(0)
    expect(phone.locator("[data-event=paid]")).to_have_count(1)
    _shot(phone, artifacts, "mall-order-paid-en-phone")

    phone.get_by_role("link", name="My orders").click()
    expect(phone.locator(".mall-orders li")).to_have_count(2)
    _shot(phone, artifacts, "mall-orders-en-phone")
    phone.goto(demo_site.url("/m/mall?lang=en"))
    _shot(phone, artifacts, "mall-index-en-phone")


def test_a_physical_order_and_the_flash_sale_countdown_for_a_black_gold_member(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    tag = _tag()
    now = utcnow()
    sale = {
        "starts_at": (now + timedelta(seconds=40)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "points": 99,
        "stock": 10,
        "per_member_limit": 1,
    }
    flash = _item(
        demo_site,
        f"FLASH{tag}",
        "physical",
        1200,
        names={"zh-CN": f"限量耳机 {tag}", "en": f"Headphones {tag}"},
        stock=5,
        sale=sale,
        exclusive=True,
    )
    mug = _item(
        demo_site,
        f"MUG{tag}",
        "physical",
        800,
        names={"zh-CN": f"马克杯 {tag}", "en": f"Mug {tag}"},
        stock=3,
        tier_prices={"DIAMOND": 600},
        per_member_limit={"count": 2, "period": "month"},
        descriptions={"zh-CN": "陶瓷马克杯，容量 350 毫升。", "en": "A ceramic mug, 350 ml."},
    )
    member_id = _member(demo_site, 5000, growth=45_000)
    _open(phone, demo_site, member_id)
    phone.goto(demo_site.url(f"/m/mall/items/{flash}"))
    expect(phone.locator("body")).to_have_class(re.compile("theme-black-gold"))
    clock = phone.get_by_test_id("countdown-start")
    first = clock.inner_text()
    assert re.fullmatch(r"00:00:[0-4]\d", first), first
    phone.wait_for_function(
        "([el, was]) => el.textContent !== was", arg=[clock.element_handle(), first]
    )
    _shot(phone, artifacts, "mall-flash-sale-zh-phone")

    phone.goto(demo_site.url(f"/m/mall/items/{mug}?lang=en"))
    expect(phone.get_by_test_id("limit")).to_have_text("2 per month, 2 left for you")
    phone.fill("input[name=address_name]", "Wang Fang")
    phone.fill("input[name=address_line]", "1 Nanjing Road")
    phone.fill("input[name=address_city]", "Shanghai")
    _shot(phone, artifacts, "mall-item-physical-en-phone")
    phone.get_by_test_id("buy").click()
    expect(phone.get_by_test_id("status")).to_have_text("Processing")
    expect(phone.get_by_test_id("promise")).to_contain_text("your points come back automatically")
    _shot(phone, artifacts, "mall-order-physical-en-phone")
    phone.get_by_test_id("cancel").click()
    expect(phone.get_by_test_id("status")).to_have_text("Refunded")
    phone.goto(demo_site.url("/m/mall"))
    _shot(phone, artifacts, "mall-index-black-gold-zh-phone")


def test_the_console_mall_pages_on_a_phone(
    browser: Browser, demo_site: DemoSite, artifacts: Path
) -> None:
    tag = _tag()
    mug = _item(demo_site, f"CMUG{tag}", "physical", 800, stock=3)
    codes = _item(demo_site, f"CODE{tag}", "digital_code", 50, low_water=5)
    member_id = _member(demo_site, 3000)
    with demo_site.db.write() as session:
        programme = programme_service.running(session, utcnow())
        assert programme is not None
        mobile = partners.partner_by_code(session, "MOBILE").id
        order = flow.place_order(
            session,
            flow.Actor(partner_id=mobile, is_operator=True),
            member_id,
            flow.OrderRequest(item=mug, quantity=2, address={"line": "1 Nanjing Road"}),
            programme,
            policy_of(demo_site.settings),
            utcnow(),
        )
        order_id = order.id
    context = browser.new_context(locale="zh-CN", viewport=PHONE_VIEWPORT, device_scale_factor=2)
    page = context.new_page()
    try:
        sign_in(page, demo_site, "admin")
        page.goto(demo_site.url("/console/mall/orders"))
        expect(page.locator(f"[data-order='{order_id}']")).to_have_count(1)
        _shot(page, artifacts, "console-mall-orders-zh-phone")
        page.goto(demo_site.url(f"/console/mall/orders/{order_id}"))
        page.fill("input[name=carrier]", "SF")
        page.fill("input[name=tracking_number]", "SF1001")
        _shot(page, artifacts, "console-mall-order-zh-phone")
        page.locator("#ship button").click()
        expect(page.get_by_test_id("fulfilment")).to_have_text("运送中")
        page.locator("#refund input[name=quantity]").fill("1")
        page.locator("#refund button").click()
        expect(page.get_by_test_id("refund-confirm")).to_be_visible()
        _shot(page, artifacts, "console-mall-refund-confirm-zh-phone")
        page.get_by_role("button", name="确认退款").click()
        expect(page.get_by_test_id("payment")).to_have_text("部分退款")
        page.goto(demo_site.url(f"/console/mall/items/{codes}?lang=en"))
        page.fill("textarea[name=codes]", "A-1\nA-2\nA-3")
        page.get_by_role("button", name="Upload codes").click()
        expect(page.get_by_test_id("pool")).to_have_text("3")
        _shot(page, artifacts, "console-mall-item-en-phone")
        page.goto(demo_site.url("/console/mall/items?lang=en"))
        _shot(page, artifacts, "console-mall-items-en-phone")
        page.goto(demo_site.url("/console/mall/orders/due?hours=168"))
        _shot(page, artifacts, "console-mall-due-zh-phone")
    finally:
        context.close()
