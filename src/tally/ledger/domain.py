"""Pure ledger rules: accounts, balanced postings, lot consumption, hashing. No I/O here."""

from __future__ import annotations

import enum
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from tally.errors import InsufficientPoints
from tally.kit.clock import local_date
from tally.kit.crypto import sha256_hex

T = TypeVar("T")
R = TypeVar("R")

SYSTEM_EXPIRED = "system:expired"
SYSTEM_ADJUSTMENTS = "system:adjustments"


def member_available(member_id: int) -> str:
    """The account holding a member's spendable points."""
    return f"member:{member_id}:available"


def member_held(member_id: int) -> str:
    """The account holding a member's reserved points."""
    return f"member:{member_id}:held"


def partner_issued(partner_id: int) -> str:
    """Contra account of the points a partner issued (negative: the partner owes them)."""
    return f"partner:{partner_id}:issued"


def partner_redeemed(partner_id: int) -> str:
    """Points members spent with a partner (the partner is reimbursed for them)."""
    return f"partner:{partner_id}:redeemed"


def member_of(account: str) -> tuple[int, str] | None:
    """``(member_id, "available"|"held")`` for a member account, else ``None``."""
    parts = account.split(":")
    if len(parts) == 3 and parts[0] == "member":
        return int(parts[1]), parts[2]
    return None


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting: ``amount`` points into ``account`` (negative: out of it)."""

    account: str
    amount: int


class UnbalancedEntry(ValueError):
    """Raised when postings do not sum to zero (a programming error, never user input)."""


def check_balanced(legs: Sequence[Leg], *, record_only: bool = False) -> None:
    """Every entry has at least two legs summing to zero, none zero unless ``record_only``.

    A record-only entry moves nothing (every leg zero) but still enters the member's chain: it
    records an event, such as the reversal of an earn whose points were all spent already.
    """
    if record_only:
        if len(legs) < 2 or any(leg.amount != 0 for leg in legs):
            raise UnbalancedEntry(f"a record-only entry has two or more zero legs: {legs!r}")
        return
    if len(legs) < 2 or any(leg.amount == 0 for leg in legs):
        raise UnbalancedEntry(f"an entry needs two or more non-zero legs: {legs!r}")
    if sum(leg.amount for leg in legs) != 0:
        raise UnbalancedEntry(f"postings do not balance: {legs!r}")


@dataclass(frozen=True, slots=True)
class LotView:
    """What consumption needs to know of a lot."""

    id: int
    remaining: int
    expires_at: datetime


def plan_consumption(lots: Iterable[LotView], points: int) -> list[tuple[int, int]] | None:
    """Take ``points`` from ``lots`` in the order given (earliest expiry first).

    Returns ``[(lot_id, taken), ...]`` or ``None`` when the lots hold too few points.
    """
    plan: list[tuple[int, int]] = []
    needed = points
    for lot in lots:
        if needed == 0:
            break
        taken = min(lot.remaining, needed)
        if taken > 0:
            plan.append((lot.id, taken))
            needed -= taken
    return plan if needed == 0 else None


def plan_release(
    consumed: Sequence[tuple[int, datetime, int]], points: int
) -> list[tuple[int, int]]:
    """Choose which consumed portions to give back when only ``points`` of them are returned.

    ``consumed`` is ``[(lot_id, expires_at, taken)]``. The latest-expiring portions go back first,
    so what stays spent is what would have expired soonest.
    """
    release: list[tuple[int, int]] = []
    left = points
    for lot_id, _expires, taken in sorted(
        consumed, key=lambda item: (item[1], item[0]), reverse=True
    ):
        if left == 0:
            break
        give = min(taken, left)
        release.append((lot_id, give))
        left -= give
    if left:
        raise ValueError("cannot release more than was consumed")
    return release


def entry_hash(
    *,
    entry_id: str,
    kind: str,
    created_at: datetime,
    partner_id: int | None,
    staff_id: int | None,
    member_id: int | None,
    reference: str | None,
    reverses_id: str | None,
    legs: Iterable[Leg],
    memo: str | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """The content hash of an entry: any change to it or to its postings changes the hash."""
    body = {
        "id": entry_id,
        "kind": kind,
        "at": created_at.isoformat(timespec="microseconds"),
        "partner": partner_id,
        "staff": staff_id,
        "member": member_id,
        "ref": reference,
        "reverses": reverses_id,
        "legs": sorted([leg.account, leg.amount] for leg in legs),
        "memo": memo,
        "details": details,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return sha256_hex(text.encode())


def link_hash(previous: str, seq: int, entry: str) -> str:
    """The next hash in a member's chain: binds the previous head, the position and the entry."""
    return sha256_hex(f"{previous}|{seq}|{entry}".encode())


@dataclass(frozen=True, slots=True)
class Origin:
    """Who caused an entry: a partner (through its API key) or a staff member."""

    partner_id: int | None = None
    staff_id: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Programme settings the ledger obeys."""

    validity_days: int
    reversal_grace_days: int
    zone_name: str
    max_points: int
    max_hold_seconds: int = 7 * 24 * 3600


class HoldStatus(enum.StrEnum):
    ACTIVE = "active"
    CAPTURED = "captured"
    VOIDED = "voided"
    LAPSED = "lapsed"


@dataclass(frozen=True, slots=True)
class HoldState:
    """A hold as a write left it: what its answer shows, without reading the row back."""

    id: uuid.UUID
    member_id: int
    partner_id: int | None
    points: int
    captured_points: int
    status: HoldStatus
    reference: str
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HeldRow:
    """A hold and the entry that reserved its points (whose lot portions it holds)."""

    hold: HoldState
    entry_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class HoldPortion:
    """What a hold still takes from one lot, and that lot as it stands: whose it is, its
    expiry, its size and what is left of it, and the earn that made it when that earn has been
    reversed meanwhile (``(partner_id, earn_id)``: the points are clawed back, not returned)."""

    lot_id: int
    taken: int
    lot_member_id: int
    expires_at: datetime
    lot_points: int
    lot_remaining: int
    reversed_earn: tuple[int, uuid.UUID] | None


def member_deltas(legs: Iterable[Leg]) -> dict[int, tuple[int, int]]:
    """Net ``(available, held)`` change per member touched by ``legs``."""
    deltas: dict[int, tuple[int, int]] = {}
    for leg in legs:
        owner = member_of(leg.account)
        if owner is None:
            continue
        member_id, part = owner
        available, held = deltas.get(member_id, (0, 0))
        if part == "available":
            available += leg.amount
        else:
            held += leg.amount
        deltas[member_id] = (available, held)
    return deltas


@dataclass(slots=True)
class WalletState:
    """A member's wallet as the ledger moves it: balances and the head of its hash chain."""

    available: int
    held: int
    seq: int
    head: str


@dataclass(frozen=True, slots=True)
class Link:
    """An entry's place in one member's chain."""

    member_id: int
    seq: int
    hash: str


def extend_chains(
    wallets: Mapping[int, WalletState], legs: Iterable[Leg], digest: str
) -> list[Link]:
    """Move the wallets ``legs`` touch and append the entry ``digest`` to their chains, in
    member order. Refuses (``insufficient_points``, nothing moved) when a balance would go
    negative or a member has no wallet."""
    deltas = member_deltas(legs)
    for member_id, (available, held) in sorted(deltas.items()):
        wallet = wallets.get(member_id)
        if wallet is None or wallet.available + available < 0 or wallet.held + held < 0:
            raise InsufficientPoints(
                f"Member {member_id} does not have enough points.", member_id=member_id
            )
    links: list[Link] = []
    for member_id, (available, held) in sorted(deltas.items()):
        wallet = wallets[member_id]
        wallet.available += available
        wallet.held += held
        wallet.seq += 1
        wallet.head = link_hash(wallet.head, wallet.seq, digest)
        links.append(Link(member_id, wallet.seq, wallet.head))
    return links


@dataclass(frozen=True, slots=True)
class Expiring:
    date: date
    points: int


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    held: int
    expiring: list[Expiring]


def balance_of(
    live_by_expiry: Iterable[tuple[datetime, int]], held: int, zone: ZoneInfo
) -> Balance:
    """Spendable points (the unexpired lots'), held points, and what expires on which local
    date: a lot that expires at local midnight is last usable on the day before."""
    by_date: dict[date, int] = defaultdict(int)
    for expires_at, points in live_by_expiry:
        if points:
            by_date[local_date(expires_at - timedelta(microseconds=1), zone)] += points
    return Balance(
        available=sum(by_date.values()),
        held=held,
        expiring=[Expiring(day, points) for day, points in sorted(by_date.items())],
    )


def in_rounds(
    items: Sequence[T],
    member_of: Callable[[T], int],
    post: Callable[[list[T]], list[R]],
    shares: Callable[[T], bool] | None = None,
) -> list[R]:
    """``post`` over ``items`` in rounds that name each member at most once — the k-th round
    holds each member's k-th item, so a member's items keep their order — and its results in
    the order of ``items``. Consecutive items of a member that ``shares`` (earns: they only add
    lots) go in one round together, in their order."""
    turns: dict[int, int] = {}
    sharing: dict[int, bool] = {}
    rounds: list[list[int]] = []
    for position, item in enumerate(items):
        member_id = member_of(item)
        joins = shares is not None and shares(item)
        if member_id in turns and joins and sharing[member_id]:
            turn = turns[member_id]
        else:
            turn = turns.get(member_id, -1) + 1
        turns[member_id], sharing[member_id] = turn, joins
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(position)
    results: dict[int, R] = {}
    for positions in rounds:
        done = post([items[i] for i in positions])
        results.update(zip(positions, done, strict=True))
    return [results[i] for i in range(len(items))]
