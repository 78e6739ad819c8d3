"""Samples of the mall's member and console pages for the template suite: every item state,
a sale in each phase, orders of each status, the refund confirmation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tally.flows.mall_orders import OrderView
from tally.mall.domain import (
    SUMMARY_STATUSES,
    FulfilmentStatus,
    ItemKind,
    LimitPeriod,
    PaymentStatus,
    Sale,
)
from tally.mall.models import Item, Order, OrderEvent, Slot
from tally.programme.domain import Money
from tally.programme.shapes import Names
from tally.web.console.auth import Staff
from tally.web.console.mall_items import ItemRow
from tally.web.console.mall_orders import OrderRow
from tally.web.member.mall_views import (
    EventLine,
    ForYou,
    ItemView,
    LimitView,
    OrderCard,
    SaleView,
    Shelf,
    SlotView,
)

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
Sample = tuple[str, dict[str, Any], str | None]
ORDER_ID = uuid.UUID("01890000-0000-7000-8000-000000000001")


def item_view(**changes: Any) -> ItemView:
    base = ItemView(
        code="MUG",
        kind="physical",
        names={"zh-CN": "马克杯 <b>", "en": "Mug <b>"},
        descriptions={"zh-CN": "陶瓷", "en": "Ceramic"},
        image="/static/favicon.svg",
        base_points=800,
        unit_points=700,
        tier_points=700,
        cash=Money(1250, "CNY"),
        sale=None,
        stock=3,
        state="available",
        starts_at=None,
        ends_at=NOW + timedelta(days=3),
        for_tiers=[Names(zh_cn="金卡", en="Gold")],
        for_plans=[Names(zh_cn="88会员", en="88 VIP")],
        is_exclusive=True,
        is_eligible=True,
        limit=LimitView(2, "month", 1, False),
        slots=[],
        ship_within_seconds=48 * 3600,
    )
    return replace(base, **changes)


def sale_view(phase: str) -> SaleView:
    return SaleView(NOW - timedelta(hours=1), NOW + timedelta(days=2), 10, 5, 1, phase)


def item_views() -> list[ItemView]:
    slot = SlotView("SAT", NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1), 0)
    return [
        item_view(),
        item_view(sale=sale_view("open"), unit_points=10, kind="donation", cash=None, image=None),
        item_view(sale=sale_view("upcoming"), state="not_yet", limit=None, for_plans=[]),
        item_view(sale=sale_view("over"), state="ended", is_exclusive=False, for_tiers=[]),
        item_view(state="sold_out", stock=0, tier_points=None, descriptions=None),
        item_view(state="not_yet", starts_at=NOW + timedelta(days=1)),
        item_view(is_eligible=False, kind="booking", slots=[slot, replace(slot, left=2)]),
        item_view(kind="booking", slots=[], stock=None, limit=LimitView(1, "total", 0, False)),
    ]


def order_card(**changes: Any) -> OrderCard:
    base = OrderCard(
        id=ORDER_ID,
        item_code="MUG",
        names={"zh-CN": "马克杯", "en": "Mug"},
        kind="physical",
        status="processing",
        payment_status="paid",
        fulfilment_status="unfulfilled",
        quantity=2,
        points=1400,
        discount_points=100,
        refunded_points=0,
        cash=None,
        pay_by=None,
        ship_by=NOW + timedelta(hours=40),
        carrier=None,
        tracking_number=None,
        codes=[],
        ticket_code=None,
        slot=None,
        address=["王芳 <b>", "1 Nanjing Road"],
        created_at=NOW,
        can_cancel=True,
        events=[
            EventLine("placed", NOW, 1400),
            EventLine("paid", NOW, None),
            EventLine("auto_refunded", NOW, 1400),
        ],
    )
    return replace(base, **changes)


def order_cards() -> list[OrderCard]:
    return [
        order_card(),
        order_card(
            status="awaiting_payment",
            payment_status="pending",
            cash=Money(1250, "CNY"),
            pay_by=NOW + timedelta(minutes=30),
            ship_by=None,
        ),
        order_card(
            status="completed",
            kind="digital_code",
            fulfilment_status="delivered",
            codes=["ABC-1", "DEF-2"],
            ticket_code="ABCDEFGH23456789",
            slot="SAT",
            address=[],
            can_cancel=False,
            ship_by=None,
            refunded_points=100,
            quantity=1,
        ),
        order_card(
            status="shipped",
            fulfilment_status="shipped",
            carrier="SF",
            tracking_number="SF1",
            codes=["ONE"],
            can_cancel=False,
        ),
    ]


def _item(**changes: Any) -> Item:
    values: dict[str, Any] = {
        "id": 1,
        "code": "MUG",
        "kind": ItemKind.PHYSICAL,
        "owner_partner_id": None,
        "names": {"zh-CN": "马克杯 <b>", "en": "Mug <b>"},
        "descriptions": None,
        "categories": "|home|",
        "search_text": "mug",
        "images": [],
        "points": 800,
        "cash_minor_units": 1250,
        "cash_currency": "CNY",
        "tier_points": {"GOLD": 700},
        "eligible_tiers": ["GOLD"],
        "eligible_plans": ["VIP88"],
        "is_exclusive": True,
        "limit_count": 2,
        "limit_period": LimitPeriod.MONTH,
        "stock": 3,
        "sold": 4,
        "starts_at": NOW,
        "ends_at": None,
        "ship_within": "PT48H",
        "ship_within_seconds": 48 * 3600,
        "low_water": 5,
        "sale_starts_at": NOW,
        "sale_ends_at": NOW + timedelta(hours=2),
        "sale_points": 10,
        "sale_stock": 7,
        "sale_limit_count": 1,
        "is_active": True,
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Item(**values)


def _order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "id": ORDER_ID,
        "member_id": 7,
        "item_id": 1,
        "item_code": "MUG",
        "kind": ItemKind.PHYSICAL,
        "owner_partner_id": None,
        "accepting_partner_id": 1,
        "placed_by_partner_id": 1,
        "channel": "api",
        "quantity": 3,
        "unit_points": 100,
        "points": 300,
        "discount_points": 50,
        "coupon_code": "C1",
        "cash_minor_units": 1250,
        "cash_currency": "CNY",
        "is_sale": True,
        "payment_status": PaymentStatus.PAID,
        "fulfilment_status": FulfilmentStatus.UNFULFILLED,
        "refunded_points": 100,
        "refunded_quantity": 1,
        "payment_reference": "pay-1",
        "pay_by": NOW,
        "ship_by": NOW + timedelta(hours=2),
        "address": {"name": "王芳 <b>", "line": "1 Road"},
        "carrier": "SF",
        "tracking_number": "SF1",
        "ticket_code": "ABCDEFGH23456789",
        "created_at": NOW,
    }
    values.update(changes)
    return Order(**values)


def _event(kind: str, **changes: Any) -> OrderEvent:
    return OrderEvent(
        kind=kind,
        partner_id=changes.get("partner_id"),
        staff_id=changes.get("staff_id"),
        points=changes.get("points"),
        created_at=NOW,
    )


def mall_samples(base: dict[str, Any], admin: Staff, auditor: Staff) -> list[Sample]:
    """Every mall page, for a member and for staff who may and may not act."""
    member = {**base, "theme": "black-gold"}
    views = item_views()
    shelf = Shelf(views, ["books", "home"], "mug", "home")
    samples: list[Sample] = [
        (
            "member/mall/index.html",
            {
                **member,
                "shelf": shelf,
                "for_you": [
                    ForYou(views[0], [("points_to_go", {"points": 1200}), ("popular", {})]),
                    ForYou(views[-1], [("you_redeemed_category", {"category": "books"})]),
                ],
                "items": views,
                "available": 1200,
                "page_url": "/m/mall",
            },
            None,
        ),
        (
            "member/mall/index.html",
            {
                **base,
                "shelf": Shelf([], [], "", None),
                "for_you": [],
                "items": [],
                "available": 0,
            },
            None,
        ),
        (
            "member/mall/index.html",
            {
                **base,
                "shelf": Shelf([], ["x"], "", "x"),
                "for_you": [],
                "items": [],
                "available": 0,
            },
            None,
        ),
        ("member/mall/orders.html", {**member, "orders": order_cards()}, None),
        ("member/mall/orders.html", {**base, "orders": []}, None),
    ]
    for view in views:
        context = {
            "item": view,
            "available": 900,
            "now": NOW,
            "nonce": "n",
            "coupons": True,
            "pay_minutes": 30,
        }
        samples.append(("member/mall/item.html", {**member, **context, "form": {}}, None))
    for card in order_cards():
        samples.append(
            (
                "member/mall/order.html",
                {**member, "order": card, "nonce": "n"},
                None,
            )
        )
    row = _order()
    view = OrderView(row, "processing", ["ABC"], "SAT")
    events = [
        _event("placed"),
        _event("shipped", staff_id=1),
        _event("refunded", partner_id=2, points=100),
    ]
    order_context = {
        "view": view,
        "order": row,
        "cash": Money(1250, "CNY"),
        "events": events,
        "points_left": 200,
        "units_left": 2,
        "nonce": "n",
        "section": "mall",
    }
    everything = dict.fromkeys(
        ("can_act", "can_ship", "can_deliver", "can_cancel", "can_refund"), True
    )
    nothing = dict.fromkeys(everything, False)
    confirm = {
        "points": 100,
        "quantity": 1,
        "is_full": False,
        "form": {"quantity": "1", "points": "", "reason": "x"},
    }
    item = _item()
    digital = _item(kind=ItemKind.DIGITAL_CODE, stock=2, tier_points=None, eligible_tiers=None)
    rows = [
        ItemRow(item, None, Money(1250, "CNY"), "open"),
        ItemRow(digital, "Video <b>", None, None),
    ]
    order_rows = [
        OrderRow(row, "processing", Money(1250, "CNY")),
        OrderRow(_order(ship_by=None), "shipped", None),
    ]
    form = {"name_zh": "杯", "name_en": "Mug", "active": "yes"}
    item_context = {
        "owner": None,
        "cash": Money(1250, "CNY"),
        "sale": Sale(NOW, NOW + timedelta(hours=2), 10, 1),
        "sale_phase": "open",
        "limit": (2, LimitPeriod.MONTH),
        "categories": ["home"],
        "slots": [Slot(code="SAT", starts_at=NOW, capacity=4, taken=1)],
        "pool": None,
        "form": form,
        "edit_nonce": "n",
        "stock_nonce": "n",
        "codes_nonce": "n",
        "section": "mall",
    }
    samples += [
        (
            "console/mall/order.html",
            {**base, "staff": admin, **order_context, **everything, "confirm": None},
            None,
        ),
        (
            "console/mall/order.html",
            {**base, "staff": admin, **order_context, **everything, "confirm": confirm},
            None,
        ),
        (
            "console/mall/order.html",
            {**base, "staff": auditor, **order_context, **nothing, "confirm": None, "cash": None}
            | {"view": OrderView(_order(address=None, carrier=None), "completed", [], None)},
            None,
        ),
        (
            "console/mall/items.html",
            {**base, "staff": admin, "rows": rows, "query": "mug", "next_after": 9}
            | {"can_edit": True, "create_nonce": "n", "kinds": [kind.value for kind in ItemKind]}
            | {"plans": ["VIP88"], "form": {"code": "MUG", "kind": "plan"}, "open_form": True},
            None,
        ),
        (
            "console/mall/items.html",
            {**base, "staff": auditor, "rows": [], "query": "", "next_after": None}
            | {"can_edit": False},
            None,
        ),
        (
            "console/mall/item.html",
            {**base, "staff": admin, "item": item, **item_context, "can_edit": True},
            None,
        ),
        (
            "console/mall/item.html",
            {**base, "staff": admin, "item": digital, **item_context, "can_edit": True}
            | {"pool": 2, "sale": None, "sale_phase": None, "limit": None, "slots": []},
            None,
        ),
        (
            "console/mall/item.html",
            {**base, "staff": auditor, "item": item, **item_context, "can_edit": False},
            None,
        ),
        (
            "console/mall/orders.html",
            {**base, "staff": auditor, "rows": order_rows, "statuses": list(SUMMARY_STATUSES)}
            | {"filters": {"status": "processing", "item": "MUG", "member": "7"}}
            | {"first_url": "/console/mall/orders?status=processing", "next_url": "/next"},
            None,
        ),
        (
            "console/mall/orders.html",
            {**base, "staff": auditor, "rows": [], "statuses": list(SUMMARY_STATUSES)}
            | {"first_url": None, "next_url": None}
            | {"filters": {"status": "", "item": "", "member": ""}},
            None,
        ),
        (
            "console/mall/due.html",
            {**base, "staff": auditor, "rows": order_rows, "hours": 12, "now": NOW},
            None,
        ),
        (
            "console/mall/due.html",
            {**base, "staff": auditor, "rows": [], "hours": 6, "now": NOW},
            None,
        ),
    ]
    return samples
