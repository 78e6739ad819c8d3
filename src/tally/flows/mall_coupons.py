"""The seam between the mall's orders and the coupons domain (issue 12, "Coupons").

The order flow calls these functions and nothing else of coupons: a coupon-kind item is refused
and an order's ``coupon`` is refused (``not_available``) until the coupons domain plugs in here —
:func:`ensure_issuable` and :func:`issue` with its template issuing, :func:`discount` and
:func:`release` with its redemption and rollback. Each runs in the order's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import NotAvailable
from tally.mall.models import Item, Order


def discounts_wired() -> bool:
    """Whether an order's ``coupon`` is applied (:func:`discount` wired to the coupons domain);
    the member pages offer the coupon field only then."""
    return False


def ensure_issuable(session: Session, item: Item) -> None:
    """Refuse, before anything is written, a coupon-kind item whose coupon cannot be issued."""
    del session
    raise NotAvailable(
        f"Item {item.code} issues a coupon, and coupon issuing is not wired to the mall yet.",
        feature="coupon_items",
    )


def issue(session: Session, order: Order, now: datetime) -> str:
    """Issue the coupon a paid coupon-kind order bought into the member's wallet; its code."""
    del session, now
    raise NotAvailable(
        f"Order {order.id}: coupon issuing is not wired to the mall yet.", feature="coupon_items"
    )


def discount(
    session: Session, member_id: int, code: str, item: Item, points: int, now: datetime
) -> int:
    """Redeem coupon ``code`` of member ``member_id`` on ``points`` of ``item``: the points off
    (at most ``points``); refused when the coupon does not apply."""
    del session, member_id, points, now
    raise NotAvailable(
        f"Coupon {code} cannot be applied to {item.code}: coupons are not wired to the mall yet.",
        feature="coupon_discounts",
    )


def release(session: Session, order: Order, now: datetime) -> None:
    """Give back the coupon a refunded or cancelled order used (none yet: nothing to do)."""
    del session, now
    if order.coupon_code is not None:  # only reachable once discount() is wired
        raise NotAvailable("Coupon rollback is not wired to the mall yet.", feature="coupons")
