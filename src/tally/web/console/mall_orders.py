"""The console's mall orders: the list filtered by status, item and member; the orders coming
up to their ship deadline (the 48-hour promise); one order with its events and the forms to
ship, deliver, cancel and refund it (full or part, after a confirmation). Every staff member
sees them (an order's page, which shows the member's address, is audited); the actions need
the ``mall`` permission, run once per form and are audited in their own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, policy
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.flows import mall_orders as flow
from tally.kit.pagination import decode_moment_cursor, encode_moment_cursor
from tally.mall import domain, repository
from tally.mall.domain import Action, ItemKind
from tally.mall.models import Order
from tally.programme.domain import Money
from tally.staff.service import Permission
from tally.web.console import once
from tally.web.console.auth import Staff, record, record_view, require
from tally.web.console.mall_items import problem
from tally.web.console.pages import flash, page
from tally.web.http import redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, now

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Keeper = Annotated[Staff, Depends(require(Permission.MALL))]
OrderId = Annotated[uuid.UUID, Path()]
Text = Annotated[str, Form(max_length=200)]
FORM = "mall-order"  # the purpose of every action form of an order's page
LIST_SIZE = 200
#: The "due" view looks this many hours ahead by default (and at most a week).
DUE_HOURS = 12
MAX_DUE_HOURS = 7 * 24
ORDER_VIEW = "mall.order_view"
ORDER_ACTION = "mall.order_{}"  # ship, deliver, cancel, refund


@dataclass(frozen=True, slots=True)
class OrderRow:
    order: Order
    status: str
    cash: Money | None


def _cash(row: Order) -> Money | None:
    if row.cash_minor_units is None or row.cash_currency is None:
        return None
    return Money(row.cash_minor_units, row.cash_currency)


def _rows(orders: list[Order]) -> list[OrderRow]:
    return [OrderRow(row, domain.summary(flow.state_of(row)), _cash(row)) for row in orders]


def _member(text: str) -> int | None:
    cleaned = text.strip().lstrip("#")
    if not cleaned:
        return None
    if not cleaned.isdigit() or not 0 < int(cleaned) <= 2**62:
        raise ValidationFailed("A member is given by its Tally id.", field="member_id")
    return int(cleaned)


@router.get("/mall/orders")
def orders_page(
    request: Request,
    staff: Viewer,
    status: Annotated[str, Query(max_length=32)] = "",
    item: Annotated[str, Query(max_length=64)] = "",
    member: Annotated[str, Query(max_length=24)] = "",
    cursor: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The orders newest first, :data:`LIST_SIZE` a page, filtered by status, item code and
    member id."""
    flashes: list[Flash] = []
    found = flow.OrderPage([], None)
    filters = {"status": status, "item": item.strip(), "member": member.strip()}
    try:
        member_id = _member(member)
        before = decode_moment_cursor(cursor) if cursor else None
        with database(request).read() as session:
            found = flow.list_orders(
                session,
                _actor(staff),
                member_id=member_id,
                item_code=filters["item"] or None,
                status=status if status in domain.SUMMARY_STATUSES else None,
                before=before,
                limit=LIST_SIZE,
            )
    except TallyError as error:
        flashes.append(problem(request, error))
    shown = {key: value for key, value in filters.items() if value}
    context = {
        "rows": [OrderRow(view.order, view.status, _cash(view.order)) for view in found.orders],
        "filters": filters,
        "statuses": list(domain.SUMMARY_STATUSES),
        "first_url": f"/console/mall/orders?{urlencode(shown)}" if cursor else None,
        "next_url": (
            None
            if found.next is None
            else "/console/mall/orders?"
            + urlencode({**shown, "cursor": encode_moment_cursor(*found.next)})
        ),
        "section": "mall",
        "page_url": "/console/mall/orders",
    }
    return page(request, "console/mall/orders.html", staff, context, flashes=flashes)


@router.get("/mall/orders/due")
def due_page(
    request: Request,
    staff: Viewer,
    hours: Annotated[int, Query(ge=1, le=MAX_DUE_HOURS)] = DUE_HOURS,
) -> Response:
    """Paid orders not shipped (nor confirmed) whose ship deadline falls within ``hours``
    (those past it first): the 48-hour job refunds them at their deadline."""
    at = now(request)
    with database(request).read() as session:
        ids = repository.due_refunds(session, at + timedelta(hours=hours), LIST_SIZE)
        orders = [found for found in (repository.order(session, key) for key in ids) if found]
    context = {
        "rows": _rows(orders),
        "hours": hours,
        "now": at,
        "section": "mall",
        "page_url": "/console/mall/orders/due",
    }
    return page(request, "console/mall/due.html", staff, context)


def _url(order_id: uuid.UUID) -> str:
    return f"/console/mall/orders/{order_id}"


def order_page(
    request: Request,
    staff: Staff,
    order_id: uuid.UUID,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    confirm: Mapping[str, Any] | None = None,
    nonce: str | None = None,
) -> Response:
    """One order: its statuses, the member, what it delivered, its events and its forms."""
    actor = _actor(staff)
    with database(request).read() as session:
        try:
            view = flow.get_order(session, actor, order_id)
        except NotFound:
            raise NotFound(f"Order {order_id} does not exist.") from None
        events = flow.order_events(session, actor, order_id)
    row = view.order
    state = flow.state_of(row)
    can_act = staff.can(Permission.MALL)
    context = {
        "view": view,
        "order": row,
        "cash": _cash(row),
        "events": events,
        "can_act": can_act,
        "can_ship": can_act
        and row.kind is ItemKind.PHYSICAL
        and domain.allowed(state, Action.SHIP) is not None,
        "can_deliver": can_act
        and (
            (row.kind is ItemKind.PHYSICAL and domain.allowed(state, Action.DELIVER) is not None)
            or (
                row.kind is ItemKind.PARTNER_BENEFIT
                and domain.allowed(state, Action.CONFIRM) is not None
            )
        ),
        "can_cancel": can_act and domain.allowed(state, Action.CANCEL) is not None,
        "can_refund": can_act and domain.allowed(state, Action.PART_REFUND) is not None,
        "points_left": row.points - row.refunded_points,
        "units_left": row.quantity - row.refunded_quantity,
        "confirm": confirm,
        "nonce": nonce or (once.issue(request, FORM) if can_act else ""),
        "section": "mall",
        "page_url": _url(order_id),
    }
    return page(request, "console/mall/order.html", staff, context, status=status, flashes=flashes)


def _actor(staff: Staff) -> flow.Actor:
    return flow.Actor(staff_id=staff.id, is_operator=True, channel=flow.CONSOLE)


@router.get("/mall/orders/{order_id}")
def show_order(request: Request, staff: Viewer, order_id: OrderId) -> Response:
    """One order (audited: it shows the member's address)."""
    response = order_page(request, staff, order_id)
    with database(request).read() as session:
        row = repository.order(session, order_id)
    record_view(
        request,
        staff,
        ORDER_VIEW,
        member_id=row.member_id if row else None,
        details={"order": str(order_id)},
    )
    return response


def _act(
    request: Request,
    staff: Staff,
    order_id: uuid.UUID,
    nonce: str,
    name: str,
    change: Callable[[Session], Order],
    message: str,
    details: Mapping[str, object] | None = None,
) -> Response:
    """Run one action of an order's page once per form, audited in its transaction."""

    def work(session: Session) -> tuple[Order, dict[str, object]]:
        row = change(session)
        record(
            request,
            session,
            staff,
            ORDER_ACTION.format(name),
            member_id=row.member_id,
            details={"order": str(order_id), **(details or {})},
        )
        return row, {"order": str(order_id), "action": name}

    try:
        submitted = once.checked(request, staff, FORM, nonce)
        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        return order_page(
            request, staff, order_id, status=error.status, flashes=[problem(request, error)]
        )
    if isinstance(outcome, once.Done):
        flash(request, "info", N_("This form was already sent; nothing was repeated."))
    else:
        flash(request, "success", message)
    return redirect(request, _url(order_id))


def _text(value: str, field: str, longest: int) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > longest:
        raise ValidationFailed(f"{field} is 1 to {longest} characters.", field=field)
    return cleaned


@router.post("/mall/orders/{order_id}/ship")
def ship(
    request: Request,
    staff: Keeper,
    order_id: OrderId,
    nonce: Text = "",
    carrier: Text = "",
    tracking_number: Text = "",
) -> Response:
    """Ship a paid physical order with its carrier and tracking number."""

    def change(session: Session) -> Order:
        return flow.ship(
            session,
            _actor(staff),
            order_id,
            _text(carrier, "carrier", 64),
            _text(tracking_number, "tracking_number", 128),
            now(request),
        )

    return _act(
        request,
        staff,
        order_id,
        nonce,
        "ship",
        change,
        N_("The order is shipped."),
        {"carrier": carrier.strip(), "tracking_number": tracking_number.strip()},
    )


@router.post("/mall/orders/{order_id}/deliver")
def deliver(request: Request, staff: Keeper, order_id: OrderId, nonce: Text = "") -> Response:
    """Mark a shipped order delivered (or a partner benefit fulfilled)."""

    def change(session: Session) -> Order:
        return flow.deliver(session, _actor(staff), order_id, now(request))

    return _act(
        request, staff, order_id, nonce, "deliver", change, N_("The order is marked delivered.")
    )


@router.post("/mall/orders/{order_id}/cancel")
def cancel(request: Request, staff: Keeper, order_id: OrderId, nonce: Text = "") -> Response:
    """Cancel an order not fulfilled yet: its points and stock go back."""

    def change(session: Session) -> Order:
        return flow.cancel(session, _actor(staff), order_id, now(request), policy(request))

    return _act(request, staff, order_id, nonce, "cancel", change, N_("The order is cancelled."))


def _refund_amount(quantity: str, points: str) -> tuple[int | None, int | None]:
    """``(units, points)`` of a refund form: one of them, or neither for all that is left."""
    values: list[int | None] = []
    for field, text in (("quantity", quantity), ("points", points)):
        cleaned = text.strip().replace(",", "")
        if cleaned and not cleaned.isdigit():
            raise ValidationFailed(f"{field} must be a whole number.", field=field)
        values.append(int(cleaned) if cleaned else None)
    return values[0], values[1]


@router.post("/mall/orders/{order_id}/refund")
def refund(
    request: Request,
    staff: Keeper,
    order_id: OrderId,
    nonce: Text = "",
    quantity: Text = "",
    points: Text = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    confirm: Text = "",
) -> Response:
    """Refund the order in full (neither field), by units (restocked) or by points, after the
    page asked to confirm what is given back."""
    try:
        units, amount = _refund_amount(quantity, points)
        why = reason.strip() or None
        if units is not None and amount is not None:
            raise ValidationFailed(
                "Refund either a quantity or points, not both.", field="quantity"
            )
        with database(request).read() as session:
            row = repository.order(session, order_id)
            if row is None:
                raise NotFound(f"Order {order_id} does not exist.")
            plan = domain.plan_refund(
                row.points, row.refunded_points, row.quantity, row.refunded_quantity, amount, units
            )
    except TallyError as error:
        return order_page(
            request, staff, order_id, status=error.status, flashes=[problem(request, error)]
        )
    if confirm != "yes":
        asked = {
            "points": plan.points,
            "quantity": plan.quantity,
            "is_full": plan.is_full,
            "form": {"quantity": quantity, "points": points, "reason": reason},
        }
        return order_page(request, staff, order_id, confirm=asked, nonce=nonce)

    def change(session: Session) -> Order:
        return flow.refund(
            session,
            _actor(staff),
            order_id,
            now(request),
            policy(request),
            quantity=units,
            points=amount,
            reason=why,
        )

    return _act(
        request,
        staff,
        order_id,
        nonce,
        "refund",
        change,
        N_("The refund is made: its points are back with the member."),
        {"points": plan.points, "quantity": plan.quantity, "reason": why},
    )
