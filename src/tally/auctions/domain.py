"""Points auctions: proxy bidding, the soft close and the hidden reserve (pure: no I/O).

A member bids the most it would pay (its *maximum*); the auction bids for it, as little as it
takes to lead. The *leader* is the member with the highest maximum (equal maxima: the earlier
bid); the *price* is the lowest that beats the runner-up's maximum by one increment, never
above the leader's maximum and never below the start; once the leader's maximum meets the
hidden reserve, the price is at least the reserve (so a lone bidder cannot win below it). A
new bid must reach the current price plus one increment (the start, for the first bid); the
leader may raise its own maximum above what it was. An accepted bid that moves the price or the
lead in the last ``soft_close_seconds`` pushes the end to that many seconds after it, never past
the latest end the auction allows.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Auctions last at most this long, extensions included, so a bid's hold outlives the close.
CLOSE_GRACE_SECONDS = 24 * 3600
DEFAULT_MAX_EXTENSION_SECONDS = 3600


class AuctionStatus(enum.StrEnum):
    """What is stored: bidding (``open``) until the close job records ``sold`` or ``unsold``."""

    OPEN = "open"
    SOLD = "sold"
    UNSOLD = "unsold"


class Phase(enum.StrEnum):
    """What callers see at a moment: not started, taking bids, ended (awaiting its close), or
    the close's outcome."""

    SCHEDULED = "scheduled"
    OPEN = "open"
    ENDED = "ended"
    SOLD = "sold"
    UNSOLD = "unsold"


class UnsoldReason(enum.StrEnum):
    NO_BIDS = "no_bids"
    RESERVE_NOT_MET = "reserve_not_met"
    HOLD_LAPSED = "hold_lapsed"  # the winner's hold timed out before the close was recorded


@dataclass(frozen=True, slots=True)
class Increment:
    """From a price of ``start`` points on, bids go up by ``step``."""

    start: int
    step: int


@dataclass(frozen=True, slots=True)
class Rules:
    """What an auction fixes when it is created."""

    start_points: int
    increments: tuple[Increment, ...]
    reserve: int | None
    soft_close_seconds: int
    latest_end: datetime  # the scheduled end plus the maximum extension


@dataclass(frozen=True, slots=True)
class Bid:
    """A member's maximum; ``seq`` orders the bids of one auction (1, 2, …)."""

    member_id: int
    max_points: int
    seq: int


@dataclass(frozen=True, slots=True)
class Standing:
    """Who leads (``None``: no bid yet), with which maximum, at which price."""

    leader: Bid | None
    runner_up: Bid | None
    price: int

    def reserve_met(self, reserve: int | None) -> bool:
        """Whether the leader's maximum reaches the reserve (no reserve: any bid does)."""
        if self.leader is None:
            return False
        return reserve is None or self.leader.max_points >= reserve


class Refusal(enum.StrEnum):
    TOO_LOW = "too_low"  # below the current price plus one increment
    NOT_ABOVE_OWN = "not_above_own"  # the leader bidding no more than its own maximum


@dataclass(frozen=True, slots=True)
class Decision:
    """What a bid does: refused (``refusal``, and the ``minimum`` it needed), or accepted as
    ``bid`` with the standing after it, the member it displaced from the lead (``outbid``: its
    hold is released) and the end."""

    refusal: Refusal | None
    minimum: int
    before: Standing
    after: Standing
    bid: Bid | None
    outbid: int | None
    ends_at: datetime

    @property
    def bidder_leads(self) -> bool:
        """Whether the bid leads after it (else it was outbid at once by a higher maximum)."""
        return self.bid is not None and self.after.leader == self.bid


def check_increments(increments: Sequence[Increment]) -> str | None:
    """Why ``increments`` are not a valid ladder, or ``None``: the first starts at 0, each
    later one above the one before, every step positive."""
    if not increments:
        return "at least one increment is needed"
    if increments[0].start != 0:
        return "the first increment starts from 0"
    for before, after in itertools.pairwise(increments):
        if after.start <= before.start:
            return "each increment starts above the one before"
    if any(item.step <= 0 for item in increments):
        return "every step is positive"
    return None


def increment_at(increments: Sequence[Increment], price: int) -> int:
    """The step that applies at ``price``: that of the last increment starting at or below it."""
    step = increments[0].step
    for item in increments:
        if item.start > price:
            break
        step = item.step
    return step


def best_bids(bids: Iterable[Bid]) -> list[Bid]:
    """Each member's highest maximum (the bid that set it), best first: higher maximum first,
    equal maxima by the earlier bid."""
    best: dict[int, Bid] = {}
    for bid in bids:
        known = best.get(bid.member_id)
        if known is None or bid.max_points > known.max_points:
            best[bid.member_id] = bid
    return sorted(best.values(), key=lambda bid: (-bid.max_points, bid.seq))


def standing(bids: Iterable[Bid], rules: Rules) -> Standing:
    """The leader, runner-up and price the accepted ``bids`` make."""
    ranked = best_bids(bids)
    if not ranked:
        return Standing(None, None, rules.start_points)
    leader = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    price = rules.start_points
    if runner_up is not None:
        beat = runner_up.max_points + increment_at(rules.increments, runner_up.max_points)
        price = max(price, min(leader.max_points, beat))
    if rules.reserve is not None and leader.max_points >= rules.reserve:
        price = max(price, rules.reserve)
    return Standing(leader, runner_up, price)


def minimum_bid(current: Standing, rules: Rules) -> int:
    """The least maximum a new bid may name: the start for the first, else the current price
    plus the increment at that price."""
    if current.leader is None:
        return rules.start_points
    return current.price + increment_at(rules.increments, current.price)


def extended_end(ends_at: datetime, now: datetime, rules: Rules) -> datetime:
    """The end after a bid that moved the auction at ``now``: ``soft_close_seconds`` after the
    bid when it came in the last ``soft_close_seconds``, never past ``rules.latest_end`` and
    never earlier than it was."""
    if rules.soft_close_seconds <= 0 or ends_at - now > timedelta(seconds=rules.soft_close_seconds):
        return ends_at
    pushed = now + timedelta(seconds=rules.soft_close_seconds)
    return max(ends_at, min(pushed, rules.latest_end))


def place(
    bids: Sequence[Bid],
    member_id: int,
    max_points: int,
    now: datetime,
    ends_at: datetime,
    rules: Rules,
    seq: int | None = None,
) -> Decision:
    """Decide a bid of ``max_points`` by ``member_id`` at ``now`` on an auction whose accepted
    bids are ``bids`` (it is open: the caller checked the time). ``bids`` may be only each
    member's best, or only the two best of those: nothing else decides the standing. ``seq``
    is the new bid's place among all the auction's bids (default: after the last of ``bids``)."""
    before = standing(bids, rules)
    minimum = minimum_bid(before, rules)
    leader = before.leader
    refusal: Refusal | None = None
    if leader is not None and leader.member_id == member_id and max_points <= leader.max_points:
        refusal = Refusal.NOT_ABOVE_OWN
        minimum = max(minimum, leader.max_points + 1)
    elif max_points < minimum:
        refusal = Refusal.TOO_LOW
    if refusal is not None:
        return Decision(refusal, minimum, before, before, None, None, ends_at)
    if seq is None:
        seq = max((bid.seq for bid in bids), default=0) + 1
    new = Bid(member_id, max_points, seq)
    after = standing([*bids, new], rules)
    assert after.leader is not None
    outbid = (
        leader.member_id
        if leader is not None and after.leader.member_id != leader.member_id
        else None
    )
    moved = after.price != before.price or (
        leader is None or after.leader.member_id != leader.member_id
    )
    end = extended_end(ends_at, now, rules) if moved else ends_at
    return Decision(None, minimum, before, after, new, outbid, end)


def phase(status: AuctionStatus, starts_at: datetime, ends_at: datetime, now: datetime) -> Phase:
    """What an auction is at ``now``."""
    if status is AuctionStatus.SOLD:
        return Phase.SOLD
    if status is AuctionStatus.UNSOLD:
        return Phase.UNSOLD
    if now < starts_at:
        return Phase.SCHEDULED
    return Phase.OPEN if now < ends_at else Phase.ENDED


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an auction closes: sold to ``winner`` at ``price``, or unsold and why."""

    winner: int | None
    price: int | None
    reason: UnsoldReason | None


def outcome(final: Standing, reserve: int | None) -> Outcome:
    """The close's outcome from the final standing."""
    if final.leader is None:
        return Outcome(None, None, UnsoldReason.NO_BIDS)
    if not final.reserve_met(reserve):
        return Outcome(None, None, UnsoldReason.RESERVE_NOT_MET)
    return Outcome(final.leader.member_id, final.price, None)


def hold_seconds(latest_end: datetime, now: datetime) -> int:
    """How long a bid's hold lasts: until a day after the latest end (the close captures or
    releases it well before), at least one second."""
    left = latest_end + timedelta(seconds=CLOSE_GRACE_SECONDS) - now
    return max(1, int(left.total_seconds()))


def mask(member_id: int) -> str:
    """A member id as other watchers see the leader: the last two digits only."""
    text = str(member_id)
    return "•••" + text[-2:] if len(text) > 2 else "•••" + text
