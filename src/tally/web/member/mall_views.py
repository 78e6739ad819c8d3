"""What the member mall pages show: items as a member sees them (price for its tier, sale,
stock, limit left, whether it may buy and why not) and its orders in words.

Reads only; the order flow (:mod:`tally.flows.mall_orders`) decides again when the member buys.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.flows import mall_orders as flow
from tally.flows.mall_orders import Standing
from tally.mall import domain, repository
from tally.mall import service as catalog
from tally.mall.domain import Action, LimitPeriod
from tally.mall.models import Item, Order, OrderEvent, Slot
from tally.offers import service as offers
from tally.programme.domain import Money, Programme
from tally.programme.shapes import Names

#: Items on the mall's front page (and per page of a search).
PAGE_SIZE = 60
FOR_YOU = 6  # items ranked for the member on the front page
#: How many of the shop's items the category list is made of (the catalog in id order).
SCAN = 500
#: The member pages act for the operator on the member's own orders (the pages check that the
#: order is the member's before anything).
MEMBER_ACTOR = flow.Actor(is_operator=True, channel=flow.MEMBER_PAGES)


@dataclass(frozen=True, slots=True)
class SaleView:
    """An item's flash sale as a member sees it: ``phase`` is ``upcoming``, ``open`` or
    ``over``."""

    starts_at: datetime
    ends_at: datetime
    points: int
    stock_left: int
    per_member_limit: int | None
    phase: str


@dataclass(frozen=True, slots=True)
class LimitView:
    """The member's per-member limit on an item: ``count`` per ``period``, ``left`` of them."""

    count: int
    period: str
    left: int
    is_sale: bool


@dataclass(frozen=True, slots=True)
class SlotView:
    code: str
    starts_at: datetime
    ends_at: datetime | None
    left: int


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item for one member, now.

    ``state`` is ``available``, ``sold_out``, ``not_yet`` (its window or sale is to come) or
    ``ended``; ``unit_points`` is what one unit costs the member now (the sale's, its tier's or
    the item's price) and ``base_points`` the item's own price.
    """

    code: str
    kind: str
    names: dict[str, str]
    descriptions: dict[str, str] | None
    image: str | None
    base_points: int
    unit_points: int
    tier_points: int | None
    cash: Money | None
    sale: SaleView | None
    stock: int | None
    state: str
    starts_at: datetime | None
    ends_at: datetime | None
    for_tiers: list[Names | str]
    for_plans: list[Names | str]
    is_exclusive: bool
    is_eligible: bool
    limit: LimitView | None
    slots: list[SlotView]
    ship_within_seconds: int

    @property
    def can_buy(self) -> bool:
        """Whether the buy form is offered (the flow decides again on submit)."""
        return self.state == "available" and self.is_eligible and self.max_quantity > 0

    @property
    def max_quantity(self) -> int:
        """The most the member may put in one order now."""
        most = domain.MAX_QUANTITY
        if self.limit is not None:
            most = min(most, self.limit.left)
        stock = self.sale.stock_left if self.sale and self.sale.phase == "open" else self.stock
        if stock is not None:
            most = min(most, stock)
        return most

    @property
    def ship_within_hours(self) -> int:
        return self.ship_within_seconds // 3600


def _names(programme: Programme, codes: list[str] | None, *, tiers: bool) -> list[Names | str]:
    found: list[Names | str] = []
    for code in codes or []:
        entry = programme.tier(code) if tiers else programme.plan(code)
        found.append(entry.names if entry is not None else code)
    return found


def _sale(item: Item, now: datetime) -> SaleView | None:
    sale = catalog.sale_of(item)
    if sale is None:
        return None
    if now < sale.starts_at:
        phase = "upcoming"
    elif now < sale.ends_at:
        phase = "open"
    else:
        phase = "over"
    return SaleView(
        sale.starts_at,
        sale.ends_at,
        sale.points,
        item.sale_stock or 0,
        sale.per_member_limit,
        phase,
    )


def _state(item: Item, sale: SaleView | None, now: datetime) -> str:
    if item.starts_at is not None and now < item.starts_at:
        return "not_yet"
    if item.ends_at is not None and item.ends_at <= now:
        return "ended"
    if sale is not None:
        if sale.phase == "upcoming":
            return "not_yet"
        if sale.phase == "over":
            return "ended"
        return "sold_out" if sale.stock_left <= 0 else "available"
    if item.stock is not None and item.stock <= 0:
        return "sold_out"
    return "available"


def _limit(
    session: Session,
    item: Item,
    sale: SaleView | None,
    member_id: int,
    programme: Programme,
    now: datetime,
) -> LimitView | None:
    """The limit that counts now (the sale's during its sale, else the item's) with what is
    left of it for the member."""
    if sale is not None and sale.phase == "open" and sale.per_member_limit is not None:
        window = domain.sale_window(sale.starts_at)
        bought = repository.counted(session, item.id, member_id, window)
        return LimitView(
            sale.per_member_limit, "sale", max(sale.per_member_limit - bought, 0), True
        )
    found = catalog.limit_of(item)
    if found is None:
        return None
    count, period = found
    window = domain.limit_window(period, now, programme.zone)
    bought = repository.counted(session, item.id, member_id, window)
    return LimitView(count, LimitPeriod(period).value, max(count - bought, 0), False)


def item_view(
    session: Session,
    item: Item,
    slots: list[Slot],
    member_id: int,
    standing: Standing,
    programme: Programme,
    now: datetime,
    *,
    with_limit: bool = True,
) -> ItemView:
    """``item`` as member ``member_id`` (of ``standing``) sees it at ``now``."""
    sale = _sale(item, now)
    unit, _on_sale = domain.unit_points(catalog.pricing_of(item), standing.tier_code, now)
    tier_price = (item.tier_points or {}).get(standing.tier_code)
    rule = catalog.eligibility_of(item)
    reason = domain.ineligibility(
        rule, standing.tier_code, standing.tier_is_exclusive, standing.plans
    )
    return ItemView(
        code=item.code,
        kind=item.kind.value,
        names=dict(item.names),
        descriptions=dict(item.descriptions) if item.descriptions else None,
        image=item.images[0] if item.images else None,
        base_points=item.points,
        unit_points=unit,
        tier_points=tier_price if tier_price is not None and tier_price < item.points else None,
        cash=catalog.cash_of(item),
        sale=sale,
        stock=item.stock,
        state=_state(item, sale, now),
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        for_tiers=_names(programme, item.eligible_tiers, tiers=True),
        for_plans=_names(programme, item.eligible_plans, tiers=False),
        is_exclusive=item.is_exclusive,
        is_eligible=reason is None,
        limit=_limit(session, item, sale, member_id, programme, now) if with_limit else None,
        slots=[
            SlotView(slot.code, slot.starts_at, slot.ends_at, slot.capacity - slot.taken)
            for slot in slots
            if slot.starts_at > now
        ],
        ship_within_seconds=item.ship_within_seconds,
    )


@dataclass(frozen=True, slots=True)
class Shelf:
    """The mall's front page or a search: the items, the categories to browse, and the id to
    continue after (``None``: nothing more)."""

    items: list[ItemView]
    categories: list[str]
    query: str
    category: str | None
    next_after: int | None = None


def _visible(row: Item, standing: Standing, now: datetime) -> bool:
    """Whether a member sees an active item: not past its window, and an exclusive one only in
    a tier flagged ``mall_exclusive``."""
    return (row.ends_at is None or row.ends_at > now) and (
        not row.is_exclusive or standing.tier_is_exclusive
    )


def shelf(
    session: Session,
    member_id: int,
    standing: Standing,
    programme: Programme,
    now: datetime,
    *,
    query: str,
    category: str | None,
    after: int | None = None,
) -> Shelf:
    """A page of the items a member browses (on sale now or soon), searched by text and
    category in the database, in catalog order after item id ``after``; with the categories of
    the first :data:`SCAN` items of the shop."""
    everything = catalog.shop_items(session, text_query=None, category=None, after=None, limit=SCAN)
    categories = sorted(
        {
            name
            for row in everything
            if _visible(row, standing, now)
            for name in catalog.categories_of(row)
        }
    )
    rows = catalog.shop_items(
        session,
        text_query=query.strip() or None,
        category=category,
        after=after,
        limit=PAGE_SIZE + 1,
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    views = [
        item_view(session, row, [], member_id, standing, programme, now, with_limit=False)
        for row in rows
        if _visible(row, standing, now)
    ]
    return Shelf(views, categories, query.strip(), category, rows[-1].id if more else None)


def front_page_items(shelf_page: Shelf) -> list[ItemView]:
    """The front page's list of every item, in catalog order."""
    return shelf_page.items


@dataclass(frozen=True, slots=True)
class ForYou:
    """An item ranked for the member (:func:`tally.offers.service.ranked_for`) with why it is
    shown: ``reasons`` of ``(key of labels.mall.offer_reasons, its parameters)``, the
    strongest first."""

    item: ItemView
    reasons: list[tuple[str, dict[str, str | int]]]

    @property
    def reason(self) -> str:
        return self.reasons[0][0]


def for_you(
    session: Session,
    member_id: int,
    standing: Standing,
    programme: Programme,
    now: datetime,
    limit: int = FOR_YOU,
) -> list[ForYou]:
    """The front page's first section: the items ranked for the member, each with why."""
    ranked = offers.ranked_for(session, member_id, programme, now, limit)
    rows = repository.items_by_id(session, [offer.item.item_id for offer in ranked])
    picked = []
    for offer in ranked:
        row = rows.get(offer.item.item_id)
        if row is None:
            continue
        view = item_view(session, row, [], member_id, standing, programme, now, with_limit=False)
        why = [(reason.code.value, dict(reason.params)) for reason in offer.reasons]
        picked.append(ForYou(view, why))
    return picked


# --- Orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventLine:
    kind: str
    at: datetime
    points: int | None


@dataclass(frozen=True, slots=True)
class OrderCard:
    """An order in words: its summary, payment and fulfilment, what it delivered, deadlines."""

    id: uuid.UUID
    item_code: str
    names: dict[str, str]
    kind: str
    status: str
    payment_status: str
    fulfilment_status: str
    quantity: int
    points: int
    discount_points: int
    refunded_points: int
    cash: Money | None
    pay_by: datetime | None
    ship_by: datetime | None
    carrier: str | None
    tracking_number: str | None
    codes: list[str]
    ticket_code: str | None
    slot: str | None
    address: list[str]
    created_at: datetime
    can_cancel: bool
    events: list[EventLine]

    @property
    def is_awaiting_payment(self) -> bool:
        return self.status == "awaiting_payment"

    @property
    def shows_promise(self) -> bool:
        """Whether the 48-hour promise applies now: paid, not shipped, with a deadline."""
        return self.ship_by is not None and self.fulfilment_status in ("unfulfilled", "requested")


def _card(
    row: Order, view: flow.OrderView, item: Item | None, events: list[OrderEvent]
) -> OrderCard:
    state = flow.state_of(row)
    return OrderCard(
        id=row.id,
        item_code=row.item_code,
        names=dict(item.names) if item else {"en": row.item_code},
        kind=row.kind.value,
        status=view.status,
        payment_status=row.payment_status.value,
        fulfilment_status=row.fulfilment_status.value,
        quantity=row.quantity,
        points=row.points,
        discount_points=row.discount_points,
        refunded_points=row.refunded_points,
        cash=(
            Money(row.cash_minor_units, row.cash_currency)
            if row.cash_minor_units is not None and row.cash_currency is not None
            else None
        ),
        pay_by=row.pay_by,
        ship_by=row.ship_by if state.payment.value in ("paid", "part_refunded") else None,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        codes=view.codes,
        ticket_code=row.ticket_code,
        slot=view.slot,
        address=[
            str(row.address[key])
            for key in ("name", "phone", "line", "city", "postcode")
            if row.address and row.address.get(key)
        ],
        created_at=row.created_at,
        can_cancel=domain.allowed(state, Action.CANCEL) is not None,
        events=[EventLine(event.kind, event.created_at, event.points) for event in events],
    )


def orders_of(session: Session, member_id: int) -> list[OrderCard]:
    """The member's orders, newest first (no timelines)."""
    found = flow.member_orders(session, MEMBER_ACTOR, member_id)
    items = repository.items_by_id(session, [view.order.item_id for view in found])
    return [_card(view.order, view, items.get(view.order.item_id), []) for view in found]


def order_of(session: Session, member_id: int, order_id: uuid.UUID) -> OrderCard | None:
    """One of the member's own orders with its timeline, or ``None`` (another member's
    order is as absent as one that does not exist)."""
    row = repository.order(session, order_id)
    if row is None or row.member_id != member_id:
        return None
    view = flow.get_order(session, MEMBER_ACTOR, order_id)
    item = repository.item(session, row.item_id)
    return _card(row, view, item, flow.order_events(session, MEMBER_ACTOR, order_id))
