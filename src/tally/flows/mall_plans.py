"""The programme's paid plans sold in the mall (issue 12): a ``plan`` item's order pays for a
membership through the memberships service, so the membership's whole lifecycle — eligibility,
its start on payment, renewals, refunds — is the one the memberships API has.

- Placing the order subscribes the member (:func:`reserve`): the plan's eligibility is checked
  there (``not_eligible``), a pending membership is made or the member's open one (pending, or
  active: the order renews it) is taken, all in the order's transaction.
- When the order is paid (points captured, the cash part confirmed) :func:`start` records one
  payment of the membership at the plan's price, by the partner that accepted the order's
  points, with the reference ``mall-order:<order id>``: a pending membership starts then, an
  active one gets one more term.
- A refund of the order refunds that payment in full through the membership lifecycle
  (:func:`release`): the term it bought is revoked (the membership ends when it was its only
  one). A plan order is refunded whole, never in part.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import Conflict, ValidationFailed
from tally.mall.models import Item, Order
from tally.memberships import service as memberships
from tally.programme import service as programme_service
from tally.programme.domain import Money, Programme


def reference_of(order: Order) -> str:
    """The membership payment's reference for a mall order."""
    return f"mall-order:{order.id}"


def reserve(
    session: Session,
    item: Item,
    member_id: int,
    quantity: int,
    programme: Programme,
    now: datetime,
    by: memberships.Actor,
) -> uuid.UUID:
    """Subscribe the member to the item's plan (eligibility checked) or take its open
    membership of it: the membership the order will pay for."""
    if quantity != 1:
        raise ValidationFailed("A plan is bought one term at a time: quantity 1.", field="quantity")
    assert item.plan_code is not None, "a plan item names its plan"
    row, _created = memberships.subscribe(
        session,
        by,
        member_id,
        item.plan_code,
        programme,
        now,
    )
    return row.id


def start(session: Session, order: Order, now: datetime) -> str:
    """Pay the order's membership one term at its price (it starts, or renews); the
    membership's id."""
    assert order.membership_id is not None, "a plan order has its membership"
    programme = programme_service.running(session, now)
    if programme is None:
        raise Conflict("No programme is in force to sell its plan.")
    membership = memberships.get(session, order.membership_id)
    price = Money(membership.price_minor_units, membership.currency)
    memberships.pay(
        session,
        memberships.Actor(partner_id=order.accepting_partner_id),
        membership.id,
        reference_of(order),
        price,
        None,
        programme,
        now,
    )
    return str(membership.id)


def check_refund(order: Order, is_full: bool) -> None:
    """A plan order is refunded whole (the membership's term with it), never in part."""
    if order.membership_id is not None and not is_full:
        raise ValidationFailed(
            "A plan order is refunded in full (its membership term with it), not in part.",
            field="points",
        )


def release(session: Session, order: Order, now: datetime) -> None:
    """Refund the membership payment a paid plan order made, all of it (the membership
    lifecycle revokes the term, or ends the membership)."""
    if order.membership_id is None or order.paid_at is None:
        return
    memberships.refund(
        session,
        memberships.Actor(partner_id=order.accepting_partner_id),
        order.membership_id,
        reference_of(order),
        None,
        now,
    )
