"""The member mall pages over HTTP on both databases: browse, search and categories; an item's
price (tier price, points + cash), stock, limit, eligibility and flash sale; buying once per
form (points only, points + cash then paid by the payment partner, a physical item with its
address and the 48-hour promise); refusals in words with nothing written; orders with codes,
tickets and timeline; cancel; another member's order is not found."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import SECRET
from support.mall import POLICY, Mall, open_mall
from tally.api.member_links import mint_token
from tally.db.session import Database
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.mall.models import Order, OrderEvent
from tally.programme.domain import Money
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
ORDER_URL = re.compile(r"^/m/mall/orders/([0-9a-f-]{36})$")


@pytest.fixture
def mall(database: Database) -> Mall:
    return open_mall(database)


Shopper = Callable[..., TestClient]


@pytest.fixture
def shopper(mall: Mall, app: Any) -> Iterator[Shopper]:
    """Signed-in browsers (each its own cookies) of new members with points."""
    opened: list[TestClient] = []

    def make(points: int = 10_000, growth: int = 0) -> TestClient:
        member_id = mall.member(points)
        if growth:
            with mall.db.write() as session:
                tiers.credit(
                    session,
                    member_id,
                    growth,
                    kind=GrowthKind.EARN,
                    programme=mall.programme,
                    now=utcnow(),
                )
        web = TestClient(app, follow_redirects=False)
        web.__enter__()
        opened.append(web)
        answer = web.get(f"/m/sign-in?token={mint_token(SECRET, member_id)}")
        assert answer.status_code == 303, answer.text
        web.member_id = member_id  # type: ignore[attr-defined]
        return web

    yield make
    for web in opened:
        web.__exit__(None, None, None)


def _form(html: str) -> dict[str, str]:
    csrf, nonce = CSRF.search(html), NONCE.search(html)
    assert csrf is not None, html
    assert nonce is not None, html
    return {"csrf": csrf.group(1), "nonce": nonce.group(1)}


def _buy(web: TestClient, code: str, **fields: str) -> Any:
    page = web.get(f"/m/mall/items/{code}", headers=EN)
    assert page.status_code == 200, page.text
    return web.post(f"/m/mall/items/{code}/order", data={**_form(page.text), **fields}, headers=EN)


def _placed(answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    found = ORDER_URL.match(answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return found.group(1)


def _orders(mall: Mall) -> int:
    return mall.count(Order)


def test_the_mall_lists_items_with_prices_badges_and_states(mall: Mall, shopper: Shopper) -> None:
    now = utcnow()
    mall.item("MUG", "physical", 800, stock=3, categories=["home"], tier_prices={"BRONZE": 700})
    mall.item("BOOK", "donation", 200, stock=0, categories=["books"])
    mall.item("SOON", "donation", 100, starts_at=(now + timedelta(days=2)).isoformat())
    mall.item("CASH", "donation", 500, price={"cash": {"amount": "12.50", "currency": "CNY"}})
    mall.item("GOLDONLY", "donation", 100, eligibility={"tiers": ["GOLD"]})
    mall.item("VIPONLY", "donation", 100, eligibility={"plans": ["VIP88"]})
    mall.item("SECRET", "donation", 100, exclusive=True)
    web = shopper()
    page = web.get("/m/mall", headers=EN)
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="nav-mall"' in html
    assert 'class="current"' in html
    assert "You have 10,000" in html
    for code in ("MUG", "BOOK", "SOON", "CASH", "GOLDONLY", "VIPONLY"):
        assert f'data-item="{code}"' in html
    assert 'data-item="SECRET"' not in html  # an exclusive item only for the top tiers
    mug = html.split('data-item="MUG"')[1].split("</li>")[0]
    assert "700" in mug
    assert '<s class="mall-was">800</s>' in mug
    assert "Your tier" in mug
    assert 'data-item="BOOK" data-state="sold_out"' in html
    assert 'data-item="SOON" data-state="not_yet"' in html
    cash = html.split('data-item="CASH"')[1].split("</li>")[0]
    assert "500" in cash
    assert "12.50" in cash
    assert "Tier only: Item" not in html
    gold = html.split('data-item="GOLDONLY"')[1].split("</li>")[0]
    assert "Tier only: Gold" in gold
    assert "Not for your membership" in gold
    vip = html.split('data-item="VIPONLY"')[1].split("</li>")[0]
    assert "Members of 88 VIP" in vip

    search = web.get("/m/mall?q=mug", headers=EN).text
    assert 'data-item="MUG"' in search
    assert 'data-item="BOOK"' not in search
    books = web.get("/m/mall?category=books", headers=EN).text
    assert 'data-item="BOOK"' in books
    assert 'data-item="MUG"' not in books
    assert 'data-category="home"' in books
    nothing = web.get("/m/mall?q=zzz", headers=EN).text
    assert "Nothing matches" in nothing
    chinese = web.get("/m/mall", headers=ZH).text
    assert "积分商城" in chinese
    assert "商品MUG" in chinese


def test_the_top_tiers_see_exclusive_items_in_black_gold(mall: Mall, shopper: Shopper) -> None:
    mall.item("SECRET", "donation", 100, exclusive=True)
    web = shopper(growth=45_000)
    html = web.get("/m/mall", headers=EN).text
    assert "theme-black-gold" in html
    assert 'data-item="SECRET" data-state="available"' in html
    assert "Top tiers only" in html
    item = web.get("/m/mall/items/SECRET", headers=EN).text
    assert "Reserved to the top tiers." in item
    assert "Your membership includes it." in item
    assert shopper().get("/m/mall/items/SECRET", headers=EN).status_code == 404


def test_a_points_only_order_is_paid_at_once_and_its_form_is_used_once(
    mall: Mall, shopper: Shopper
) -> None:
    mall.item("DONATE", "donation", 300, stock=5, per_member_limit={"count": 2, "period": "month"})
    web = shopper(1000)
    page = web.get("/m/mall/items/DONATE", headers=EN).text
    assert "2 per month, 2 left for you" in page
    form = {**_form(page), "quantity": "1"}
    order_id = _placed(web.post("/m/mall/items/DONATE/order", data=form, headers=EN))
    shown = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert "Thank you! Your order is placed." in shown
    assert 'data-testid="status">Completed' in shown
    assert 'data-testid="payment">Payment received' in shown
    assert 'data-testid="fulfilment">Delivered' in shown
    assert 'data-event="placed"' in shown
    assert 'data-event="completed"' in shown
    assert mall.balance(web.member_id) == 700  # type: ignore[attr-defined]

    again = web.post("/m/mall/items/DONATE/order", data=form, headers=EN)  # the same form
    assert again.status_code == 303
    assert again.headers["location"] == f"/m/mall/orders/{order_id}"
    assert "already sent" in web.get(again.headers["location"], headers=EN).text
    assert _orders(mall) == 1
    assert mall.balance(web.member_id) == 700
    assert "1 left for you" in web.get("/m/mall/items/DONATE", headers=EN).text

    listing = web.get("/m/mall/orders", headers=EN).text
    assert f'data-order="{order_id}" data-status="completed"' in listing


def test_points_and_cash_wait_for_the_payment_partner(mall: Mall, shopper: Shopper) -> None:
    mall.item("CASH", "donation", 500, price={"cash": {"amount": "12.50", "currency": "CNY"}})
    web = shopper(1000)
    item = web.get("/m/mall/items/CASH", headers=EN).text
    assert 'data-testid="cash-note"' in item
    assert "Reserve and pay" in item
    order_id = _placed(_buy(web, "CASH"))
    shown = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert "Pay the cash part to complete it." in shown
    assert 'data-testid="awaiting-payment"' in shown
    assert "Pay CN¥12.50" in shown
    assert 'data-testid="payment">Not paid yet' in shown
    assert mall.balance(web.member_id) == 500  # type: ignore[attr-defined]  # held
    with mall.db.write() as session:
        flow.pay(
            session,
            mall.app,
            __import__("uuid").UUID(order_id),
            "pay-1",
            Money(1250, "CNY"),
            utcnow(),
            POLICY,
        )
    paid = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert 'data-testid="payment">Payment received' in paid
    assert 'data-testid="awaiting-payment"' not in paid
    assert 'data-event="paid"' in paid


def test_a_physical_item_needs_an_address_and_carries_the_promise(
    mall: Mall, shopper: Shopper
) -> None:
    mall.item("MUG", "physical", 800, stock=3)
    web = shopper(1000)
    refused = _buy(web, "MUG")
    assert refused.status_code == 422 or refused.status_code == 400
    assert "Give the address to ship to" in refused.text
    assert _orders(mall) == 0
    bad = _buy(web, "MUG", address_line="Road \u202e 1")
    assert "Give the address to ship to" in bad.text
    assert _orders(mall) == 0
    order_id = _placed(
        _buy(web, "MUG", address_name="Wang", address_line="1 Nanjing Road", address_city="SH")
    )
    shown = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert 'data-testid="status">Processing' in shown
    assert 'data-testid="promise"' in shown
    assert "your points come back automatically" in shown
    assert "Wang, 1 Nanjing Road, SH" in shown
    with mall.db.write() as session:
        flow.ship(session, mall.app, __import__("uuid").UUID(order_id), "SF", "SF123", utcnow())
    shipped = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert 'data-testid="tracking"' in shipped
    assert "SF123" in shipped
    assert 'data-testid="promise"' not in shipped
    assert 'data-testid="cancel"' not in shipped


def test_a_member_cancels_an_unshipped_order_once(mall: Mall, shopper: Shopper) -> None:
    mall.item("MUG", "physical", 800, stock=3)
    web = shopper(1000)
    order_id = _placed(_buy(web, "MUG", address_line="1 Nanjing Road"))
    page = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert 'data-testid="cancel"' in page
    form = _form(page)
    done = web.post(f"/m/mall/orders/{order_id}/cancel", data=form, headers=EN)
    assert done.status_code == 303
    shown = web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert "Its points are back" in shown
    assert 'data-testid="status">Refunded' in shown
    assert mall.balance(web.member_id) == 1000  # type: ignore[attr-defined]
    again = web.post(f"/m/mall/orders/{order_id}/cancel", data=form, headers=EN)
    assert again.status_code == 303
    assert "already cancelled" in web.get(f"/m/mall/orders/{order_id}", headers=EN).text
    assert mall.count(OrderEvent, OrderEvent.kind == "cancelled") == 1


def test_refusals_say_why_and_write_nothing(mall: Mall, shopper: Shopper) -> None:
    now = utcnow()
    mall.item("GONE", "donation", 100, stock=1)
    mall.item("GOLDONLY", "donation", 100, eligibility={"tiers": ["GOLD"]})
    mall.item("DEAR", "donation", 5000)
    sale = {
        "starts_at": (now + timedelta(hours=3)).isoformat(),
        "ends_at": (now + timedelta(hours=4)).isoformat(),
        "points": 10,
        "stock": 5,
        "per_member_limit": 1,
    }
    mall.item("FLASH", "donation", 100, sale=sale)
    web = shopper(900)
    stale = _page_with_form(web, "GONE")  # the form, shown while one was left
    _placed(_buy(shopper(1000), "GONE"))
    before = _orders(mall)
    assert 'data-testid="cannot-buy"' in _page_with_form(web, "GONE")
    gone = web.post("/m/mall/items/GONE/order", data=_form(stale), headers=EN)
    assert gone.status_code == 409
    assert "Sorry, this item is sold out." in gone.text
    dear = _buy(web, "DEAR")
    assert dear.status_code == 409
    assert "You need 4,100 more points for this order (you have 900)." in dear.text
    gold = _page_with_form(web, "GOLDONLY")
    assert "For members of: Gold." in gold
    assert "does not include it" in gold
    assert 'data-testid="cannot-buy"' in gold
    forced = web.post("/m/mall/items/GOLDONLY/order", data=_form(stale), headers=EN)
    assert forced.status_code == 403
    assert "not available to your membership" in forced.text
    flash = _page_with_form(web, "FLASH")
    assert 'data-testid="sale" data-phase="upcoming"' in flash
    assert 'data-testid="countdown-start"' in flash
    assert "02:59:" in flash
    assert "countdown.js" in flash
    assert 'data-testid="cannot-buy"' in flash
    closed = web.post("/m/mall/items/FLASH/order", data=_form(stale), headers=EN)
    assert closed.status_code == 409
    assert "not on sale right now" in closed.text
    bad_quantity = web.post(
        "/m/mall/items/DEAR/order", data={**_form(stale), "quantity": "-3"}, headers=EN
    )
    assert "Choose a quantity the item allows." in bad_quantity.text
    no_csrf = web.post("/m/mall/items/DEAR/order", data={"nonce": "x"}, headers=EN)
    assert no_csrf.status_code == 403
    forged = web.post(
        "/m/mall/items/DEAR/order",
        data={**_form(stale), "nonce": "a" * 16 + "." + "0" * 32},
        headers=EN,
    )
    assert "This form has expired" in forged.text
    assert _orders(mall) == before
    assert mall.balance(web.member_id) == 900  # type: ignore[attr-defined]


def _page_with_form(web: TestClient, code: str) -> str:
    return web.get(f"/m/mall/items/{code}", headers=EN).text


def test_a_limit_reached_is_told_with_the_count(mall: Mall, shopper: Shopper) -> None:
    mall.item("ONE", "donation", 100, per_member_limit={"count": 1})
    mall.item("OTHER", "donation", 100)
    web = shopper(1000)
    _placed(_buy(web, "ONE"))
    assert 'data-testid="cannot-buy"' in _page_with_form(web, "ONE")  # 0 left for the member
    fresh = _form(_page_with_form(web, "OTHER"))  # a buy form of this session
    again = web.post("/m/mall/items/ONE/order", data=fresh, headers=EN)
    assert again.status_code == 409
    assert "You have reached the limit for this item: 1, and you have bought 1." in again.text
    assert _orders(mall) == 1


def test_codes_tickets_and_bookings_are_shown_on_the_order(mall: Mall, shopper: Shopper) -> None:
    now = utcnow()
    mall.item("CODE", "digital_code", 50)
    with mall.db.write() as session:
        from tally.mall import service as catalog

        catalog.upload_codes(session, catalog.OPERATOR, "CODE", ["ABC-123", "DEF-456"], now)
    mall.item("GIG", "ticket", 50, stock=10)
    slot = {"code": "SAT", "starts_at": (now + timedelta(days=3)).isoformat(), "capacity": 2}
    mall.item("SPA", "booking", 50, slots=[slot])
    web = shopper(1000)
    code_order = _placed(_buy(web, "CODE"))
    assert "ABC-123" in web.get(f"/m/mall/orders/{code_order}", headers=EN).text
    ticket = web.get(f"/m/mall/orders/{_placed(_buy(web, 'GIG'))}", headers=EN).text
    assert re.search(r'data-testid="ticket">[A-Z2-9]{16}<', ticket)
    spa = web.get("/m/mall/items/SPA", headers=EN).text
    assert 'value="SAT"' in spa
    assert "2 left" in spa
    assert "Choose a time slot." in _buy(web, "SPA").text
    booked = web.get(f"/m/mall/orders/{_placed(_buy(web, 'SPA', slot='SAT'))}", headers=EN).text
    assert "SAT" in booked
    assert 'data-testid="status">Completed' in booked


def test_another_members_order_and_signed_out_visitors(
    mall: Mall, shopper: Shopper, app: Any
) -> None:
    mall.item("DONATE", "donation", 100)
    owner = shopper(1000)
    order_id = _placed(_buy(owner, "DONATE"))
    stranger = shopper(1000)
    assert stranger.get(f"/m/mall/orders/{order_id}", headers=EN).status_code == 404
    page = stranger.get("/m/mall/items/DONATE", headers=EN).text
    refused = stranger.post(f"/m/mall/orders/{order_id}/cancel", data=_form(page), headers=EN)
    assert refused.status_code == 404
    assert stranger.get("/m/mall/orders/not-a-uuid", headers=EN).status_code == 404
    assert stranger.get("/m/mall/items/NOPE", headers=EN).status_code == 404
    with TestClient(app, follow_redirects=False) as visitor:
        for url in ("/m/mall", "/m/mall/items/DONATE", "/m/mall/orders"):
            answer = visitor.get(url)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/m"


def test_the_mall_pages_through_its_items(
    mall: Mall, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tally.web.member.mall_views.PAGE_SIZE", 2)
    for code in ("A1", "A2", "A3"):
        mall.item(code, "donation", 10, categories=["a"])
    mall.item("B1", "donation", 10, categories=["b"])
    web = shopper()
    first = web.get("/m/mall?category=a", headers=EN).text
    assert re.findall(r'data-item="(\w+)"', first) == ["A1", "A2"]
    more = re.search(r'href="(/m/mall\?after=\d+&amp;category=a)" data-testid="more"', first)
    assert more is not None
    second = web.get(more.group(1).replace("&amp;", "&"), headers=EN).text
    assert re.findall(r'data-item="(\w+)"', second) == ["A3"]
    assert 'data-testid="more"' not in second
    assert 'data-category="b"' in second  # every category stays offered


def test_the_front_page_ranks_items_for_the_member_and_says_why(
    mall: Mall, shopper: Shopper
) -> None:
    mall.item("MUG", "physical", 800, stock=3, categories=["home"])
    mall.item("PRICEY", "donation", 12_000)  # 2,000 more than the member has
    mall.item("GONE", "donation", 100, stock=0)
    web = shopper()
    html = web.get("/m/mall", headers=EN).text
    section = html.split('data-testid="for-you"')[1].split("</section>")[0]
    offered = re.findall(r'data-offer="([^"]+)" data-reason="([^"]+)"', section)
    assert offered, section
    assert "GONE" not in {code for code, _reason in offered}  # nothing out of stock
    codes = [code for code, _reason in offered]
    assert codes.index("MUG") < codes.index("PRICEY")  # what the member can afford first
    assert "2,000 points to go" in section.split('data-offer="PRICEY"')[1].split("</li>")[0]
    assert 'data-testid="for-you"' not in web.get("/m/mall?q=mug", headers=EN).text
    chinese = web.get("/m/mall").text.split('data-testid="for-you"')[1].split("</section>")[0]
    assert "为你推荐" in chinese
