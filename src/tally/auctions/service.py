"""Auction use cases: create, bid, read, and what a closed auction's order needs. Never commits.

A bid locks the auction row (a named helper), decides in :mod:`tally.auctions.domain`, moves the
holds through the ledger (:mod:`tally.ledger.orders`: the bid's maximum held, the member it
outbid given its points back, in the same transaction) and writes the auction conditionally on
the version it read (ADR 28). The holds are the auction owner's, so the points a winner pays
are redeemed with the partner that sold the item.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.auctions import domain, repository
from tally.auctions.domain import (
    AuctionStatus,
    Increment,
    Phase,
    Refusal,
    Rules,
    Standing,
)
from tally.auctions.models import Auction
from tally.errors import (
    AuctionClosed,
    AuctionNotOpen,
    BidTooLow,
    ConcurrentChange,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)
from tally.kit.ids import uuid7
from tally.ledger import holds, orders
from tally.ledger import service as ledger
from tally.ledger.domain import HoldState, Origin, Policy
from tally.ledger.posting import Posted, check_points
from tally.members import service as members
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType

MAX_SOFT_CLOSE_SECONDS = 24 * 3600
MAX_INCREMENTS = 20


@dataclass(frozen=True, slots=True)
class AuctionSpec:
    """What creating an auction asks for."""

    item_code: str
    item_names: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    start_points: int
    reserve: int | None
    increments: tuple[Increment, ...]
    soft_close_seconds: int
    max_extension_seconds: int = domain.DEFAULT_MAX_EXTENSION_SECONDS


@dataclass(frozen=True, slots=True)
class AuctionView:
    """An auction as anyone watching it may see it (``reserve`` and the maxima are the owner's
    and the bidders' own: see :class:`OwnerView`)."""

    id: uuid.UUID
    partner_id: int
    item_code: str
    item_names: dict[str, str]
    phase: Phase
    starts_at: datetime
    ends_at: datetime
    latest_end: datetime
    start_points: int
    price: int
    minimum_bid: int | None  # none once bidding is over
    leader_member_id: int | None
    bids: int
    reserve_met: bool
    has_reserve: bool
    increments: tuple[Increment, ...]
    soft_close_seconds: int
    version: int
    winner_member_id: int | None
    final_price: int | None
    unsold_reason: str | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class OwnerView:
    """What the auction's owner (and the operator) see besides: the reserve, the bids."""

    auction: AuctionView
    reserve: int | None
    capture_entry_id: uuid.UUID | None
    bids: list[BidView]


@dataclass(frozen=True, slots=True)
class BidView:
    seq: int
    member_id: int
    max_points: int
    price_after: int
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class BidResult:
    """A bid's answer: whether it leads, the bidder's maximum and hold, the auction after it."""

    seq: int
    member_id: int
    max_points: int
    leading: bool
    hold_id: uuid.UUID | None  # the hold kept for the bid while it leads
    auction: AuctionView


@dataclass(frozen=True, slots=True)
class AuctionResult:
    """What an order for a sold auction needs: who bought what, for how many points, and the
    capture that took them (the points are already spent; the order records the sale)."""

    auction_id: uuid.UUID
    partner_id: int
    item_code: str
    member_id: int
    points: int
    capture_transaction_id: uuid.UUID
    closed_at: datetime


def rules_of(row: Auction) -> Rules:
    """The bidding rules the auction fixed when it was created."""
    return Rules(
        start_points=row.start_points,
        increments=tuple(Increment(item["from"], item["step"]) for item in row.increments),
        reserve=row.reserve,
        soft_close_seconds=row.soft_close_seconds,
        latest_end=row.latest_end,
    )


def _invalid(detail: str, field: str) -> ValidationFailed:
    return ValidationFailed(detail, field=field)


def _check(spec: AuctionSpec, now: datetime, policy: Policy) -> None:
    """Refuse an auction that could not run as asked (nothing is written)."""
    for field, points in (("start_points", spec.start_points), ("reserve", spec.reserve)):
        if points is not None:
            try:
                check_points(points, policy)
            except ValidationFailed as error:
                raise _invalid(error.detail.replace("points", field, 1), field) from None
    if spec.reserve is not None and spec.reserve < spec.start_points:
        raise _invalid("reserve must not be below start_points.", "reserve")
    if spec.ends_at <= spec.starts_at:
        raise _invalid("ends_at must be after starts_at.", "ends_at")
    if spec.ends_at <= now:
        raise _invalid("ends_at must be in the future.", "ends_at")
    if not 0 <= spec.soft_close_seconds <= MAX_SOFT_CLOSE_SECONDS:
        raise _invalid(
            f"soft_close_seconds must be from 0 to {MAX_SOFT_CLOSE_SECONDS}.", "soft_close_seconds"
        )
    if spec.max_extension_seconds < 0:
        raise _invalid("max_extension_seconds must not be negative.", "max_extension_seconds")
    if len(spec.increments) > MAX_INCREMENTS:
        raise _invalid(f"at most {MAX_INCREMENTS} increments.", "increments")
    wrong = domain.check_increments(spec.increments)
    if wrong is not None:
        raise _invalid(f"increments: {wrong}.", "increments")
    latest = spec.ends_at + timedelta(seconds=spec.max_extension_seconds)
    longest = domain.hold_seconds(latest, max(spec.starts_at, now))
    if longest > policy.max_hold_seconds:
        limit = policy.max_hold_seconds - domain.CLOSE_GRACE_SECONDS
        raise _invalid(
            "An auction's bids are held until a day after its latest end, and a hold lasts at "
            f"most {policy.max_hold_seconds} seconds: from its start (or now) to its end plus "
            f"max_extension_seconds, an auction lasts at most {max(limit, 0)} seconds.",
            "ends_at",
        )


def create(
    session: Session,
    partner_id: int,
    spec: AuctionSpec,
    now: datetime,
    policy: Policy,
    *,
    staff_id: int | None = None,
) -> Auction:
    """A new auction of partner ``partner_id``'s item (created by staff ``staff_id`` when from
    the console), taking bids from ``starts_at`` to ``ends_at``."""
    _check(spec, now, policy)
    return repository.insert_auction(
        session,
        {
            "id": uuid7(),
            "partner_id": partner_id,
            "item_code": spec.item_code,
            "item_names": dict(spec.item_names),
            "starts_at": spec.starts_at,
            "scheduled_end": spec.ends_at,
            "ends_at": spec.ends_at,
            "latest_end": spec.ends_at + timedelta(seconds=spec.max_extension_seconds),
            "start_points": spec.start_points,
            "reserve": spec.reserve,
            "increments": [{"from": item.start, "step": item.step} for item in spec.increments],
            "soft_close_seconds": spec.soft_close_seconds,
            "status": AuctionStatus.OPEN,
            "price": spec.start_points,
            "bid_count": 0,
            "version": 1,
            "created_by_staff_id": staff_id,
            "created_at": now,
            "updated_at": now,
        },
    )


def standing_of(row: Auction) -> Standing:
    """The standing as the row keeps it (leader and price; the runner-up is not needed)."""
    leader = None
    if row.leader_member_id is not None and row.leader_max is not None:
        leader = domain.Bid(row.leader_member_id, row.leader_max, 0)
    return Standing(leader, None, row.price)


def view_of(row: Auction, now: datetime) -> AuctionView:
    """What anyone watching the auction sees at ``now``."""
    rules = rules_of(row)
    current = standing_of(row)
    phase = domain.phase(row.status, row.starts_at, row.ends_at, now)
    taking = phase in (Phase.SCHEDULED, Phase.OPEN)
    return AuctionView(
        id=row.id,
        partner_id=row.partner_id,
        item_code=row.item_code,
        item_names=dict(row.item_names),
        phase=phase,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        latest_end=row.latest_end,
        start_points=row.start_points,
        price=row.price,
        minimum_bid=domain.minimum_bid(current, rules) if taking else None,
        leader_member_id=row.leader_member_id,
        bids=row.bid_count,
        reserve_met=current.reserve_met(row.reserve),
        has_reserve=row.reserve is not None,
        increments=rules.increments,
        soft_close_seconds=row.soft_close_seconds,
        version=row.version,
        winner_member_id=row.winner_member_id,
        final_price=row.final_price,
        unsold_reason=row.unsold_reason,
        closed_at=row.closed_at,
    )


def get(session: Session, auction_id: uuid.UUID) -> Auction:
    """The auction, or ``not_found``."""
    row = repository.auction(session, auction_id)
    if row is None:
        raise NotFound(f"Auction {auction_id} does not exist.")
    return row


def view(session: Session, auction_id: uuid.UUID, now: datetime) -> AuctionView:
    """The auction as watchers see it at ``now``."""
    return view_of(get(session, auction_id), now)


def owner_view(session: Session, auction_id: uuid.UUID, now: datetime) -> OwnerView:
    """The auction with its reserve and bids, for its owner and the operator."""
    row = get(session, auction_id)
    return OwnerView(
        auction=view_of(row, now),
        reserve=row.reserve,
        capture_entry_id=row.capture_entry_id,
        bids=[
            BidView(bid.seq, bid.member_id, bid.max_points, bid.price_after, bid.placed_at)
            for bid in repository.bids_of(session, auction_id)
        ],
    )


def listing(
    session: Session, partner_id: int | None, now: datetime, limit: int = 100
) -> list[AuctionView]:
    """Auctions, newest first: partner ``partner_id``'s own (``None``: every one)."""
    return [view_of(row, now) for row in repository.listing(session, partner_id, limit)]


def open_auctions(session: Session, now: datetime, limit: int = 50) -> list[AuctionView]:
    """Auctions taking (or about to take) bids, for the member pages."""
    return [
        found
        for found in (view_of(row, now) for row in repository.listing(session, None, limit * 2))
        if found.phase in (Phase.SCHEDULED, Phase.OPEN, Phase.ENDED)
    ][:limit]


def my_maximum(session: Session, auction_id: uuid.UUID, member_id: int) -> int | None:
    """The member's own highest maximum in the auction (``None``: it has not bid)."""
    return repository.member_best(session, auction_id, member_id)


def _posted(outcomes: list[orders.Outcome]) -> list[Posted]:
    """The posted entries, or the first refusal raised (the caller's transaction rolls back)."""
    return [orders.posted(outcome) for outcome in outcomes]


def _hold_of(posted: Posted) -> HoldState:
    assert posted.hold is not None, "a hold order names its hold"
    return posted.hold


def bid(
    session: Session,
    auction_id: uuid.UUID,
    member_id: int,
    max_points: int,
    now: datetime,
    policy: Policy,
    *,
    channel_partner_id: int | None = None,
) -> BidResult:
    """Bid up to ``max_points`` for ``member_id`` (placed through the partner
    ``channel_partner_id``, or the member pages when ``None``).

    Refused, writing nothing: ``auction_not_open`` before the start, ``auction_closed`` from
    the end, ``bid_too_low`` (with ``minimum``) below the current price plus one increment or,
    for the leader, not above its own maximum, ``insufficient_points`` when the member cannot
    hold its maximum, and the member's own refusals (unknown, frozen, merged).
    """
    row = repository.lock_auction(session, auction_id)
    if row is None:
        raise NotFound(f"Auction {auction_id} does not exist.")
    phase = domain.phase(row.status, row.starts_at, row.ends_at, now)
    if phase is Phase.SCHEDULED:
        raise AuctionNotOpen(
            f"Auction {auction_id} takes bids from {row.starts_at.isoformat()}.",
            starts_at=row.starts_at.isoformat(),
        )
    if phase is not Phase.OPEN:
        raise AuctionClosed(
            f"Auction {auction_id} ended at {row.ends_at.isoformat()}.",
            ends_at=row.ends_at.isoformat(),
        )
    try:
        check_points(max_points, policy)
    except ValidationFailed as error:
        detail = error.detail.replace("points", "max_points", 1)
        raise ValidationFailed(detail, field="max_points") from None
    rules = rules_of(row)
    seq = row.bid_count + 1
    decision = domain.place(
        repository.best_bids(session, auction_id),
        member_id,
        max_points,
        now,
        row.ends_at,
        rules,
        seq,
    )
    if decision.bid is None:
        own = decision.refusal is Refusal.NOT_ABOVE_OWN
        raise BidTooLow(
            f"A bid must be at least {decision.minimum} points"
            + (" (above your own maximum)." if own else "."),
            minimum=decision.minimum,
            reason=(decision.refusal or Refusal.TOO_LOW).value,
        )
    leading = decision.bidder_leads
    made = _hold_maximum(session, row, decision, member_id, max_points, seq, now, policy)
    after = decision.after
    assert after.leader is not None
    values: dict[str, Any] = {
        "price": after.price,
        "leader_member_id": after.leader.member_id,
        "leader_max": after.leader.max_points,
        "ends_at": decision.ends_at,
    }
    if made is not None:
        values["leader_hold_id"] = made.id
    if not repository.save_standing(session, row, values, now):
        raise ConcurrentChange(f"Auction {auction_id} changed meanwhile; retry.")
    repository.insert_bid(
        session,
        {
            "auction_id": row.id,
            "seq": seq,
            "member_id": member_id,
            "max_points": max_points,
            "hold_id": made.id if made is not None else None,
            "partner_id": channel_partner_id,
            "price_after": after.price,
            "placed_at": now,
        },
    )
    if decision.outbid is not None:
        outbox.emit(
            session,
            [
                Event(
                    EventType.AUCTION_OUTBID,
                    {
                        "auction_id": str(row.id),
                        "item": row.item_code,
                        "member_id": decision.outbid,
                        "price": after.price,
                        "ends_at": decision.ends_at.isoformat(),
                    },
                    now,
                    member_id=decision.outbid,  # the seller is not told who bids
                )
            ],
            now,
        )
    return BidResult(
        seq=seq,
        member_id=member_id,
        max_points=max_points,
        leading=leading,
        hold_id=made.id if made is not None else None,
        auction=view_of(row, now),
    )


def _hold_maximum(
    session: Session,
    row: Auction,
    decision: domain.Decision,
    member_id: int,
    max_points: int,
    seq: int,
    now: datetime,
    policy: Policy,
) -> HoldState | None:
    """Hold the maximum of a bid that leads (giving the member it displaced, or the leader's
    own smaller maximum, back in the same ledger write), and return that hold. A bid a higher
    maximum outbids at once holds nothing: under its member's wallet lock, the one a hold would
    take, its spendable points must cover its maximum (``insufficient_points``)."""
    if not decision.bidder_leads:
        members.lock(session, member_id)
        zone = ZoneInfo(policy.zone_name)
        if ledger.balance(session, member_id, now, zone).available < max_points:
            raise InsufficientPoints(
                f"Member {member_id} does not have enough points.", member_id=member_id
            )
        return None
    origin = Origin(partner_id=row.partner_id)
    # Checked when the auction was made; a programme that shortened holds since caps it.
    hold_for = min(domain.hold_seconds(row.latest_end, now), policy.max_hold_seconds)
    writes: list[orders.Order] = []
    previous = row.leader_hold_id
    if previous is not None:
        found = holds.find(session, [previous]).get(previous)
        if found is None:
            raise ConcurrentChange(f"The leading hold of auction {row.id} moved; retry.")
        writes.append(orders.void_order(origin, found, now))
    reference = f"auction:{row.id}:{seq}"
    writes.append(orders.hold_order(origin, member_id, max_points, reference, hold_for))
    return _hold_of(_posted(orders.post_orders(session, writes, now, policy))[-1])


def result_for_order(session: Session, auction_id: uuid.UUID) -> AuctionResult | None:
    """What the mall order of a sold auction needs (``None`` while it is not sold): the buyer,
    the item, the points it paid and the capture transaction that took them."""
    row = get(session, auction_id)
    if row.status is not AuctionStatus.SOLD:
        return None
    assert row.winner_member_id is not None
    assert row.final_price is not None
    assert row.capture_entry_id is not None
    assert row.closed_at is not None
    return AuctionResult(
        auction_id=row.id,
        partner_id=row.partner_id,
        item_code=row.item_code,
        member_id=row.winner_member_id,
        points=row.final_price,
        capture_transaction_id=row.capture_entry_id,
        closed_at=row.closed_at,
    )


def check_holds(session: Session, auction_id: uuid.UUID) -> list[str]:
    """What is wrong with the auction's holds (nothing, when consistent): while it is open, the
    only active hold is the leader's, of its maximum; once closed, none is active."""
    row = get(session, auction_id)
    active = repository.active_holds(session, auction_id)
    problems: list[str] = []
    if row.status is AuctionStatus.OPEN and row.leader_member_id is not None:
        if active != [(row.leader_member_id, row.leader_max or 0)]:
            problems.append(f"active holds {active}, expected the leader's {row.leader_max}")
    elif active:
        problems.append(f"active holds {active}, expected none")
    return problems
