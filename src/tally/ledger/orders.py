"""Earns and redeems, one or many at once: the members' wallets and lots are read once, every
order is decided in memory, and each kind of row is written in one statement.

This is how every earn and redeem is posted: a single one is a batch of one, and the API's
group commit hands over all the orders that reach a worker together (ADR 6).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.errors import ConcurrentChange, InsufficientPoints, TallyError
from tally.ledger import repository
from tally.ledger.domain import (
    Leg,
    LotView,
    Origin,
    Policy,
    WalletState,
    balance_of,
    in_rounds,
    member_available,
    partner_issued,
    partner_redeemed,
    plan_consumption,
)
from tally.ledger.holds import lapse_due
from tally.ledger.models import EntryKind
from tally.ledger.posting import (
    Draft,
    Journal,
    Posted,
    check_points,
    checked_expiry,
    require_partner,
    source_key,
)
from tally.members import service as members
from tally.members.models import MemberStatus


@dataclass(frozen=True, slots=True)
class Order:
    """A partner's earn (points credited as a new lot) or redeem (points spent, oldest-expiring
    lots first)."""

    kind: EntryKind
    origin: Origin
    member_id: int
    points: int
    reference: str
    expires_at: datetime | None = None  # earn only: the programme's default when absent


class Busy:
    """The outcome of an order not posted because another transaction held its member's
    wallet (only when not waiting); it wrote nothing."""


BUSY = Busy()
Outcome = Posted | TallyError | Busy


def post_orders(
    session: Session,
    orders: Sequence[Order],
    now: datetime,
    policy: Policy,
    *,
    wait: bool = True,
) -> list[Outcome]:
    """Post ``orders`` as if one after another, in the caller's transaction; each outcome is
    the posted entry (with the member's balance after it) or the error that refused the order
    and wrote nothing for it. Without ``wait``, an order whose member's wallet another
    transaction holds is not posted (:data:`BUSY`) rather than waited for.

    The orders go in rounds that name each member once, so a member's orders see each other
    in turn. Raises (and the caller rolls back) only when the database refuses a write, such
    as a reference used before.

    Holds of these members past their timeout are lapsed first, so the orders see the balance
    every reader sees; recording a lapse may wait for a lock, so without ``wait`` those
    members' orders are :data:`BUSY` instead (asked again by a writer that waits).
    """
    return in_rounds(
        orders,
        lambda order: order.member_id,
        lambda distinct: _post_round(session, distinct, now, policy, wait),
    )


def posted(outcome: Outcome) -> Posted:
    """The posted entry of a single order, or its refusal raised."""
    if isinstance(outcome, TallyError):
        raise outcome
    assert isinstance(outcome, Posted), "an order waited for is never busy"
    return outcome


@dataclass(frozen=True, slots=True)
class _Accepted:
    position: int
    order: Order
    partner_id: int
    expires: datetime | None


def _post_round(
    session: Session, orders: Sequence[Order], now: datetime, policy: Policy, wait: bool
) -> list[Outcome]:
    """Post orders of distinct members."""
    outcomes: list[Outcome | None] = [None] * len(orders)
    # Locked up front, refused orders' members too: one statement instead of two.
    members = [order.member_id for order in orders]
    wallets, statuses = repository.lock_wallets(session, members, wait=wait)
    lapsing = _timed_out(session, wallets, now)
    if lapsing and wait:  # recorded now (the wallets move), then read again
        lapse_due(session, sorted(lapsing), now, policy)
        wallets, statuses = repository.lock_wallets(session, members)
        lapsing = set()
    accepted: list[_Accepted] = []
    for position, order in enumerate(orders):
        if not wait and (order.member_id not in wallets or order.member_id in lapsing):
            outcomes[position] = BUSY  # held elsewhere, no such member, or a hold to lapse
            continue
        try:
            accepted.append(_accept(position, order, statuses, now, policy))
        except TallyError as error:
            outcomes[position] = error
    if accepted:
        for item, outcome in zip(
            accepted, _post_accepted(session, Journal(wallets), accepted, now, policy), strict=True
        ):
            outcomes[item.position] = outcome
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _timed_out(session: Session, wallets: dict[int, WalletState], now: datetime) -> set[int]:
    """The members with a hold past its timeout (only a wallet holding points can have one)."""
    holding = [member_id for member_id, wallet in wallets.items() if wallet.held]
    if not holding:
        return set()
    return {member_id for member_id, _hold in repository.timed_out_hold_ids(session, holding, now)}


def _accept(
    position: int,
    order: Order,
    statuses: dict[int, MemberStatus],
    now: datetime,
    policy: Policy,
) -> _Accepted:
    """The checks that need no more than the member's status."""
    if order.kind not in (EntryKind.EARN, EntryKind.REDEEM):
        raise ValueError(f"an order is an earn or a redeem, not {order.kind}")
    partner_id = require_partner(order.origin)
    check_points(order.points, policy)
    expires = (
        checked_expiry(order.expires_at, now, policy) if order.kind is EntryKind.EARN else None
    )
    members.check_usable(order.member_id, statuses.get(order.member_id))
    return _Accepted(position, order, partner_id, expires)


def _post_accepted(
    session: Session,
    journal: Journal,
    accepted: Sequence[_Accepted],
    now: datetime,
    policy: Policy,
) -> list[Outcome]:
    spenders = [item.order.member_id for item in accepted if item.expires is None]
    earners = [item.order.member_id for item in accepted if item.expires is not None]
    lots = repository.live_lots(session, spenders, now)
    live = repository.live_points_by_expiry(session, earners, now)
    zone = ZoneInfo(policy.zone_name)
    new_lots: list[tuple[int, uuid.UUID, int, datetime]] = []
    taken: list[tuple[uuid.UUID, int, int]] = []
    outcomes: list[Outcome] = []
    for item in accepted:
        order, member_id, points = item.order, item.order.member_id, item.order.points
        try:
            if item.expires is not None:
                legs = [
                    Leg(partner_issued(item.partner_id), -points),
                    Leg(member_available(member_id), points),
                ]
                entry_id = journal.add(_draft(order, legs, now))
                new_lots.append((member_id, entry_id, points, item.expires))
                after = [*live[member_id], (item.expires, points)]
                details: dict[str, Any] = {"points": points, "expires_at": item.expires.isoformat()}
            else:
                plan = plan_consumption(lots[member_id], points)
                if plan is None:
                    raise InsufficientPoints(
                        f"Member {member_id} does not have enough points.", member_id=member_id
                    )
                legs = [
                    Leg(member_available(member_id), -points),
                    Leg(partner_redeemed(item.partner_id), points),
                ]
                entry_id = journal.add(_draft(order, legs, now))
                taken.extend((entry_id, lot_id, -amount) for lot_id, amount in plan)
                after = _left_after(lots[member_id], dict(plan))
                details = {"points": points}
        except TallyError as error:
            outcomes.append(error)
            continue
        balance = balance_of(after, journal.wallets[member_id].held, zone)
        outcomes.append(Posted(entry_id, member_id, details, balance))
    journal.write(session)
    repository.insert_lots(session, new_lots, now)
    if not repository.change_lots(session, taken):
        raise ConcurrentChange("A concurrent request changed the same data; retry.")
    return outcomes


def _draft(order: Order, legs: list[Leg], now: datetime) -> Draft:
    return Draft(
        kind=order.kind,
        legs=legs,
        origin=order.origin,
        member_id=order.member_id,
        now=now,
        reference=order.reference,
        source_key=source_key(order.kind, order.origin, order.reference),
    )


def _left_after(lots: Sequence[LotView], taken: dict[int, int]) -> list[tuple[datetime, int]]:
    """``(expires_at, remaining)`` of live lots once ``taken`` (lot id → points) is spent."""
    return [(lot.expires_at, lot.remaining - taken.get(lot.id, 0)) for lot in lots]
