"""The scheduled auctions job: close the auctions whose end has passed. Idempotent.

Closing locks the auction row and records the close with an update conditional on its still
being open, so two workers (or a run and a late bid) never close one auction twice; the
winner's hold is captured for the price (the rest goes back to the member) in the same
transaction, and every bidder is told.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from tally.auctions import domain, repository
from tally.auctions import service as auctions
from tally.auctions.domain import AuctionStatus, UnsoldReason
from tally.auctions.models import Auction
from tally.errors import HoldNotActive
from tally.job_failures.service import Failure, isolating
from tally.job_failures.service import record as record_failures
from tally.ledger import holds
from tally.ledger.domain import HoldStatus, Origin, Policy
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType

UnitOfWork = Callable[[], AbstractContextManager[Session]]
#: What a sold auction makes in its close's transaction (the mall's order), given its result.
OnSold = Callable[[Session, auctions.AuctionResult, datetime, Policy], object]


@dataclass(frozen=True, slots=True)
class AuctionsReport:
    sold: int
    unsold: int
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True, slots=True)
class Closed:
    """One auction this run closed."""

    auction_id: uuid.UUID
    status: AuctionStatus


def close_due(
    unit_of_work: UnitOfWork,
    as_of: datetime,
    policy: Policy,
    batch: int = 20,
    on_sold: OnSold | None = None,
) -> AuctionsReport:
    """Close every open auction whose end has passed by ``as_of`` (an auction ends at its
    ``ends_at`` exactly), each sold one handed to ``on_sold`` in the same transaction. A
    batch is one transaction; an auction that cannot be closed is isolated, recorded in
    ``job_failures`` and tried again next run."""
    sold = unsold = 0
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            ids = repository.due(session, as_of, batch, skip=[uuid.UUID(f.row_id) for f in failed])
        if not ids:
            break
        done, failures = isolating(
            unit_of_work,
            ids,
            partial(_close_all, as_of=as_of, policy=policy, on_sold=on_sold),
            "auction",
        )
        for closed in done:
            sold += sum(1 for item in closed if item.status is AuctionStatus.SOLD)
            unsold += sum(1 for item in closed if item.status is AuctionStatus.UNSOLD)
        failed.extend(failures)
    record_failures(unit_of_work, "auctions", failed)
    return AuctionsReport(sold=sold, unsold=unsold, failures=tuple(failed))


def _close_all(
    session: Session,
    ids: Sequence[uuid.UUID],
    as_of: datetime,
    policy: Policy,
    on_sold: OnSold | None,
) -> list[Closed]:
    closed = []
    for auction_id in ids:
        found = close_one(session, auction_id, as_of, policy)
        if found is None:
            continue
        closed.append(found)
        if on_sold is not None and found.status is AuctionStatus.SOLD:
            result = auctions.result_for_order(session, found.auction_id)
            assert result is not None  # sold
            on_sold(session, result, as_of, policy)
    return closed


def close_one(
    session: Session, auction_id: uuid.UUID, as_of: datetime, policy: Policy
) -> Closed | None:
    """Close the auction if it is open and ended by ``as_of`` (``None``: another run did, or a
    bid moved its end), in the caller's transaction."""
    row = repository.lock_auction(session, auction_id)
    if row is None or row.status is not AuctionStatus.OPEN or row.ends_at > as_of:
        return None
    origin = Origin(partner_id=row.partner_id)
    final = domain.outcome(auctions.standing_of(row), row.reserve)
    values: dict[str, Any] = {"closed_at": as_of}
    status = AuctionStatus.UNSOLD
    reason = final.reason
    if row.leader_hold_id is not None and final.winner is not None and final.price is not None:
        try:
            _hold, posted = holds.capture_hold(
                session, origin, row.leader_hold_id, final.price, as_of, policy
            )
        except HoldNotActive:
            reason = UnsoldReason.HOLD_LAPSED
        else:
            status = AuctionStatus.SOLD
            values.update(
                winner_member_id=final.winner,
                final_price=final.price,
                capture_entry_id=posted.entry_id,
            )
    _release_the_rest(session, row, origin, as_of, policy)
    if reason is not None and status is AuctionStatus.UNSOLD:
        values["unsold_reason"] = reason.value
    if not repository.close(session, row.id, status, values, as_of):
        return None  # cannot happen under the lock; the transaction rolls back nothing
    _tell(session, row, status, values, as_of)
    return Closed(row.id, status)


def _release_the_rest(
    session: Session, row: Auction, origin: Origin, as_of: datetime, policy: Policy
) -> None:
    """Void every hold of the auction's bids still active (the leader's, when unsold)."""
    active = repository.active_hold_ids(session, row.id)
    for hold_id, found in holds.find(session, active).items():
        if found.hold.status is HoldStatus.ACTIVE and found.hold.expires_at > as_of:
            holds.void_hold(session, origin, hold_id, as_of, policy)


def _tell(
    session: Session,
    row: Auction,
    status: AuctionStatus,
    values: dict[str, Any],
    as_of: datetime,
) -> None:
    """``auction.won`` to the winner, ``auction.lost`` to every other bidder, and
    ``auction.closed`` for the owner."""
    winner = values.get("winner_member_id")
    price = values.get("final_price")
    common = {"auction_id": str(row.id), "item": row.item_code}
    events = [
        Event(
            EventType.AUCTION_CLOSED,
            {
                **common,
                "status": status.value,
                "winner_member_id": winner,
                "price": price,
                "transaction_id": str(values["capture_entry_id"]) if winner else None,
                "reason": values.get("unsold_reason"),
                "closed_at": as_of.isoformat(),
            },
            as_of,
            partner_id=row.partner_id,
        )
    ]
    for member_id in repository.bidders(session, row.id):
        won = member_id == winner
        data = {**common, "member_id": member_id, "price": price}
        if won:
            data["transaction_id"] = str(values["capture_entry_id"])
        else:
            data["reason"] = values.get("unsold_reason") or "outbid"
        events.append(
            Event(
                EventType.AUCTION_WON if won else EventType.AUCTION_LOST,
                data,
                as_of,
                member_id=member_id,
                # The seller learns who won (to fulfil the order), not who else bid.
                partner_id=row.partner_id if won else None,
            )
        )
    outbox.emit(session, events, as_of)


@dataclass(frozen=True, slots=True)
class AuctionsPreview:
    due: int
    sample: tuple[uuid.UUID, ...]


def preview(session: Session, as_of: datetime, sample: int = 5) -> AuctionsPreview:
    """The auctions :func:`close_due` would close at ``as_of`` (reads only)."""
    ids = repository.due(session, as_of, 10_000)
    return AuctionsPreview(len(ids), tuple(ids[:sample]))
