"""Holds: reserve points, then capture all or part of them, or void them (lapses: see
:mod:`tally.ledger.releases`). Each is an order of :mod:`tally.ledger.orders`, here as a batch
of one. Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import NotFound
from tally.ledger import orders, repository
from tally.ledger.domain import HeldRow, HoldState, Origin, Policy
from tally.ledger.posting import Posted


def create_hold(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    expires_in_seconds: int,
    now: datetime,
    policy: Policy,
) -> tuple[HoldState, Posted]:
    """Reserve points until captured, voided or lapsed (at most ``policy.max_hold_seconds``)."""
    order = orders.hold_order(origin, member_id, points, reference, expires_in_seconds)
    return _with_hold(orders.post_orders(session, [order], now, policy)[0])


def find(session: Session, hold_ids: list[uuid.UUID]) -> dict[uuid.UUID, HeldRow]:
    """The holds of ``hold_ids`` that exist."""
    return repository.holds(session, hold_ids)


def capture_hold(
    session: Session,
    origin: Origin,
    hold_id: uuid.UUID,
    points: int | None,
    now: datetime,
    policy: Policy,
) -> tuple[HoldState, Posted]:
    """Spend all (``points`` ``None``) or part of the partner's hold; the rest goes back to the
    member."""
    order = orders.capture_order(origin, _own(session, origin, hold_id), points, now)
    return _with_hold(orders.post_orders(session, [order], now, policy)[0])


def void_hold(
    session: Session, origin: Origin, hold_id: uuid.UUID, now: datetime, policy: Policy
) -> tuple[HoldState, Posted]:
    """Give every point of the partner's hold back to the member."""
    order = orders.void_order(origin, _own(session, origin, hold_id), now)
    return _with_hold(orders.post_orders(session, [order], now, policy)[0])


def _own(session: Session, origin: Origin, hold_id: uuid.UUID) -> HeldRow:
    found = find(session, [hold_id]).get(hold_id)
    if found is None or (
        origin.partner_id is not None and found.hold.partner_id != origin.partner_id
    ):
        raise NotFound(f"Hold {hold_id} does not exist.")
    return found


def _with_hold(outcome: orders.Outcome) -> tuple[HoldState, Posted]:
    result = orders.posted(outcome)
    assert result.hold is not None, "a hold or a capture names its hold"
    return result.hold, result
