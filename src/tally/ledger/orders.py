"""Earns, redeems, holds and captures, one or many at once: the members' wallets and lots are
read once, every order is decided in memory, and each kind of row is written in one statement.

This is how every earn, redeem, hold and capture is posted: a single one is a batch of one, and
the API's group commit hands over all the orders that reach a worker together (ADR 6, ADR 16).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.errors import (
    ConcurrentChange,
    HoldNotActive,
    InsufficientPoints,
    TallyError,
    ValidationFailed,
)
from tally.kit.ids import uuid7
from tally.ledger import repository
from tally.ledger.domain import (
    HeldRow,
    HoldState,
    HoldStatus,
    Leg,
    LotView,
    Origin,
    Policy,
    WalletState,
    balance_of,
    in_rounds,
    member_available,
    member_held,
    partner_issued,
    partner_redeemed,
    plan_consumption,
    plan_release,
)
from tally.ledger.models import EntryKind
from tally.ledger.posting import (
    Draft,
    Journal,
    Posted,
    check_points,
    checked_expiry,
    require_partner,
    restore,
    source_key,
    still_consumed,
    with_clawback,
)
from tally.ledger.releases import lapse_due
from tally.members import service as members
from tally.members.models import MemberStatus

KINDS = frozenset({EntryKind.EARN, EntryKind.REDEEM, EntryKind.HOLD, EntryKind.CAPTURE})


@dataclass(frozen=True, slots=True)
class Order:
    """A partner's write on a member's points: an earn (points credited as a new lot), a redeem
    (points spent, oldest-expiring lots first), a hold (points reserved the same way until
    ``hold_seconds`` from now) or the capture of hold ``hold_id`` (``points`` of it spent, the
    rest given back to the lots they came from)."""

    kind: EntryKind
    origin: Origin
    member_id: int
    points: int
    reference: str
    expires_at: datetime | None = None  # earn only: the programme's default when absent
    hold_seconds: int | None = None  # hold only
    hold_id: uuid.UUID | None = None  # capture only


def hold_order(origin: Origin, member_id: int, points: int, reference: str, seconds: int) -> Order:
    """The order reserving ``points`` of the member's until ``seconds`` from when it posts."""
    return Order(EntryKind.HOLD, origin, member_id, points, reference, hold_seconds=seconds)


def capture_order(origin: Origin, found: HeldRow, points: int | None, now: datetime) -> Order:
    """The order capturing ``points`` of hold ``found`` (all of it when ``None``) at ``now``;
    the hold is read again, under its member's lock, when the order posts. A hold past its
    timeout has lapsed (whether or not that is recorded yet): refused at once, writing nothing."""
    held = found.hold
    captured = held.points if points is None else points
    if not 1 <= captured <= held.points:
        raise ValidationFailed(f"points must be from 1 to the held {held.points}.", field="points")
    if held.expires_at <= now:
        raise HoldNotActive(f"Hold {held.id} is not active.")
    return Order(
        EntryKind.CAPTURE,
        origin,
        held.member_id,
        captured,
        held.reference,
        hold_id=held.id,
    )


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
    the posted entry (with the member's balance after it, and the hold a hold or a capture
    made or closed) or the error that refused the order and wrote nothing for it. Without
    ``wait``, an order whose member's wallet another transaction holds is not posted
    (:data:`BUSY`) rather than waited for.

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
    expires: datetime | None  # earn: the new lot's expiry
    held: HeldRow | None = None  # capture: the hold, as read under its member's lock


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
    # Read again under the lock: a merge may have moved a hold, a lapse or a void closed it.
    held = repository.holds(
        session, [order.hold_id for order in orders if order.hold_id is not None]
    )
    accepted: list[_Accepted] = []
    for position, order in enumerate(orders):
        if not wait and (order.member_id not in wallets or order.member_id in lapsing):
            outcomes[position] = BUSY  # held elsewhere, no such member, or a hold to lapse
            continue
        try:
            accepted.append(_accept(position, order, statuses, held, now, policy))
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
    held: dict[uuid.UUID, HeldRow],
    now: datetime,
    policy: Policy,
) -> _Accepted:
    """The checks that need no more than the member's status (and a capture's hold)."""
    if order.kind not in KINDS:
        raise ValueError(f"an order is an earn, a redeem, a hold or a capture, not {order.kind}")
    partner_id = require_partner(order.origin)
    check_points(order.points, policy)
    expires = (
        checked_expiry(order.expires_at, now, policy) if order.kind is EntryKind.EARN else None
    )
    if order.kind is EntryKind.HOLD and not 1 <= (order.hold_seconds or 0) <= (
        policy.max_hold_seconds
    ):
        raise ValidationFailed(
            f"expires_in_seconds must be from 1 to {policy.max_hold_seconds}.",
            field="expires_in_seconds",
        )
    found = held.get(order.hold_id) if order.hold_id is not None else None
    if order.kind is EntryKind.CAPTURE and (
        found is None or found.hold.member_id != order.member_id
    ):
        raise ConcurrentChange(f"Hold {order.hold_id} moved to another member meanwhile; retry.")
    members.check_usable(order.member_id, statuses.get(order.member_id))
    if found is not None and (
        found.hold.status is not HoldStatus.ACTIVE or found.hold.expires_at <= now
    ):
        raise HoldNotActive(f"Hold {order.hold_id} is not active.")
    return _Accepted(position, order, partner_id, expires, found)


@dataclass
class _Effects:
    """What the accepted orders write besides the journal, gathered to be written together."""

    new_lots: list[tuple[int, uuid.UUID, int, datetime]]
    taken: list[tuple[uuid.UUID, int, int]]
    new_holds: list[HeldRow]
    closed: list[tuple[HoldState, uuid.UUID]]
    released: list[tuple[int, HeldRow, uuid.UUID, int]]  # (outcome index, hold, entry, points)


def _post_accepted(
    session: Session,
    journal: Journal,
    accepted: Sequence[_Accepted],
    now: datetime,
    policy: Policy,
) -> list[Outcome]:
    spending = (EntryKind.REDEEM, EntryKind.HOLD)
    spenders = [item.order.member_id for item in accepted if item.order.kind in spending]
    others = [item.order.member_id for item in accepted if item.order.kind not in spending]
    lots = repository.live_lots(session, spenders, now)
    live = repository.live_points_by_expiry(session, others, now)
    zone = ZoneInfo(policy.zone_name)
    effects = _Effects([], [], [], [], [])
    outcomes: list[Outcome] = []
    for item in accepted:
        member_id = item.order.member_id
        try:
            entry_id, details, after, hold = _decide(
                item, len(outcomes), journal, lots, live, effects, now
            )
        except TallyError as error:
            outcomes.append(error)
            continue
        balance = (
            None if after is None else balance_of(after, journal.wallets[member_id].held, zone)
        )
        outcomes.append(Posted(entry_id, member_id, details, balance, hold))
    journal.write(session)
    repository.insert_lots(session, effects.new_lots, now)
    if not repository.change_lots(session, effects.taken):
        raise ConcurrentChange("A concurrent request changed the same data; retry.")
    repository.insert_holds(session, effects.new_holds)
    if repository.close_holds(session, effects.closed, now) != len(effects.closed):
        raise ConcurrentChange("A concurrent request changed the same hold; retry.")
    for index, found, entry_id, points in effects.released:
        portions = plan_release(still_consumed(session, [found.entry_id]), points)
        clawed = restore(session, entry_id, found.hold.member_id, portions, now, policy)
        outcome = outcomes[index]
        assert isinstance(outcome, Posted)
        outcomes[index] = replace(outcome, details=with_clawback(outcome.details, clawed))
    return outcomes


Decision = tuple[uuid.UUID, dict[str, Any], list[tuple[datetime, int]] | None, HoldState | None]


def _decide(
    item: _Accepted,
    index: int,
    journal: Journal,
    lots: dict[int, list[LotView]],
    live: dict[int, list[tuple[datetime, int]]],
    effects: _Effects,
    now: datetime,
) -> Decision:
    """Post one accepted order (the ``index``-th outcome) in memory: ``(entry id, details,
    the member's live points after it — None when some go back to lots, so the balance is read
    once they have —, the hold made or closed)``; raises, changing nothing, when the member has
    too few points."""
    order, member_id, points = item.order, item.order.member_id, item.order.points
    if item.expires is not None:  # an earn
        legs = [
            Leg(partner_issued(item.partner_id), -points),
            Leg(member_available(member_id), points),
        ]
        entry_id = journal.add(_draft(order, legs, now))
        effects.new_lots.append((member_id, entry_id, points, item.expires))
        after = [*live[member_id], (item.expires, points)]
        return entry_id, {"points": points, "expires_at": item.expires.isoformat()}, after, None
    if item.held is not None:  # a capture
        return _capture(item.held, index, order, journal, live, effects, now)
    plan = plan_consumption(lots[member_id], points)
    if plan is None:
        raise InsufficientPoints(
            f"Member {member_id} does not have enough points.", member_id=member_id
        )
    into = (
        member_held(member_id)
        if order.kind is EntryKind.HOLD
        else partner_redeemed(item.partner_id)
    )
    legs = [Leg(member_available(member_id), -points), Leg(into, points)]
    entry_id = journal.add(_draft(order, legs, now))
    effects.taken.extend((entry_id, lot_id, -amount) for lot_id, amount in plan)
    after = _left_after(lots[member_id], dict(plan))
    if order.kind is not EntryKind.HOLD:
        return entry_id, {"points": points}, after, None
    hold = HoldState(
        id=uuid7(),
        member_id=member_id,
        partner_id=item.partner_id,
        points=points,
        captured_points=0,
        status=HoldStatus.ACTIVE,
        reference=order.reference,
        expires_at=now + timedelta(seconds=order.hold_seconds or 0),
        created_at=now,
    )
    effects.new_holds.append(HeldRow(hold, entry_id))
    return entry_id, {"points": points, "hold_id": str(hold.id)}, after, hold


def _capture(
    found: HeldRow,
    index: int,
    order: Order,
    journal: Journal,
    live: dict[int, list[tuple[datetime, int]]],
    effects: _Effects,
    now: datetime,
) -> Decision:
    """Spend ``order.points`` of the hold; the rest goes back to the member."""
    hold, member_id, captured = found.hold, order.member_id, order.points
    rest = hold.points - captured
    legs = [
        Leg(member_held(member_id), -hold.points),
        Leg(partner_redeemed(hold.partner_id or 0), captured),
    ]
    if rest:
        legs.append(Leg(member_available(member_id), rest))
    entry_id = journal.add(
        Draft(
            kind=EntryKind.CAPTURE,
            legs=legs,
            origin=order.origin,
            member_id=member_id,
            now=now,
            reference=hold.reference,
            details={"hold_id": str(hold.id), "captured": captured, "released": rest},
        )
    )
    closed = replace(hold, status=HoldStatus.CAPTURED, captured_points=captured)
    effects.closed.append((closed, entry_id))
    after: list[tuple[datetime, int]] | None = live[member_id]
    if rest:
        effects.released.append((index, found, entry_id, rest))
        after = None
    return entry_id, {"captured": captured, "released": rest}, after, closed


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
