"""The rewards mall's API: items and code pools (scope ``catalog``), orders (scope ``mall``).

A supplier partner manages, sees and fulfils only its own items and their orders; the
operator's channels manage all of them, and only they place orders for members (the app).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, StrictInt, StringConstraints
from sqlalchemy.orm import Session

from tally.access.domain import Caller, require_operator_channel
from tally.api import flash_sales as flash_api
from tally.api.deps import Mutation, Reader, clock_now, mutation, policy, programme, reader
from tally.api.memberships import Amount
from tally.api.paths import UUID_PATTERN, MemberId
from tally.api.schemas import Strict, strict_examples
from tally.errors import NotFound, TallyError
from tally.flows import mall_orders as flow
from tally.kit.pagination import decode_moment_cursor, encode_moment_cursor
from tally.mall import service as catalog
from tally.mall.models import Item, Slot
from tally.mall.schemas import ItemCreate, ItemUpdate
from tally.partners.service import Scope
from tally.programme.domain import CURRENCY_EXPONENTS
from tally.writer.kinds import Refusable

router = APIRouter(tags=["mall"])

ITEM_CODE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ItemCode = Annotated[str, Path(pattern=ITEM_CODE, description="The item's code.")]
OrderId = Annotated[str, Path(pattern=UUID_PATTERN, description="The order's id (a UUID).")]
Text64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text128 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]

# --- Request and response models ------------------------------------------------------------


class Address(Strict):
    name: Annotated[str, StringConstraints(max_length=100)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    line: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    city: Annotated[str, StringConstraints(max_length=100)] | None = None
    postcode: Annotated[str, StringConstraints(max_length=16)] | None = None
    country: Annotated[str, StringConstraints(max_length=2)] | None = None


class OrderCreate(Strict):
    item: Text64
    quantity: Annotated[StrictInt, Field(ge=1, le=99)] = 1
    address: Address | None = Field(default=None, description="Physical items only.")
    slot: Text64 | None = Field(default=None, description="Booking items only: the slot's code.")
    coupon: Text64 | None = Field(
        default=None,
        description="A coupon code (refused with not_available until coupons are "
        "wired to the mall).",
    )

    model_config = strict_examples(
        {
            "item": "MUG",
            "quantity": 1,
            "address": {
                "name": "王芳",
                "phone": "13800000017",
                "line": "朝阳区建国路 88 号",
                "city": "北京",
                "country": "CN",
            },
        }
    )


class PaymentCreate(Strict):
    reference: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=191)
    ]
    amount: Amount

    model_config = strict_examples(
        {
            "reference": "PAY-20261204-0001",
            "amount": {"minor_units": 9900, "currency": "CNY"},
        }
    )


class ShipRequest(Strict):
    carrier: Text64
    tracking_number: Text128

    model_config = strict_examples({"carrier": "SF", "tracking_number": "SF1403998877"})


class OrderRefund(Strict):
    quantity: Annotated[StrictInt, Field(ge=1, le=99)] | None = Field(
        default=None, description="Units to refund (restocked); absent with points: all left."
    )
    points: Annotated[StrictInt, Field(ge=1, le=10**9)] | None = Field(
        default=None, description="Points to give back (nothing restocked)."
    )
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None

    model_config = strict_examples({"quantity": 1, "reason": "One unit arrived broken"})


class CodesUpload(Strict):
    codes: list[Annotated[str, StringConstraints(min_length=1, max_length=191)]] = Field(
        min_length=1, max_length=10_000
    )

    model_config = strict_examples({"codes": ["VM-0001-7919", "VM-0002-5838"]})


class Restock(Strict):
    add: StrictInt = Field(ge=1, le=catalog.MAX_RESTOCK, description="Units to add.")

    model_config = strict_examples({"add": 50})


class CashOut(BaseModel):
    amount: str = Field(description='Decimal string, e.g. "12.00".')
    minor_units: int
    currency: str


class PriceOut(BaseModel):
    points: int
    cash: CashOut | None


class SlotOut(BaseModel):
    code: str
    starts_at: datetime
    ends_at: datetime | None
    capacity: int
    taken: int


class SaleOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    points: int
    stock: int | None
    per_member_limit: int | None


class ItemOut(BaseModel):
    code: str
    kind: str
    owner_partner_id: int | None = Field(description="The supplier; null: the operator's own.")
    names: dict[str, str]
    descriptions: dict[str, str] | None
    categories: list[str]
    images: list[str]
    price: PriceOut
    tier_prices: dict[str, int]
    stock: int | None = Field(description="Units left; null: unlimited.")
    sold: int
    per_member_limit: dict[str, Any] | None
    ship_within: str
    eligibility: dict[str, list[str]]
    exclusive: bool
    starts_at: datetime | None
    ends_at: datetime | None
    sale: SaleOut | None
    slots: list[SlotOut]
    low_water: int | None
    active: bool
    plan: str | None = Field(description="A plan item: the programme plan it sells.")
    created_at: datetime
    updated_at: datetime


class ItemList(BaseModel):
    items: list[ItemOut]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class CodesResult(BaseModel):
    added: int
    free: int


class OrderOut(BaseModel):
    id: str
    status: str = Field(
        description="awaiting_payment, processing, shipped, completed, refunded, lapsed or "
        "cancelled."
    )
    payment_status: str
    fulfilment_status: str
    member_id: int
    item: str
    kind: str
    quantity: int
    unit_points: int
    points: int = Field(description="Points the member pays (after any coupon).")
    discount_points: int
    coupon: str | None
    cash: CashOut | None
    sale: bool
    pay_by: datetime | None
    paid_at: datetime | None
    ship_by: datetime | None
    address: dict[str, Any] | None
    slot: str | None
    carrier: str | None
    tracking_number: str | None
    ticket_code: str | None
    codes: list[str]
    membership_id: str | None = Field(
        description="A plan order: the membership it pays for (it starts on payment)."
    )
    refunded_points: int
    refunded_quantity: int
    shipped_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class OrderList(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass it back as `cursor` for the next page; `null` on the last."
    )


class OrderEventOut(BaseModel):
    kind: str
    at: datetime
    partner_id: int | None
    staff_id: int | None
    payment_before: str | None
    payment_after: str
    fulfilment_before: str | None
    fulfilment_after: str
    points: int | None
    quantity: int | None
    details: dict[str, Any] | None


class OrderEventList(BaseModel):
    items: list[OrderEventOut]


def cash_out(minor_units: int | None, currency: str | None) -> CashOut | None:
    """Money as the mall shows it: a decimal string and its minor units."""
    if minor_units is None or currency is None:
        return None
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    amount = f"{Decimal(minor_units).scaleb(-exponent):.{exponent}f}"
    return CashOut(amount=amount, minor_units=minor_units, currency=currency)


def item_out(row: Item, slots: list[Slot]) -> ItemOut:
    """An item as the API shows it."""
    sale = catalog.sale_of(row)
    limit = catalog.limit_of(row)
    return ItemOut(
        code=row.code,
        kind=row.kind.value,
        owner_partner_id=row.owner_partner_id,
        names=row.names,
        descriptions=row.descriptions,
        categories=catalog.categories_of(row),
        images=list(row.images or []),
        price=PriceOut(points=row.points, cash=cash_out(row.cash_minor_units, row.cash_currency)),
        tier_prices=dict(row.tier_points or {}),
        stock=row.stock,
        sold=row.sold,
        per_member_limit={"count": limit[0], "period": limit[1].value} if limit else None,
        ship_within=row.ship_within,
        eligibility={"tiers": row.eligible_tiers or [], "plans": row.eligible_plans or []},
        exclusive=row.is_exclusive,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        sale=SaleOut(
            starts_at=sale.starts_at,
            ends_at=sale.ends_at,
            points=sale.points,
            stock=row.sale_stock,
            per_member_limit=sale.per_member_limit,
        )
        if sale
        else None,
        slots=[
            SlotOut(
                code=slot.code,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                capacity=slot.capacity,
                taken=slot.taken,
            )
            for slot in slots
        ],
        low_water=row.low_water,
        active=row.is_active,
        plan=row.plan_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def order_out(view: flow.OrderView) -> OrderOut:
    """An order as the API shows it."""
    row = view.order
    return OrderOut(
        id=str(row.id),
        status=view.status,
        payment_status=row.payment_status.value,
        fulfilment_status=row.fulfilment_status.value,
        member_id=row.member_id,
        item=row.item_code,
        kind=row.kind.value,
        quantity=row.quantity,
        unit_points=row.unit_points,
        points=row.points,
        discount_points=row.discount_points,
        coupon=row.coupon_code,
        cash=cash_out(row.cash_minor_units, row.cash_currency),
        sale=row.is_sale,
        pay_by=row.pay_by,
        paid_at=row.paid_at,
        ship_by=row.ship_by,
        address=row.address,
        slot=view.slot,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        ticket_code=row.ticket_code,
        codes=view.codes,
        membership_id=str(row.membership_id) if row.membership_id else None,
        refunded_points=row.refunded_points,
        refunded_quantity=row.refunded_quantity,
        shipped_at=row.shipped_at,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def _manager(caller: Caller) -> catalog.Manager:
    return catalog.Manager(caller.partner_id, caller.is_operator_channel)


def _actor(caller: Caller) -> flow.Actor:
    return flow.Actor(partner_id=caller.partner_id, is_operator=caller.is_operator_channel)


def _order_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Order {value} does not exist.") from None


def _one_item(session: Session, row: Item) -> ItemOut:
    return item_out(row, catalog.slots(session, [row]).get(row.id, []))


def _order_answer(session: Session, caller: Caller, order_id: uuid.UUID) -> OrderOut:
    return order_out(flow.get_order(session, _actor(caller), order_id))


ITEM_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "not_found: no such item, or another supplier's"},
    409: {"description": "conflict: the code is taken; concurrent change"},
    422: {"description": "validation_error"},
}
ORDER_ERRORS: dict[int | str, dict[str, str]] = {
    403: {"description": "forbidden; not_eligible: the member's tier or plans do not open it"},
    404: {"description": "not_found: no such member, item or order, or another supplier's"},
    409: {
        "description": "sold_out, limit_reached, sale_not_open, insufficient_points, "
        "order_refunded, invalid_transition, not_available, duplicate_reference, member_frozen"
    },
    422: {"description": "validation_error, payment_mismatch"},
}


# --- Items ----------------------------------------------------------------------------------


@router.post("/v1/mall/items", response_model=ItemOut, status_code=201, responses=ITEM_ERRORS)
async def create_item(
    payload: ItemCreate, write: Annotated[Mutation, Depends(mutation(Scope.CATALOG))]
) -> Any:
    """Add an item to the catalog: the caller's own as a supplier, or the operator's (an
    operator channel). A digital-code item starts with an empty pool: upload its codes."""

    def work(session: Session) -> tuple[int, BaseModel]:
        found = programme(write.request, session)
        row = catalog.create_item(
            session, _manager(write.holder), payload, found, clock_now(write.request)
        )
        return 201, _one_item(session, row)

    return await write.run(work)


@router.patch("/v1/mall/items/{code}", response_model=ItemOut, responses=ITEM_ERRORS)
async def update_item(
    code: ItemCode,
    payload: ItemUpdate,
    write: Annotated[Mutation, Depends(mutation(Scope.CATALOG))],
) -> Any:
    """Change an item the caller manages: each field given replaces the item's."""

    def work(session: Session) -> tuple[int, BaseModel]:
        found = programme(write.request, session)
        row = catalog.update_item(
            session, _manager(write.holder), code, payload, found, clock_now(write.request)
        )
        return 200, _one_item(session, row)

    return await write.run(work)


@router.post("/v1/mall/items/{code}/stock", response_model=ItemOut, responses=ITEM_ERRORS)
async def restock_item(
    code: ItemCode,
    payload: Restock,
    write: Annotated[Mutation, Depends(mutation(Scope.CATALOG))],
) -> Any:
    """Add units to a limited stock of goods the caller manages: an increment, so the units
    sold meanwhile stay sold (unlike `PATCH` with `stock`, which sets it). A digital-code
    item's pool grows by its codes instead."""

    def work(session: Session) -> tuple[int, BaseModel]:
        row = catalog.restock(session, _manager(write.holder), code, payload.add)
        return 200, _one_item(session, row)

    return await write.run(work)


@router.post(
    "/v1/mall/items/{code}/codes",
    response_model=CodesResult,
    status_code=201,
    responses=ITEM_ERRORS,
)
async def upload_codes(
    code: ItemCode,
    payload: CodesUpload,
    write: Annotated[Mutation, Depends(mutation(Scope.CATALOG))],
) -> Any:
    """Add codes to a digital-code item's pool (a code it has already is passed over)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        added, free = catalog.upload_codes(
            session, _manager(write.holder), code, payload.codes, clock_now(write.request)
        )
        return 201, CodesResult(added=added, free=free)

    return await write.run(work)


@router.get("/v1/mall/items", response_model=ItemList)
async def list_items(
    read: Annotated[Reader, Depends(reader(Scope.CATALOG))],
    q: Annotated[
        str | None, Query(max_length=100, description="Text in code, names, descriptions.")
    ] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ItemList:
    """The items the caller manages (all for the operator's channels), in creation order."""

    def work(session: Session, caller: Caller) -> ItemList:
        rows = catalog.list_managed(
            session, _manager(caller), text_query=q, category=category, after=after, limit=limit
        )
        slots = catalog.slots(session, rows)
        return ItemList(
            items=[item_out(row, slots.get(row.id, [])) for row in rows],
            next_after=rows[-1].id if len(rows) == limit else None,
        )

    return await read.run(work)


@router.get("/v1/mall/items/{code}", response_model=ItemOut, responses=ITEM_ERRORS)
async def get_item(
    code: ItemCode, read: Annotated[Reader, Depends(reader(Scope.CATALOG))]
) -> ItemOut:
    """One item the caller manages."""

    def work(session: Session, caller: Caller) -> ItemOut:
        return _one_item(session, catalog.managed_item(session, _manager(caller), code))

    return await read.run(work)


# --- Orders ---------------------------------------------------------------------------------


@router.post(
    "/v1/members/{member_id}/orders",
    response_model=OrderOut,
    status_code=201,
    responses=ORDER_ERRORS,
)
async def place_order(
    member_id: MemberId,
    payload: OrderCreate,
    write: Annotated[Mutation, Depends(mutation(Scope.MALL))],
) -> Any:
    """Place an order for a member (the operator's channels: the app): stock reserved and
    points held in one transaction; a points-only order is paid at once, a points-plus-cash
    order waits for `POST /v1/orders/{id}/payments` until `pay_by`."""

    def work(session: Session) -> tuple[int, BaseModel]:
        require_operator_channel(write.holder, "place mall orders for members")
        request = flow.OrderRequest(
            item=payload.item,
            quantity=payload.quantity,
            address=payload.address.model_dump(exclude_none=True) if payload.address else None,
            slot=payload.slot,
            coupon=payload.coupon,
        )
        row = flow.place_order(
            session,
            _actor(write.holder),
            member_id,
            request,
            programme(write.request, session),
            policy(write.request),
            clock_now(write.request),
        )
        return 201, _order_answer(session, write.holder, row.id)

    # Flash sales (ADR 29): a hot item's sure refusals are answered reading only, and its
    # orders are posted as refusable units (a refusal answered in its batch).
    refused = await flash_api.quick_refusal(write, member_id, payload.item, payload.quantity)
    if refused is not None:
        raise refused
    try:
        return await write.post_in_line(f"mall-item:{payload.item}", Refusable(work))
    except TallyError as error:
        flash_api.note_refusal(payload.item, error)
        raise


@router.post(
    "/v1/orders/{order_id}/payments",
    response_model=OrderOut,
    status_code=201,
    responses={
        200: {"model": OrderOut, "description": "This reference was confirmed before."},
        **ORDER_ERRORS,
    },
)
async def confirm_payment(
    order_id: OrderId,
    payload: PaymentCreate,
    write: Annotated[Mutation, Depends(mutation(Scope.MALL))],
) -> Any:
    """The payment partner confirms the cash part of an order (exactly its amount); the same
    reference again answers the order unchanged."""

    def work(session: Session) -> tuple[int, BaseModel]:
        row, created = flow.pay(
            session,
            _actor(write.holder),
            _order_id(order_id),
            payload.reference,
            payload.amount.money,
            clock_now(write.request),
            policy(write.request),
        )
        return (201 if created else 200), _order_answer(session, write.holder, row.id)

    return await write.run(work)


@router.post("/v1/orders/{order_id}/ship", response_model=OrderOut, responses=ORDER_ERRORS)
async def ship_order(
    order_id: OrderId,
    payload: ShipRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.MALL))],
) -> Any:
    """Ship a paid physical order (its supplier, or the operator): refused `order_refunded`
    once refunded, automatically or not."""

    def work(session: Session) -> tuple[int, BaseModel]:
        row = flow.ship(
            session,
            _actor(write.holder),
            _order_id(order_id),
            payload.carrier,
            payload.tracking_number,
            clock_now(write.request),
        )
        return 200, _order_answer(session, write.holder, row.id)

    return await write.run(work)


async def _deliver(order_id: str, write: Mutation) -> Any:
    def work(session: Session) -> tuple[int, BaseModel]:
        row = flow.deliver(
            session, _actor(write.holder), _order_id(order_id), clock_now(write.request)
        )
        return 200, _order_answer(session, write.holder, row.id)

    return await write.run(work)


@router.post("/v1/orders/{order_id}/deliver", response_model=OrderOut, responses=ORDER_ERRORS)
async def deliver_order(
    order_id: OrderId, write: Annotated[Mutation, Depends(mutation(Scope.MALL))]
) -> Any:
    """A shipped order arrived, or a partner benefit was fulfilled by its supplier."""
    return await _deliver(order_id, write)


@router.post("/v1/orders/{order_id}/fulfilment", response_model=OrderOut, responses=ORDER_ERRORS)
async def confirm_fulfilment(
    order_id: OrderId, write: Annotated[Mutation, Depends(mutation(Scope.MALL))]
) -> Any:
    """The supplier's confirmation callback for a partner benefit it was asked to fulfil
    (`order.fulfilment_requested`): the order is delivered."""
    return await _deliver(order_id, write)


@router.post("/v1/orders/{order_id}/cancel", response_model=OrderOut, responses=ORDER_ERRORS)
async def cancel_order(
    order_id: OrderId, write: Annotated[Mutation, Depends(mutation(Scope.MALL))]
) -> Any:
    """Cancel an order not fulfilled yet: points and stock back (refunded in full if paid)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        row = flow.cancel(
            session,
            _actor(write.holder),
            _order_id(order_id),
            clock_now(write.request),
            policy(write.request),
        )
        return 200, _order_answer(session, write.holder, row.id)

    return await write.run(work)


@router.post("/v1/orders/{order_id}/refund", response_model=OrderOut, responses=ORDER_ERRORS)
async def refund_order(
    order_id: OrderId,
    write: Annotated[Mutation, Depends(mutation(Scope.MALL))],
    payload: OrderRefund | None = None,
) -> Any:
    """Refund a paid order, all of it (no body) or part: `quantity` units (their points back,
    restocked) or `points`."""

    def work(session: Session) -> tuple[int, BaseModel]:
        body = payload or OrderRefund()
        row = flow.refund(
            session,
            _actor(write.holder),
            _order_id(order_id),
            clock_now(write.request),
            policy(write.request),
            quantity=body.quantity,
            points=body.points,
            reason=body.reason,
        )
        return 200, _order_answer(session, write.holder, row.id)

    return await write.run(work)


@router.get("/v1/orders/{order_id}", response_model=OrderOut, responses=ORDER_ERRORS)
async def get_order(
    order_id: OrderId, read: Annotated[Reader, Depends(reader(Scope.MALL))]
) -> OrderOut:
    """One order (another supplier's is not found)."""

    def work(session: Session, caller: Caller) -> OrderOut:
        return _order_answer(session, caller, _order_id(order_id))

    return await read.run(work)


@router.get("/v1/orders/{order_id}/events", response_model=OrderEventList, responses=ORDER_ERRORS)
async def get_order_events(
    order_id: OrderId, read: Annotated[Reader, Depends(reader(Scope.MALL))]
) -> OrderEventList:
    """Every change of an order, oldest first."""

    def work(session: Session, caller: Caller) -> OrderEventList:
        events = flow.order_events(session, _actor(caller), _order_id(order_id))
        return OrderEventList(
            items=[
                OrderEventOut(
                    kind=event.kind,
                    at=event.created_at,
                    partner_id=event.partner_id,
                    staff_id=event.staff_id,
                    payment_before=event.payment_before,
                    payment_after=event.payment_after,
                    fulfilment_before=event.fulfilment_before,
                    fulfilment_after=event.fulfilment_after,
                    points=event.points,
                    quantity=event.quantity,
                    details=event.details,
                )
                for event in events
            ]
        )

    return await read.run(work)


OrderCursor = Annotated[
    str | None,
    Query(max_length=100, description="A `next_cursor` as it came; anything else is refused."),
]
OrderLimit = Annotated[int, Query(ge=1, le=200)]
OrderStatus = Annotated[
    str | None,
    Query(
        max_length=32,
        description="awaiting_payment, processing, shipped, completed, refunded, lapsed or "
        "cancelled.",
    ),
]


def _order_page(page: flow.OrderPage) -> OrderList:
    return OrderList(
        items=[order_out(view) for view in page.orders],
        next_cursor=encode_moment_cursor(*page.next) if page.next is not None else None,
    )


@router.get("/v1/orders", response_model=OrderList, responses=ORDER_ERRORS)
async def list_orders(
    read: Annotated[Reader, Depends(reader(Scope.MALL))],
    status: OrderStatus = None,
    member_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    item: Annotated[
        str | None, Query(pattern=ITEM_CODE, description="One item's orders (its code).")
    ] = None,
    cursor: OrderCursor = None,
    limit: OrderLimit = 50,
) -> OrderList:
    """The orders the caller manages, newest first (a supplier: its own items' orders, the ones
    to ship; the operator's channels: every order), filtered by status, member and item."""
    before = decode_moment_cursor(cursor) if cursor else None

    def work(session: Session, caller: Caller) -> OrderList:
        found = flow.list_orders(
            session,
            _actor(caller),
            member_id=member_id,
            item_code=item,
            status=status,
            before=before,
            limit=limit,
        )
        return _order_page(found)

    return await read.run(work)


@router.get("/v1/members/{member_id}/orders", response_model=OrderList, responses=ORDER_ERRORS)
async def list_member_orders(
    member_id: MemberId,
    read: Annotated[Reader, Depends(reader(Scope.MALL))],
    status: OrderStatus = None,
    cursor: OrderCursor = None,
    limit: OrderLimit = 50,
) -> OrderList:
    """A member's orders, newest first: of the supplier's own items for a supplier."""
    before = decode_moment_cursor(cursor) if cursor else None

    def work(session: Session, caller: Caller) -> OrderList:
        found = flow.list_orders(
            session, _actor(caller), member_id=member_id, status=status, before=before, limit=limit
        )
        return _order_page(found)

    return await read.run(work)
