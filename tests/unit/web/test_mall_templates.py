"""The mall's templates: text escaped, prices exact, the sale countdown rendered on the server
(so the page reads right without JavaScript) and the limit said in words."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from mall_samples import NOW, item_view, order_card, sale_view
from test_web_templates import chrome

from tally.mall.domain import SUMMARY_STATUSES, FulfilmentStatus, ItemKind, PaymentStatus
from tally.programme.domain import Money
from tally.web import i18n, labels, mall_labels
from tally.web.member.mall_views import SaleView
from tally.web.templating import Renderer


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    zone = ZoneInfo("Asia/Shanghai")
    return Renderer(i18n.load_translations(), lambda: zone, extra_globals={"labels": labels.ALL})


def _item_page(renderer: Renderer, locale: str, **changes: object) -> str:
    context = {
        **chrome(locale),
        "theme": "default",
        "item": item_view(**changes),
        "available": 900,
        "now": NOW,
        "nonce": "n",
        "coupons": False,
        "pay_minutes": 30,
        "form": {},
    }
    return renderer.render(locale, "member/mall/item.html", context)


def test_an_item_page_escapes_names_and_shows_exact_prices(renderer: Renderer) -> None:
    html = _item_page(renderer, "en")
    assert "Mug &lt;b&gt;" in html
    assert "<b>" not in html.split("<body", 1)[1].split("Mug", 1)[0]
    assert '<strong class="mall-points">700</strong>' in html
    assert "CN¥12.50" in html
    assert '<s class="mall-was">800</s>' in html
    assert "2 per month, 1 left for you" in html
    assert "For members of: Gold or 88 VIP." in html
    assert "Reserved to the top tiers." in html
    assert 'name="coupon"' not in html  # coupons are not wired to the mall yet
    assert "Sent within 48 hours of payment" in html
    chinese = _item_page(renderer, "zh-CN")
    assert "每月限 2 件，您还可兑换 1 件" in chinese


def test_the_sale_countdown_is_rendered_on_the_server(renderer: Renderer) -> None:
    starts = NOW + timedelta(days=2, hours=3, minutes=4, seconds=5)
    upcoming = SaleView(starts, starts + timedelta(hours=1), 10, 5, 1, "upcoming")
    soon = _item_page(renderer, "en", sale=upcoming, state="not_yet")
    assert 'data-testid="countdown-start"' in soon
    assert "2d 03:04:05" in soon
    assert 'data-days="{d}d"' in soon
    assert "js/countdown.js" in soon
    chinese = _item_page(renderer, "zh-CN", sale=upcoming, state="not_yet")
    assert "2天 03:04:05" in chinese
    ends = NOW + timedelta(minutes=9, seconds=30)
    running = _item_page(renderer, "en", sale=SaleView(NOW, ends, 10, 5, 1, "open"))
    assert 'data-testid="countdown-end"' in running
    assert "00:09:30" in running
    over = _item_page(renderer, "en", sale=sale_view("over"), state="ended")
    assert "This sale has ended." in over
    assert "js/countdown.js" not in over


def test_an_order_awaiting_payment_explains_the_payment(renderer: Renderer) -> None:
    card = order_card(
        status="awaiting_payment",
        payment_status="pending",
        pay_by=NOW,
        ship_by=None,
        cash=Money(1250, "CNY"),
    )
    context = {**chrome("en"), "theme": "default", "nonce": "n"}
    html = renderer.render("en", "member/mall/order.html", {**context, "order": card})
    assert "Pay CN¥12.50 to complete this order" in html
    assert "before 2026-11-26 12:30" in html
    assert 'data-testid="promise"' not in html


def test_every_kind_and_status_of_the_mall_has_a_label() -> None:
    """A kind or status without a label would fail every page that lists one."""
    assert set(mall_labels.KINDS) == {kind.value for kind in ItemKind}
    assert set(mall_labels.PAYMENTS) == {status.value for status in PaymentStatus}
    assert set(mall_labels.FULFILMENTS) == {status.value for status in FulfilmentStatus}
    assert set(mall_labels.STATUSES) >= set(SUMMARY_STATUSES)
