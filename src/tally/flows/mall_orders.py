"""Mall orders: place one, confirm its cash payment, fulfil, ship, deliver, cancel, refund.
Never commits: each use case is one transaction of its caller (ADR 26).

Placing an order checks the item's window and the member's eligibility, counts the units
against the per-member limit (a conditional upsert), takes the stock (a conditional update, so
it is never oversold), and holds the points through the ledger — all in one transaction, so a
refusal anywhere (``insufficient_points`` included) leaves nothing written. A points-only order
is captured at once; a points-plus-cash order waits for its payment until ``pay_by``.
Every change of an order goes through :func:`tally.mall.domain.transition`, is recorded as an
order event and told to the outbox.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tally.auctions.service import AuctionResult
from tally.errors import (
    ConcurrentChange,
    Conflict,
    DuplicateReference,
    InvalidTransition,
    NotEligible,
    NotFound,
    PaymentMismatch,
    SaleNotOpen,
    SoldOut,
    ValidationFailed,
)
from tally.errors import LimitReached as LimitReachedError
from tally.flows import mall_coupons, mall_plans
from tally.kit.ids import uuid7
from tally.ledger import holds, orders, reversals
from tally.ledger.domain import Origin, Policy, partner_redeemed
from tally.ledger.models import EntryKind
from tally.ledger.releases import lapse_due
from tally.mall import domain, repository
from tally.mall import service as catalog
from tally.mall.domain import (
    AWAITING_FULFILMENT,
    DELIVERED_ON_PAYMENT,
    Action,
    FulfilmentStatus,
    ItemKind,
    PaymentStatus,
    State,
)
from tally.mall.models import Item, Order
from tally.members import service as members
from tally.memberships import service as memberships
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType
from tally.partners import service as partners
from tally.programme.domain import Money, Programme
from tally.tiers import service as tiers

API = "api"
MEMBER_PAGES = "member_pages"
CONSOLE = "console"
SYSTEM = "system"
AUCTION = "auction"  # the channel of the order a sold auction makes


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on orders: a partner (an operator channel, ``is_operator``, or a supplier), a
    staff member (the operator), the member on the member pages, or the system (jobs)."""

    partner_id: int | None = None
    staff_id: int | None = None
    is_operator: bool = False
    channel: str = API

    @property
    def manager(self) -> catalog.Manager:
        return catalog.Manager(self.partner_id, self.is_operator, self.staff_id)

    def manages(self, order: Order) -> bool:
        """The operator manages every order, a supplier its own items' orders."""
        return self.is_operator or (
            order.owner_partner_id is not None and order.owner_partner_id == self.partner_id
        )


#: The most orders of a member one answer lists without a cursor (the member pages' list).
MEMBER_ORDERS = 200
#: The jobs (lapses, the 48-hour refunds) act as the system.
SYSTEM_ACTOR = Actor(is_operator=True, channel=SYSTEM)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a member orders (the issue's ``{"item", "quantity", "address"?, "slot"?,
    "coupon"?}``)."""

    item: str
    quantity: int = 1
    address: dict[str, Any] | None = None
    slot: str | None = None
    coupon: str | None = None


@dataclass(frozen=True, slots=True)
class Standing:
    """What a member's eligibility is decided by: its tier and its paid plans in force."""

    tier_code: str
    tier_is_exclusive: bool
    plans: frozenset[str] = field(default_factory=frozenset)


def standing_of(session: Session, member_id: int, programme: Programme, now: datetime) -> Standing:
    """The member's tier and the paid plans it has now."""
    tier = tiers.current_tier(session, member_id, programme)
    plans = frozenset(
        item.plan_code for item in memberships.active_memberships(session, member_id, now)
    )
    return Standing(tier.code, tier.flags.mall_exclusive, plans)


def _origin(order: Order) -> Origin:
    return Origin(partner_id=order.accepting_partner_id)


def state_of(order: Order) -> State:
    return State(order.payment_status, order.fulfilment_status)


def _accepting_partner(session: Session, item: Item, actor: Actor, programme: Programme) -> int:
    """The ledger partner the points go to: the supplier of its item, else the operator's
    channel that placed the order, else (the member pages) the operator's first channel."""
    if item.owner_partner_id is not None:
        return item.owner_partner_id
    if actor.partner_id is not None and actor.is_operator:
        return actor.partner_id
    channel = next((spec for spec in programme.partners if spec.operator_channel), None)
    if channel is None:
        raise Conflict("The programme has no operator channel to accept the mall's points.")
    return partners.partner_by_code(session, channel.code).id


def check_window(item: Item, now: datetime) -> None:
    """``sale_not_open`` outside the item's window, or outside its flash sale when it has one."""
    if not item.is_active or not domain.is_open(item.starts_at, item.ends_at, now):
        raise SaleNotOpen(f"Item {item.code} is not on sale now.", item=item.code)
    sale = catalog.sale_of(item)
    if sale is not None and not domain.is_open(sale.starts_at, sale.ends_at, now):
        raise SaleNotOpen(
            f"Item {item.code} sells in its flash sale only, from {sale.starts_at.isoformat()} "
            f"to {sale.ends_at.isoformat()}.",
            item=item.code,
            starts_at=sale.starts_at.isoformat(),
            ends_at=sale.ends_at.isoformat(),
        )


def check_eligible(item: Item, standing: Standing) -> None:
    """``not_eligible`` unless the member's tier or plans open the item to it."""
    reason = domain.ineligibility(
        catalog.eligibility_of(item), standing.tier_code, standing.tier_is_exclusive, standing.plans
    )
    if reason is not None:
        raise NotEligible(f"The member may not buy {item.code}: {reason}.", item=item.code)


def _count_limit(
    session: Session,
    item: Item,
    member_id: int,
    quantity: int,
    on_sale: bool,
    programme: Programme,
    now: datetime,
) -> str | None:
    """Count the units against the item's per-member limit (the sale's during its sale): the
    window counted in, or ``None`` when the item has no limit; ``limit_reached`` beyond it."""
    sale = catalog.sale_of(item)
    if on_sale and sale is not None and sale.per_member_limit is not None:
        window, limit = domain.sale_window(sale.starts_at), sale.per_member_limit
    else:
        found = catalog.limit_of(item)
        if found is None:
            return None
        limit, period = found
        window = domain.limit_window(period, now, programme.zone)
    if not repository.count_up(session, item.id, member_id, window, quantity, limit):
        bought = repository.counted(session, item.id, member_id, window)
        raise LimitReachedError(
            f"The member may buy {limit} of {item.code} ({window}); it has {bought}.",
            item=item.code,
            limit=limit,
            bought=bought,
        )
    return window


def place_order(
    session: Session,
    actor: Actor,
    member_id: int,
    request: OrderRequest,
    programme: Programme,
    policy: Policy,
    now: datetime,
) -> Order:
    """Place an order for member ``member_id`` (see the module's docstring); the new order."""
    if not 1 <= request.quantity <= domain.MAX_QUANTITY:
        raise ValidationFailed(
            f"quantity must be from 1 to {domain.MAX_QUANTITY}.", field="quantity"
        )
    members.require_usable(session, member_id)
    item = repository.item_by_code(session, request.item)
    if item is None:
        raise NotFound(f"Item {request.item} does not exist.", item=request.item)
    check_window(item, now)
    if item.kind is ItemKind.COUPON:
        mall_coupons.ensure_issuable(session, item)
    if item.kind is ItemKind.PHYSICAL and not request.address:
        raise ValidationFailed("A physical item is shipped: give an address.", field="address")
    if item.kind is not ItemKind.PHYSICAL and request.address:
        raise ValidationFailed("Only a physical item takes an address.", field="address")
    if (item.kind is ItemKind.BOOKING) != (request.slot is not None):
        raise ValidationFailed("A booking names its slot; other items take none.", field="slot")
    standing = standing_of(session, member_id, programme, now)
    check_eligible(item, standing)
    membership_id = None
    if item.kind is ItemKind.PLAN:
        by = memberships.Actor(partner_id=actor.partner_id, staff_id=actor.staff_id)
        membership_id = mall_plans.reserve(
            session, item, member_id, request.quantity, programme, now, by
        )
    unit, on_sale = domain.unit_points(catalog.pricing_of(item), standing.tier_code, now)
    points = unit * request.quantity
    order_id = uuid7()
    accepting = _accepting_partner(session, item, actor, programme)
    discount, redemption = 0, None
    if request.coupon is not None:
        discount, redemption = mall_coupons.discount(
            session, member_id, request.coupon, item, points, accepting, programme, now
        )
    window = _count_limit(session, item, member_id, request.quantity, on_sale, programme, now)
    taken = (
        repository.take_sale_stock(session, item.id, request.quantity)
        if on_sale
        else repository.take_stock(session, item.id, request.quantity)
    )
    if not taken:
        raise SoldOut(f"Item {item.code} is sold out.", item=item.code)
    slot_id = None
    if request.slot is not None:
        slot = repository.slot(session, item.id, request.slot)
        if slot is None:
            raise ValidationFailed(f"Item {item.code} has no slot {request.slot}.", field="slot")
        if not repository.take_slot(session, slot.id, request.quantity):
            raise SoldOut(f"Slot {request.slot} of {item.code} is full.", item=item.code)
        slot_id = slot.id
    cash = catalog.cash_of(item)
    to_pay = points - discount
    row = repository.insert_order(
        session,
        {
            "id": order_id,
            "member_id": member_id,
            "item_id": item.id,
            "item_code": item.code,
            "kind": item.kind,
            "owner_partner_id": item.owner_partner_id,
            "accepting_partner_id": accepting,
            "placed_by_partner_id": actor.partner_id,
            "channel": actor.channel,
            "quantity": request.quantity,
            "unit_points": unit,
            "points": to_pay,
            "discount_points": discount,
            "coupon_code": request.coupon,
            "cash_minor_units": cash.minor_units * request.quantity if cash else None,
            "cash_currency": cash.currency if cash else None,
            "is_sale": on_sale,
            "limit_window": window,
            "payment_status": PaymentStatus.PENDING,
            "fulfilment_status": FulfilmentStatus.UNFULFILLED,
            "refunded_points": 0,
            "refunded_quantity": 0,
            "pay_by": now + timedelta(seconds=domain.PAYMENT_WINDOW_SECONDS) if cash else None,
            "address": request.address,
            "slot_id": slot_id,
            "membership_id": membership_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    if to_pay > 0:
        seconds = domain.PAYMENT_WINDOW_SECONDS if cash else domain.IMMEDIATE_HOLD_SECONDS
        hold, _posted = holds.create_hold(
            session, _origin(row), member_id, to_pay, f"mall-order:{row.id}", seconds, now, policy
        )
        _save(session, row, {"hold_id": hold.id}, now)
    used = {mall_coupons.REDEMPTION: str(redemption)} if redemption is not None else None
    _record(
        session, row, "placed", actor, None, now, points=to_pay, quantity=row.quantity, details=used
    )
    if cash is None:
        _pay(session, row, item, actor, now, policy, reference=None)
    return row


def place_won(session: Session, won: AuctionResult, now: datetime, policy: Policy) -> Order | None:
    """The order of a sold auction, in the close's transaction: one unit of the mall item the
    auction named, paid already (its points are the captured price), fulfilled like any paid
    order of its kind (shipped within ``ship_within``, the 48-hour refund too). ``None`` when
    no mall item has the auction's item code (an auction of something the catalog does not
    sell). The lot is the auction's own: the item's stock and limits are not touched."""
    item = repository.item_by_code(session, won.item_code)
    if item is None:
        return None
    actor = Actor(partner_id=won.partner_id, is_operator=True, channel=AUCTION)
    row = repository.insert_order(
        session,
        {
            "id": uuid7(),
            "member_id": won.member_id,
            "item_id": item.id,
            "item_code": item.code,
            "kind": item.kind,
            "owner_partner_id": item.owner_partner_id,
            "accepting_partner_id": won.partner_id,
            "placed_by_partner_id": won.partner_id,
            "channel": AUCTION,
            "quantity": 1,
            "unit_points": won.points,
            "points": won.points,
            "discount_points": 0,
            "is_sale": False,
            "payment_status": PaymentStatus.PENDING,
            "fulfilment_status": FulfilmentStatus.UNFULFILLED,
            "refunded_points": 0,
            "refunded_quantity": 0,
            "capture_entry_id": won.capture_transaction_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    details = {"auction_id": str(won.auction_id)}
    _record(
        session, row, "placed", actor, None, now, points=row.points, quantity=1, details=details
    )
    _pay(session, row, item, actor, now, policy, reference=None)
    return row


def _save(session: Session, row: Order, values: dict[str, Any], now: datetime) -> None:
    if not repository.save_order(session, row, values, now):
        raise ConcurrentChange("A concurrent request changed this order; retry.")


def _move(
    session: Session,
    row: Order,
    action: Action,
    actor: Actor,
    now: datetime,
    values: dict[str, Any] | None = None,
    **event: Any,
) -> None:
    """Apply ``action`` (refused by the transition table when not allowed), with ``values``,
    and record it."""
    before = state_of(row)
    after = domain.transition(before, action)
    _save(
        session,
        row,
        {**(values or {}), "payment_status": after.payment, "fulfilment_status": after.fulfilment},
        now,
    )
    _record(session, row, action.value, actor, before, now, **event)


_EVENT_TYPES = {
    "placed": EventType.ORDER_PLACED,
    Action.PAY.value: EventType.ORDER_PAID,
    Action.REQUEST.value: EventType.ORDER_FULFILMENT_REQUESTED,
    Action.SHIP.value: EventType.ORDER_SHIPPED,
    Action.DELIVER.value: EventType.ORDER_DELIVERED,
    Action.CONFIRM.value: EventType.ORDER_DELIVERED,
    Action.COMPLETE.value: EventType.ORDER_DELIVERED,
    Action.CANCEL.value: EventType.ORDER_CANCELLED,
    Action.LAPSE.value: EventType.ORDER_LAPSED,
    Action.REFUND.value: EventType.ORDER_REFUNDED,
    Action.PART_REFUND.value: EventType.ORDER_REFUNDED,
    Action.AUTO_REFUND.value: EventType.ORDER_REFUNDED,
}


def _record(
    session: Session,
    row: Order,
    kind: str,
    actor: Actor,
    before: State | None,
    now: datetime,
    *,
    points: int | None = None,
    quantity: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """An order event, and its notice in the outbox (to the supplier, or the accepting
    operator channel, and to partners the member consented to)."""
    repository.insert_event(
        session,
        {
            "order_id": row.id,
            "kind": kind,
            "partner_id": actor.partner_id,
            "staff_id": actor.staff_id,
            "payment_before": before.payment.value if before else None,
            "payment_after": row.payment_status.value,
            "fulfilment_before": before.fulfilment.value if before else None,
            "fulfilment_after": row.fulfilment_status.value,
            "points": points,
            "quantity": quantity,
            "details": details,
            "created_at": now,
        },
    )
    data: dict[str, Any] = {
        "order_id": str(row.id),
        "item": row.item_code,
        "kind": kind,
        "member_id": row.member_id,
        "status": domain.summary(state_of(row)),
        "payment_status": row.payment_status.value,
        "fulfilment_status": row.fulfilment_status.value,
        "quantity": quantity if quantity is not None else row.quantity,
        "points": points if points is not None else row.points,
    }
    if details:
        data["details"] = details
    outbox.emit(
        session,
        [
            Event(
                type=_EVENT_TYPES[kind],
                data=data,
                occurred_at=now,
                member_id=row.member_id,
                partner_id=row.owner_partner_id or row.accepting_partner_id,
            )
        ],
        now,
    )


def _pay(
    session: Session,
    row: Order,
    item: Item,
    actor: Actor,
    now: datetime,
    policy: Policy,
    *,
    reference: str | None,
    payment_partner_id: int | None = None,
) -> None:
    """Capture the held points, mark the order paid and fulfil what is fulfilled on payment."""
    values: dict[str, Any] = {"paid_at": now}
    if row.hold_id is not None:
        _hold, posted = holds.capture_hold(session, _origin(row), row.hold_id, None, now, policy)
        values["capture_entry_id"] = posted.entry_id
    if reference is not None:
        values.update(payment_reference=reference, payment_partner_id=payment_partner_id)
    if row.kind in AWAITING_FULFILMENT:
        values["ship_by"] = now + timedelta(seconds=item.ship_within_seconds)
    details = {"reference": reference} if reference else None
    _move(session, row, Action.PAY, actor, now, values, points=row.points, details=details)
    _fulfil_on_payment(session, row, item, actor, now)


def _fulfil_on_payment(
    session: Session, row: Order, item: Item, actor: Actor, now: datetime
) -> None:
    if row.kind is ItemKind.PARTNER_BENEFIT:
        _move(session, row, Action.REQUEST, actor, now)
        return
    if row.kind is ItemKind.COUPON:
        coupon = mall_coupons.issue(session, row, now)
        _move(
            session,
            row,
            Action.COMPLETE,
            actor,
            now,
            {"delivered_at": now},
            details={"coupon": coupon},
        )
        return
    if row.kind not in DELIVERED_ON_PAYMENT:
        return  # physical: shipped by its supplier or the operator
    values: dict[str, Any] = {"delivered_at": now}
    details: dict[str, Any] | None = None
    if row.kind is ItemKind.PLAN:
        details = {"membership_id": mall_plans.start(session, row, now)}
    if row.kind is ItemKind.DIGITAL_CODE:
        codes = repository.claim_codes(session, item.id, row.id, row.quantity, now)
        if len(codes) < row.quantity:
            raise SoldOut(f"The code pool of {item.code} is empty.", item=item.code)
        _alert_low_water(session, row, item, now)
        details = {"codes": len(codes)}
    if row.kind is ItemKind.TICKET:
        values["ticket_code"] = _ticket_code(session)
    _move(session, row, Action.COMPLETE, actor, now, values, details=details)


def _ticket_code(session: Session) -> str:
    """A fresh ticket code: 16 characters of a 32-letter alphabet (80 random bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(16))
        if not repository.ticket_taken(session, value):
            return value


def _alert_low_water(session: Session, row: Order, item: Item, now: datetime) -> None:
    """``mall.codes_low`` when this order took the pool below its low-water mark (only the
    order that crosses it tells: the stock left is read after its conditional update)."""
    if item.low_water is None:
        return
    session.refresh(item, ["stock"])
    left = item.stock or 0
    if left < item.low_water <= left + row.quantity:
        outbox.emit(
            session,
            [
                Event(
                    type=EventType.MALL_CODES_LOW,
                    data={"item": item.code, "free_codes": left, "low_water": item.low_water},
                    occurred_at=now,
                    partner_id=item.owner_partner_id or row.accepting_partner_id,
                )
            ],
            now,
        )


# --- After placing ----------------------------------------------------------------------------


def _locked(session: Session, actor: Actor, order_id: uuid.UUID) -> Order:
    """The order, locked, if the actor manages it (another supplier's is ``not_found``)."""
    row = repository.lock_order(session, order_id)
    if row is None or not actor.manages(row):
        raise NotFound(f"Order {order_id} does not exist.")
    return row


def _item(session: Session, row: Order) -> Item:
    item = repository.item(session, row.item_id)
    assert item is not None, "an order's item is never deleted"
    return item


def pay(
    session: Session,
    actor: Actor,
    order_id: uuid.UUID,
    reference: str,
    amount: Money,
    now: datetime,
    policy: Policy,
) -> tuple[Order, bool]:
    """The payment partner confirms the cash part: ``(order, created)``. The same reference
    again, for the same order and amount, changes nothing; for another, ``duplicate_reference``.
    The amount must be the order's cash part exactly (``payment_mismatch``)."""
    if actor.partner_id is None:
        raise ValidationFailed("A payment is confirmed by the partner that took it.")
    found = _replay(session, actor.partner_id, reference, order_id, amount)
    if found is not None:
        return found, False
    row = _locked(session, actor, order_id)
    found = _replay(session, actor.partner_id, reference, order_id, amount)
    if found is not None:
        return found, False
    if row.cash_minor_units is None or row.cash_currency is None:
        raise Conflict(f"Order {order_id} has no cash part to pay.")
    due = Money(row.cash_minor_units, row.cash_currency)
    if amount != due:
        raise PaymentMismatch(
            f"The payment is {amount.minor_units} {amount.currency}; the order's cash part is "
            f"{due}.",
            expected={"minor_units": due.minor_units, "currency": due.currency},
        )
    if row.payment_status is PaymentStatus.PENDING and row.pay_by is not None and row.pay_by <= now:
        raise InvalidTransition(
            f"Order {order_id} was to be paid by {row.pay_by.isoformat()}; it lapsed.",
            action=Action.PAY.value,
            payment_status=PaymentStatus.LAPSED.value,
            fulfilment_status=FulfilmentStatus.CANCELLED.value,
        )
    _pay(
        session,
        row,
        _item(session, row),
        actor,
        now,
        policy,
        reference=reference,
        payment_partner_id=actor.partner_id,
    )
    return row, True


def _replay(
    session: Session, partner_id: int, reference: str, order_id: uuid.UUID, amount: Money
) -> Order | None:
    row = repository.order_by_payment(session, partner_id, reference)
    if row is None:
        return None
    same = (
        row.id == order_id and Money(row.cash_minor_units or 0, row.cash_currency or "") == amount
    )
    if not same:
        raise DuplicateReference(
            "This payment reference was already used for another payment.", reference=reference
        )
    return row


def ship(
    session: Session,
    actor: Actor,
    order_id: uuid.UUID,
    carrier: str,
    tracking_number: str,
    now: datetime,
) -> Order:
    """Ship a paid physical order; after an automatic (or any) refund, ``order_refunded``."""
    row = _locked(session, actor, order_id)
    if row.kind is not ItemKind.PHYSICAL:
        raise ValidationFailed(f"A {row.kind.value} order is not shipped.", field="carrier")
    _move(
        session,
        row,
        Action.SHIP,
        actor,
        now,
        {"carrier": carrier, "tracking_number": tracking_number, "shipped_at": now},
        details={"carrier": carrier, "tracking_number": tracking_number},
    )
    return row


def deliver(session: Session, actor: Actor, order_id: uuid.UUID, now: datetime) -> Order:
    """Mark an order delivered: a shipped physical order, or a partner benefit its supplier
    fulfilled (the confirmation callback)."""
    row = _locked(session, actor, order_id)
    if row.kind not in AWAITING_FULFILMENT:
        raise ValidationFailed(
            f"A {row.kind.value} order is delivered when it is paid.", field="order"
        )
    action = Action.DELIVER if row.kind is ItemKind.PHYSICAL else Action.CONFIRM
    _move(session, row, action, actor, now, {"delivered_at": now})
    return row


def cancel(
    session: Session, actor: Actor, order_id: uuid.UUID, now: datetime, policy: Policy
) -> Order:
    """Cancel an order not fulfilled yet: an unpaid one gives its held points and stock back;
    a paid one is refunded in full."""
    row = _locked(session, actor, order_id)
    domain.transition(state_of(row), Action.CANCEL)  # refused before anything moves
    if row.payment_status is PaymentStatus.PENDING:
        _release_unpaid(session, row, now, policy)
        _restock(session, row, row.quantity)
        _move(session, row, Action.CANCEL, actor, now, points=row.points, quantity=row.quantity)
        return row
    plan = domain.plan_refund(
        row.points, row.refunded_points, row.quantity, row.refunded_quantity, None, None
    )
    _give_back(session, row, plan, now, policy)
    _move(
        session,
        row,
        Action.CANCEL,
        actor,
        now,
        _refunded_values(row, plan),
        points=plan.points,
        quantity=plan.quantity,
    )
    return row


def refund(
    session: Session,
    actor: Actor,
    order_id: uuid.UUID,
    now: datetime,
    policy: Policy,
    *,
    quantity: int | None = None,
    points: int | None = None,
    reason: str | None = None,
) -> Order:
    """Refund a paid order, all of it or part (``quantity`` units, restocked, or ``points``):
    the points go back through the ledger."""
    row = _locked(session, actor, order_id)
    domain.transition(state_of(row), Action.PART_REFUND)  # refused unless paid
    plan = domain.plan_refund(
        row.points, row.refunded_points, row.quantity, row.refunded_quantity, points, quantity
    )
    action = Action.REFUND if plan.is_full else Action.PART_REFUND
    _give_back(session, row, plan, now, policy)
    _move(
        session,
        row,
        action,
        actor,
        now,
        _refunded_values(row, plan),
        points=plan.points,
        quantity=plan.quantity,
        details={"reason": reason} if reason else None,
    )
    return row


def auto_refund(session: Session, order_id: uuid.UUID, as_of: datetime, policy: Policy) -> bool:
    """The 48-hour rule: refund in full an order still not shipped (nor confirmed) at its
    ``ship_by``. Under the order's lock: whether this run refunded it (``False``: another run
    did, it shipped, or it is not due)."""
    row = repository.lock_order(session, order_id)
    if row is None or row.ship_by is None or row.ship_by > as_of:
        return False
    if domain.allowed(state_of(row), Action.AUTO_REFUND) is None:
        return False
    plan = domain.plan_refund(
        row.points, row.refunded_points, row.quantity, row.refunded_quantity, None, None
    )
    _give_back(session, row, plan, as_of, policy)
    _move(
        session,
        row,
        Action.AUTO_REFUND,
        SYSTEM_ACTOR,
        as_of,
        _refunded_values(row, plan),
        points=plan.points,
        quantity=plan.quantity,
        details={"ship_by": row.ship_by.isoformat(), "automatic": True},
    )
    return True


def lapse(session: Session, order_id: uuid.UUID, as_of: datetime, policy: Policy) -> bool:
    """An order still unpaid at its ``pay_by`` lapses: its points (the ledger lapses the hold)
    and stock go back. Whether this run lapsed it."""
    row = repository.lock_order(session, order_id)
    if row is None or row.pay_by is None or row.pay_by > as_of:
        return False
    if domain.allowed(state_of(row), Action.LAPSE) is None:
        return False
    _release_unpaid(session, row, as_of, policy)
    _restock(session, row, row.quantity)
    _move(
        session,
        row,
        Action.LAPSE,
        SYSTEM_ACTOR,
        as_of,
        points=row.points,
        quantity=row.quantity,
        details={"pay_by": row.pay_by.isoformat()},
    )
    return True


def _release_unpaid(session: Session, row: Order, now: datetime, policy: Policy) -> None:
    """Give an unpaid order's held points back: void its hold, or (past its timeout) have the
    ledger record the lapse; its coupon's use goes back too."""
    mall_coupons.release(session, row, now)
    if row.hold_id is None:
        return
    found = holds.find(session, [row.hold_id]).get(row.hold_id)
    if found is None:
        return
    if found.hold.expires_at > now:
        holds.void_hold(session, _origin(row), row.hold_id, now, policy)
        return
    lapse_due(session, [row.member_id], now)


def _restock(session: Session, row: Order, quantity: int) -> None:
    """Give ``quantity`` units back: stock (or sale stock), slot places and the limit count.
    A digital code delivered stays delivered: its pool does not grow back."""
    if quantity <= 0:
        return
    delivered_codes = row.kind is ItemKind.DIGITAL_CODE and row.delivered_at is not None
    if not delivered_codes:
        if row.is_sale:
            repository.put_back_sale_stock(session, row.item_id, quantity)
        else:
            repository.put_back_stock(session, row.item_id, quantity)
    if row.slot_id is not None:
        repository.put_back_slot(session, row.slot_id, quantity)
    if row.limit_window is not None:
        repository.count_down(session, row.item_id, row.member_id, row.limit_window, quantity)


def _give_back(
    session: Session, row: Order, plan: domain.Refund, now: datetime, policy: Policy
) -> None:
    """Return ``plan.points`` through the ledger and restock ``plan.quantity``: the whole of
    a capture not refunded before is reversed (the points go back to the lots they came from);
    any other part is credited from the accepting partner's redeemed points."""
    mall_plans.check_refund(row, plan.is_full)
    if plan.points > 0 and row.capture_entry_id is not None:
        if plan.is_full and row.refunded_points == 0:
            reversals.reverse(session, _origin(row), row.capture_entry_id, now, policy)
        else:
            credit = orders.Order(
                EntryKind.EARN,
                _origin(row),
                row.member_id,
                plan.points,
                f"mall-refund:{row.id}:{row.refunded_points}",
                lines=(
                    orders.Line(
                        plan.points,
                        reason=f"refund of mall order {row.id}",
                        funding=partner_redeemed(row.accepting_partner_id),
                    ),
                ),
            )
            orders.posted(orders.post_orders(session, [credit], now, policy)[0])
    _restock(session, row, plan.quantity)
    if plan.is_full:
        mall_coupons.release(session, row, now)
        mall_plans.release(session, row, now)


def _refunded_values(row: Order, plan: domain.Refund) -> dict[str, Any]:
    return {
        "refunded_points": row.refunded_points + plan.points,
        "refunded_quantity": row.refunded_quantity + plan.quantity,
    }


# --- Reads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as callers see it, with the codes it delivered and its slot."""

    order: Order
    status: str
    codes: list[str]
    slot: str | None


def views(session: Session, rows: list[Order]) -> list[OrderView]:
    codes = repository.codes_of(session, [row.id for row in rows])
    found = []
    for row in rows:
        slot = repository.slot_by_id(session, row.slot_id) if row.slot_id else None
        found.append(
            OrderView(
                row,
                domain.summary(state_of(row)),
                codes.get(row.id, []),
                slot.code if slot else None,
            )
        )
    return found


def get_order(session: Session, actor: Actor, order_id: uuid.UUID) -> OrderView:
    """One order the actor manages (the member pages pass the member's own orders only)."""
    row = repository.order(session, order_id)
    if row is None or not actor.manages(row):
        raise NotFound(f"Order {order_id} does not exist.")
    return views(session, [row])[0]


def member_orders(session: Session, actor: Actor, member_id: int) -> list[OrderView]:
    """A member's latest orders the actor manages, newest first."""
    return list_orders(session, actor, member_id=member_id, limit=MEMBER_ORDERS).orders


@dataclass(frozen=True, slots=True)
class OrderPage:
    """A page of orders, and the position ``(created_at, id)`` of the last when more follow."""

    orders: list[OrderView]
    next: tuple[datetime, uuid.UUID] | None


def list_orders(
    session: Session,
    actor: Actor,
    *,
    member_id: int | None = None,
    item_code: str | None = None,
    status: str | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> OrderPage:
    """The orders the actor manages, newest first, after ``before``: of one member, of one item
    and with one :func:`~tally.mall.domain.summary` status when given (an unknown member or
    item is ``not_found``)."""
    statuses = domain.summary_statuses(status) if status is not None else None
    if member_id is not None:
        members.get(session, member_id)
    item_id = None
    if item_code is not None:
        item_id = catalog.managed_item(session, actor.manager, item_code).id
    rows = repository.list_orders(
        session,
        owner=actor.partner_id,
        everyone=actor.is_operator,
        item_id=item_id,
        summary_filter=statuses,
        limit=limit + 1,
        member_id=member_id,
        before=before,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return OrderPage(views(session, page), (page[-1].created_at, page[-1].id) if more else None)


def order_events(session: Session, actor: Actor, order_id: uuid.UUID) -> list[Any]:
    """Every change of an order the actor manages, oldest first."""
    get_order(session, actor, order_id)
    return repository.events_of(session, order_id)
