"""Earns, redeems, holds and captures, one or many at once: the members' wallets and lots are
read once, every order is decided in memory, and each kind of row is written in one statement.

This is how every earn, redeem, hold and capture is posted: a single one is a batch of one, and
the API's group commit hands over all the orders that reach a worker together (ADR 6, ADR 16).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
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
    member_of,
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

KINDS = frozenset(
    {EntryKind.EARN, EntryKind.REDEEM, EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.VOID}
)
CLOSING = (EntryKind.CAPTURE, EntryKind.VOID)  # orders on a hold
BASIS_POINTS = 10_000
MAX_LINES = 20


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an earn: ``points`` funded by account ``funding`` (the partner's issuance
    account when ``None``), valid until ``expires_at`` (the order's expiry, else the programme
    default, when ``None``), and why they were given (``reason``, e.g. "rule X of campaign Y")."""

    points: int
    expires_at: datetime | None = None
    reason: str | None = None
    funding: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A partner's write on a member's points: an earn (points credited as a new lot), a redeem
    (points spent, oldest-expiring lots first), a hold (points reserved the same way until
    ``hold_seconds`` from now), the capture of hold ``hold_id`` (``points`` of it spent, the
    rest given back to the lots they came from) or its void (every point given back). An
    earn's ``lines`` (when given; their points sum to ``points``) each become a lot of their
    own, funded by their own account."""

    kind: EntryKind
    origin: Origin
    member_id: int
    points: int
    reference: str
    expires_at: datetime | None = None  # earn only: the programme's default when absent
    hold_seconds: int | None = None  # hold only
    hold_id: uuid.UUID | None = None  # capture only
    lines: tuple[Line, ...] = ()  # earn only: none is one line of ``points``


def scaled(order: Order, multiplier_bp: int) -> Order:
    """The earn ``order`` with each line's points multiplied (basis points, rounded down)."""
    lines = tuple(
        replace(line, points=line.points * multiplier_bp // BASIS_POINTS) for line in order.lines
    )
    points = (
        sum(line.points for line in lines)
        if lines
        else order.points * multiplier_bp // BASIS_POINTS
    )
    return replace(order, points=points, lines=lines)


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


def void_order(origin: Origin, found: HeldRow, now: datetime) -> Order:
    """The order giving every point of hold ``found`` back at ``now``; like a capture, refused
    at once, writing nothing, when the hold is past its timeout."""
    held = found.hold
    if held.expires_at <= now:
        raise HoldNotActive(f"Hold {held.id} is not active.")
    return Order(
        EntryKind.VOID, origin, held.member_id, held.points, held.reference, hold_id=held.id
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

    The orders go in rounds that name each member once (a member's consecutive earns together),
    so a member's orders see each other in turn. Raises (and the caller rolls back) only when
    the database refuses a write, such as a reference used before.

    Holds of these members past their timeout are lapsed first, so the orders see the balance
    every reader sees; recording a lapse may wait for a lock, so without ``wait`` those
    members' orders are :data:`BUSY` instead (asked again by a writer that waits).
    """
    return in_rounds(
        orders,
        lambda order: order.member_id,
        lambda distinct: _post_round(session, distinct, now, policy, wait),
        shares=lambda order: order.kind is EntryKind.EARN,
    )


def posted(outcome: Outcome) -> Posted:
    """The posted entry of a single order, or its refusal raised."""
    if isinstance(outcome, TallyError):
        raise outcome
    assert isinstance(outcome, Posted), "an order waited for is never busy"
    return outcome


@dataclass(frozen=True, slots=True)
class _Credit:
    """An earn's line as it posts: a lot of ``points`` until ``expires_at``, from ``funding``."""

    points: int
    expires_at: datetime
    funding: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    position: int
    order: Order
    partner_id: int
    credits: tuple[_Credit, ...]  # earn: its lines, each with its expiry and funding account
    held: HeldRow | None = None  # capture: the hold, as read under its member's lock


def _post_round(
    session: Session, orders: Sequence[Order], now: datetime, policy: Policy, wait: bool
) -> list[Outcome]:
    """Post orders of distinct members (or several earns of one, in their order)."""
    outcomes: list[Outcome | None] = [None] * len(orders)
    # Locked up front, refused orders' members too: one statement instead of two.
    members = [order.member_id for order in orders]
    wallets, statuses = repository.lock_wallets(session, members, wait=wait)
    lapsing = _timed_out(session, wallets, now)
    if lapsing and wait:  # recorded now (the wallets move), then read again
        lapse_due(session, sorted(lapsing), now)
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
    credits = _credits(order, partner_id, now, policy) if order.kind is EntryKind.EARN else ()
    if order.kind is EntryKind.HOLD and not 1 <= (order.hold_seconds or 0) <= (
        policy.max_hold_seconds
    ):
        raise ValidationFailed(
            f"expires_in_seconds must be from 1 to {policy.max_hold_seconds}.",
            field="expires_in_seconds",
        )
    found = held.get(order.hold_id) if order.hold_id is not None else None
    if order.kind in CLOSING and (found is None or found.hold.member_id != order.member_id):
        raise ConcurrentChange(f"Hold {order.hold_id} moved to another member meanwhile; retry.")
    # Voiding spends nothing: a frozen member's hold may be given back.
    members.check_usable(
        order.member_id,
        statuses.get(order.member_id),
        allow_frozen=order.kind is EntryKind.VOID,
    )
    if found is not None and (
        found.hold.status is not HoldStatus.ACTIVE or found.hold.expires_at <= now
    ):
        raise HoldNotActive(f"Hold {order.hold_id} is not active.")
    return _Accepted(position, order, partner_id, credits, found)


def _credits(order: Order, partner_id: int, now: datetime, policy: Policy) -> tuple[_Credit, ...]:
    """An earn's lines, checked: each within the points limit and with a valid expiry, summing
    to the order's points, funded by a partner or system account (never a member's)."""
    lines = order.lines or (Line(order.points),)
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"An earn has at most {MAX_LINES} lines.", field="lines")
    if sum(line.points for line in lines) != order.points:
        raise ValidationFailed("points must be the sum of the lines' points.", field="lines")
    credits = []
    for line in lines:
        check_points(line.points, policy)
        funding = line.funding or partner_issued(partner_id)
        if member_of(funding) is not None:
            raise ValueError(f"a member account funds no earn: {funding}")
        expires = checked_expiry(line.expires_at or order.expires_at, now, policy)
        credits.append(_Credit(line.points, expires, funding, line.reason))
    return tuple(credits)


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
    if item.credits:  # an earn
        return _earn(item, journal, live, effects, now)
    if item.held is not None:  # a capture or a void
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


def _earn(
    item: _Accepted,
    journal: Journal,
    live: dict[int, list[tuple[datetime, int]]],
    effects: _Effects,
    now: datetime,
) -> Decision:
    """Credit each line as a lot of its own, each funding account debited once."""
    order, member_id = item.order, item.order.member_id
    funded: dict[str, int] = {}
    for credit in item.credits:
        funded[credit.funding] = funded.get(credit.funding, 0) + credit.points
    legs = [Leg(account, -points) for account, points in funded.items()]
    legs.append(Leg(member_available(member_id), order.points))
    lines = [
        {
            "points": credit.points,
            "expires_at": credit.expires_at.isoformat(),
            "reason": credit.reason,
            "funding": credit.funding,
        }
        for credit in item.credits
    ]
    plain = len(lines) == 1 and not order.lines
    entry_id = journal.add(_draft(order, legs, now, None if plain else {"lines": lines}))
    for credit in item.credits:
        effects.new_lots.append((member_id, entry_id, credit.points, credit.expires_at))
    by_expiry: dict[datetime, int] = defaultdict(int)
    for expires_at, points in [*live[member_id], *((c.expires_at, c.points) for c in item.credits)]:
        by_expiry[expires_at] += points
    after = list(by_expiry.items())
    live[member_id] = after  # the member's next earn of the round sees these lots
    details: dict[str, Any] = {"points": order.points}
    if plain:
        details["expires_at"] = lines[0]["expires_at"]
    else:
        details["lines"] = [
            {key: line[key] for key in ("points", "expires_at", "reason")} for line in lines
        ]
    return entry_id, details, after, None


def _capture(
    found: HeldRow,
    index: int,
    order: Order,
    journal: Journal,
    live: dict[int, list[tuple[datetime, int]]],
    effects: _Effects,
    now: datetime,
) -> Decision:
    """Spend ``order.points`` of the hold (a void spends none); the rest goes back to the
    member."""
    hold, member_id = found.hold, order.member_id
    voiding = order.kind is EntryKind.VOID
    captured = 0 if voiding else order.points
    rest = hold.points - captured
    legs = [Leg(member_held(member_id), -hold.points)]
    if captured:
        legs.append(Leg(partner_redeemed(hold.partner_id or 0), captured))
    if rest:
        legs.append(Leg(member_available(member_id), rest))
    outcome: dict[str, Any] = (
        {"released": rest} if voiding else {"captured": captured, "released": rest}
    )
    entry_id = journal.add(
        Draft(
            kind=order.kind,
            legs=legs,
            origin=order.origin,
            member_id=member_id,
            now=now,
            reference=hold.reference,
            details={"hold_id": str(hold.id), **outcome},
        )
    )
    status = HoldStatus.VOIDED if voiding else HoldStatus.CAPTURED
    closed = replace(hold, status=status, captured_points=captured)
    effects.closed.append((closed, entry_id))
    after: list[tuple[datetime, int]] | None = live[member_id]
    if rest:
        effects.released.append((index, found, entry_id, rest))
        after = None
    return entry_id, outcome, after, closed


def _draft(
    order: Order, legs: list[Leg], now: datetime, details: dict[str, Any] | None = None
) -> Draft:
    return Draft(
        kind=order.kind,
        legs=legs,
        origin=order.origin,
        member_id=order.member_id,
        now=now,
        reference=order.reference,
        source_key=source_key(order.kind, order.origin, order.reference),
        details=details,
    )


def _left_after(lots: Sequence[LotView], taken: dict[int, int]) -> list[tuple[datetime, int]]:
    """``(expires_at, remaining)`` of live lots once ``taken`` (lot id → points) is spent."""
    return [(lot.expires_at, lot.remaining - taken.get(lot.id, 0)) for lot in lots]
