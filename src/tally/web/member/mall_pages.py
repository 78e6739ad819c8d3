"""The member mall (``/m/mall``): browse and search, an item with its price, stock, limit,
eligibility and flash-sale countdown, buy once per form, and the member's orders with their
status, tracking, codes, timeline and the 48-hour promise; cancel where allowed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, policy
from tally.errors import InsufficientPoints, NotFound, TallyError, ValidationFailed
from tally.flows import mall_coupons
from tally.flows import mall_orders as flow
from tally.kit import text as text_rule
from tally.ledger import service as ledger
from tally.mall import repository
from tally.mall import service as catalog
from tally.mall.domain import PAYMENT_WINDOW_SECONDS
from tally.mall.models import Order
from tally.mall.schemas import CODE_PATTERN
from tally.web import sessions, tier_views
from tally.web.console import once
from tally.web.errors import csrf_rejected, message_for
from tally.web.http import gettext, programme_in_force, redirect, render
from tally.web.i18n import N_
from tally.web.member import auth, mall_once, mall_views
from tally.web.sessions import Flash

router = APIRouter(prefix="/m/mall", include_in_schema=False)
ItemCode = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]
OrderId = Annotated[uuid.UUID, Path()]
Field = Annotated[str, Form(max_length=300)]
#: The address fields of a physical item's buy form, with their longest values.
ADDRESS_FIELDS = {"name": 100, "phone": 32, "line": 300, "city": 100, "postcode": 16}

#: What a refusal tells the member, by error code (``insufficient_points`` says how many).
REFUSALS: dict[str, str] = {
    "sold_out": N_("Sorry, this item is sold out."),
    "limit_reached": N_(
        "You have reached the limit for this item: %(limit)s, and you have bought %(bought)s."
    ),
    "sale_not_open": N_("This item is not on sale right now."),
    "not_eligible": N_("This item is not available to your membership."),
    "not_available": N_("Coupons cannot be used in the mall yet."),
    "member_frozen": N_("Your account is paused. Please contact customer service."),
}
MISSING = N_("You need %(missing)s more points for this order (you have %(available)s).")
#: What a refused field tells the member.
FIELDS: dict[str, str] = {
    "quantity": N_("Choose a quantity the item allows."),
    "address": N_("Give the address to ship to (at least the street address)."),
    "slot": N_("Choose a time slot."),
    "coupon": N_("That coupon code is not valid."),
    "nonce": N_("This form has expired. Reload the page and try again."),
}
PLACED = N_("Thank you! Your order is placed.")
AWAITING = N_("Your order is reserved. Pay the cash part to complete it.")
ALREADY = N_("This form was already sent; here is the order it placed.")
CANCELLED = N_("Your order is cancelled. Its points are back.")
CANCELLED_BEFORE = N_("This order was already cancelled.")


def _context(request: Request, member_id: int, session: Session) -> dict[str, Any]:
    programme = programme_in_force(request, session)
    return {
        "theme": tier_views.theme_of(session, member_id, programme),
        "csrf": auth.member_session(request).csrf_token(),
    }


@router.get("")
def browse(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_-]*$")] = None,
    after: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The mall: its items (searched by text, browsed by category) as the member sees them."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    at = sessions.now(request)
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        standing = flow.standing_of(session, member_id, programme, at)
        shelf = mall_views.shelf(
            session,
            member_id,
            standing,
            programme,
            at,
            query=q,
            category=category or None,
            after=after,
        )
        front = not (q.strip() or category or after)
        for_you = mall_views.for_you(session, member_id, standing, programme, at) if front else []
        context = _context(request, member_id, session)
        balance = ledger.balance(session, member_id, at, programme.zone).available
    context.update(
        shelf=shelf,
        for_you=for_you,
        items=mall_views.front_page_items(shelf),
        available=balance,
        page_url="/m/mall",
        flashes=auth.member_session(request).pop_flashes(),
    )
    return render(request, "member/mall/index.html", context)


def _item_page(
    request: Request,
    member_id: int,
    code: str,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
    nonce: str | None = None,
) -> Response:
    at = sessions.now(request)
    with database(request).read() as session:
        row = repository.item_by_code(session, code)
        if row is None or not row.is_active:
            raise NotFound(f"Item {code} does not exist.")
        programme = programme_in_force(request, session)
        standing = flow.standing_of(session, member_id, programme, at)
        if row.is_exclusive and not standing.tier_is_exclusive:
            raise NotFound(f"Item {code} does not exist.")
        slots = catalog.slots(session, [row]).get(row.id, [])
        item = mall_views.item_view(session, row, slots, member_id, standing, programme, at)
        context = _context(request, member_id, session)
        balance = ledger.balance(session, member_id, at, programme.zone).available
    browser = auth.member_session(request)
    context.update(
        item=item,
        available=balance,
        now=at,
        nonce=nonce or mall_once.issue(request, mall_once.BUY_FORM),
        coupons=mall_coupons.discounts_wired(),
        pay_minutes=PAYMENT_WINDOW_SECONDS // 60,
        form=dict(form or {}),
        flashes=browser.pop_flashes() + (flashes or []),
        page_url=f"/m/mall/items/{code}",
    )
    return render(request, "member/mall/item.html", context, status=status)


@router.get("/items/{code}")
def show_item(request: Request, code: ItemCode) -> Response:
    """One item: description, price, stock, limit, eligibility, sale countdown, buy form."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    return _item_page(request, member_id, code)


def _address(form: Mapping[str, str]) -> dict[str, str] | None:
    """The address typed (``None`` when every field is empty); the street line is required
    once anything is typed, each field within its length and free of control characters."""
    given = {key: form.get(f"address_{key}", "").strip() for key in ADDRESS_FIELDS}
    if not any(given.values()):
        return None
    for key, longest in ADDRESS_FIELDS.items():
        value = given[key]
        if len(value) > longest or text_rule.unsafe_character(value) is not None:
            raise ValidationFailed(f"address.{key} is not valid.", field="address")
    if not given["line"]:
        raise ValidationFailed("The street address is required.", field="address")
    return {key: value for key, value in given.items() if value}


def _request(code: str, form: Mapping[str, str]) -> flow.OrderRequest:
    quantity = form.get("quantity", "1").strip() or "1"
    if not quantity.isdigit():
        raise ValidationFailed("quantity must be a whole number.", field="quantity")
    coupon = form.get("coupon", "").strip() or None
    if coupon is not None and (len(coupon) > 64 or text_rule.unsafe_character(coupon)):
        raise ValidationFailed("The coupon code is not valid.", field="coupon")
    return flow.OrderRequest(
        item=code,
        quantity=int(quantity),
        address=_address(form),
        slot=form.get("slot", "").strip() or None,
        coupon=coupon,
    )


def _refusal(request: Request, error: TallyError, member_id: int, code: str, quantity: int) -> str:
    """The message of a refused order, in the member's words."""
    if isinstance(error, InsufficientPoints):
        at = sessions.now(request)
        with database(request).read() as session:
            programme = programme_in_force(request, session)
            standing = flow.standing_of(session, member_id, programme, at)
            row = repository.item_by_code(session, code)
            available = ledger.balance(session, member_id, at, programme.zone).available
            needed = 0
            if row is not None:
                view = mall_views.item_view(session, row, [], member_id, standing, programme, at)
                needed = view.unit_points * quantity
        missing, have = format(max(needed - available, 1), ","), format(available, ",")
        return gettext(request, MISSING, missing=missing, available=have)
    field = error.extra.get("field")
    if error.code == "validation_error" and field in FIELDS:
        return gettext(request, FIELDS[str(field)])
    if error.code == "limit_reached":
        return gettext(
            request,
            REFUSALS["limit_reached"],
            limit=error.extra.get("limit", "?"),
            bought=error.extra.get("bought", "?"),
        )
    if error.code in REFUSALS:
        return gettext(request, REFUSALS[error.code])
    return message_for(request, error)


@router.post("/items/{code}/order")
async def buy(request: Request, code: ItemCode) -> Response:
    """Place an order for the item, once per form: a points-only order is paid at once; a
    points-plus-cash order waits for its payment. A refusal shows the item again, saying why."""
    raw = await request.form()
    form = {key: value for key, value in raw.items() if isinstance(value, str)}
    browser = auth.member_session(request)
    if not browser.csrf_matches(form.get("csrf", "")):
        raise csrf_rejected()
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    kept = {key: value[:300] for key, value in form.items() if key not in ("csrf", "nonce")}
    nonce = form.get("nonce", "")
    quantity = 1
    try:
        submitted = mall_once.checked(request, member_id, mall_once.BUY_FORM, nonce)
        wanted = _request(code, form)
        quantity = wanted.quantity

        def work(session: Session) -> tuple[Order, dict[str, object]]:
            placed = flow.place_order(
                session,
                mall_views.MEMBER_ACTOR,
                member_id,
                wanted,
                programme_in_force(request, session),
                policy(request),
                sessions.now(request),
            )
            return placed, {"order": str(placed.id)}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        message = _refusal(request, error, member_id, code, quantity)
        reuse = nonce if error.extra.get("field") != mall_once.FIELD else None
        return _item_page(
            request,
            member_id,
            code,
            status=error.status,
            flashes=[Flash("error", message)],
            form=kept,
            nonce=reuse,
        )
    if isinstance(outcome, once.Done):
        browser.flash("info", gettext(request, ALREADY))
        order = str(outcome.answer.get("order", ""))
        return redirect(request, f"/m/mall/orders/{order}" if order else "/m/mall/orders")
    pending = outcome.payment_status.value == "pending"
    browser.flash("success", gettext(request, AWAITING if pending else PLACED))
    return redirect(request, f"/m/mall/orders/{outcome.id}")


@router.get("/orders")
def my_orders(request: Request) -> Response:
    """The member's orders, newest first."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    with database(request).read() as session:
        orders = mall_views.orders_of(session, member_id)
        context = _context(request, member_id, session)
    context.update(
        orders=orders,
        page_url="/m/mall/orders",
        flashes=auth.member_session(request).pop_flashes(),
    )
    return render(request, "member/mall/orders.html", context)


def _order_page(
    request: Request,
    member_id: int,
    order_id: uuid.UUID,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
) -> Response:
    with database(request).read() as session:
        order = mall_views.order_of(session, member_id, order_id)
        if order is None:
            raise NotFound(f"Order {order_id} does not exist.")
        context = _context(request, member_id, session)
    context.update(
        order=order,
        nonce=mall_once.issue(request, mall_once.CANCEL_FORM) if order.can_cancel else "",
        page_url=f"/m/mall/orders/{order_id}",
        flashes=auth.member_session(request).pop_flashes() + (flashes or []),
    )
    return render(request, "member/mall/order.html", context, status=status)


@router.get("/orders/{order_id}")
def show_order(request: Request, order_id: OrderId) -> Response:
    """One of the member's orders: statuses, tracking, codes, the timeline, the promise."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    return _order_page(request, member_id, order_id)


@router.post("/orders/{order_id}/cancel")
def cancel(request: Request, order_id: OrderId, csrf: Field = "", nonce: Field = "") -> Response:
    """Cancel one of the member's orders not fulfilled yet (its points come back), once."""
    browser = auth.member_session(request)
    if not browser.csrf_matches(csrf):
        raise csrf_rejected()
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    with database(request).read() as session:
        if mall_views.order_of(session, member_id, order_id) is None:
            raise NotFound(f"Order {order_id} does not exist.")
    try:
        submitted = mall_once.checked(request, member_id, mall_once.CANCEL_FORM, nonce)

        def work(session: Session) -> tuple[Order, dict[str, object]]:
            done = flow.cancel(
                session,
                mall_views.MEMBER_ACTOR,
                order_id,
                sessions.now(request),
                policy(request),
            )
            return done, {"order": str(order_id)}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        message = _refusal(request, error, member_id, "", 1)
        return _order_page(
            request, member_id, order_id, status=error.status, flashes=[Flash("error", message)]
        )
    browser.flash(
        "info" if isinstance(outcome, once.Done) else "success",
        gettext(request, CANCELLED_BEFORE if isinstance(outcome, once.Done) else CANCELLED),
    )
    return redirect(request, f"/m/mall/orders/{order_id}")
