"""The seam between the mall's orders and the coupons domain (issue 12, "Coupons"): the order
flow calls these functions and nothing else of coupons, each in the order's transaction.

- A **coupon-kind item** sells codes of the coupon template whose code is the item's code: an
  order issues ``quantity`` codes into the member's wallet when it is paid (source
  ``purchase``, each once per order and unit).
- An order's **coupon** takes money off the points part: the order's points are worth
  ``points × point value`` in the programme's currency (exact, in minor units, rounded down),
  that is the cart the coupon is quoted on (one line: the item's code as SKU, its first
  category), and the discount comes back as points (rounded down, at most the points). The
  coupon is used at the checkout of the partner the points go to (the supplier, or the
  operator's channel), so a template scoped to partners applies where it should. The
  redemption's id is kept on the order's ``placed`` event; a refund in full, a cancellation and
  a lapse give the use back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from tally.coupons import service as coupons
from tally.coupons.domain import Cart, Line, Source
from tally.errors import NotAvailable, NotFound
from tally.mall import repository
from tally.mall.models import Item, Order
from tally.partners.models import Partner
from tally.programme.domain import Programme

REDEMPTION = "coupon_redemption"  # the placed event's detail naming the coupon's redemption


def discounts_wired() -> bool:
    """Whether an order's ``coupon`` is applied; the member pages offer the field only then."""
    return True


def ensure_issuable(session: Session, item: Item) -> None:
    """Refuse, before anything is written, a coupon-kind item with no template of its code."""
    try:
        coupons.template(session, item.code)
    except NotFound:
        raise NotAvailable(
            f"Item {item.code} issues a coupon, but no coupon template has its code.",
            feature="coupon_items",
        ) from None


def issue(session: Session, order: Order, now: datetime) -> str:
    """Issue the codes a paid coupon-kind order bought into the member's wallet (once per
    order and unit); the codes, comma-separated. Refused (``not_available``) when the template
    can no longer issue them (expired, exhausted), so the payment rolls back with it."""
    grants = [
        coupons.Grant(order.member_id, order.item_code, f"mall-order:{order.id}:{unit}")
        for unit in range(order.quantity)
    ]
    granted = coupons.grant(session, grants, Source.PURCHASE, now)
    refused = next((item.refused for item in granted if item.refused), None)
    if refused is not None:
        raise NotAvailable(
            f"Order {order.id}: coupon {order.item_code} cannot be issued ({refused}).",
            feature="coupon_items",
        )
    return ", ".join(item.code for item in granted if item.code)


def discount(
    session: Session,
    member_id: int,
    code: str,
    item: Item,
    points: int,
    checkout_partner_id: int,
    programme: Programme,
    now: datetime,
) -> tuple[int, uuid.UUID]:
    """Use coupon ``code`` of member ``member_id`` on ``points`` of ``item`` at the checkout of
    partner ``checkout_partner_id``: ``(points off, the redemption's id)``;
    ``coupon_not_applicable`` (with its reason) when it does not apply."""
    rate = programme.currency.point_value.rate
    worth = points * rate.minor_units // rate.points
    categories = [value for value in item.categories.split("|") if value]
    cart = Cart(
        worth,
        (Line(item.code, worth, categories[0] if categories else None),),
        rate.currency,
    )
    partner = session.get(Partner, checkout_partner_id)
    assert partner is not None  # the order's accepting partner
    used = coupons.apply_to_order(
        session,
        coupons.Ask(code, cart, member_id),
        coupons.Checkout(partner.id, partner.code),
        now,
        commit_use=True,
    )
    assert isinstance(used, coupons.Redeemed)
    off = used.quote.discount * rate.points // rate.minor_units
    return min(points, off), used.redemption.id


def release(session: Session, order: Order, now: datetime) -> None:
    """Give back the coupon use of a refunded, cancelled or lapsed order (none: nothing)."""
    if order.coupon_code is None:
        return
    for event in repository.events_of(session, order.id):
        found = (event.details or {}).get(REDEMPTION)
        if event.kind == "placed" and found:
            coupons.roll_back(session, coupons.redemption(session, found), now)
