"""Posting machinery shared by every ledger use case: balanced entries, chains, lots."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.accounts import repository as accounts
from tally.accounts.domain import striped_deltas
from tally.config import Settings
from tally.errors import (
    ConcurrentChange,
    Forbidden,
    InsufficientPoints,
    PointsChanged,
    ValidationFailed,
)
from tally.kit.clock import end_of_day, local_date
from tally.kit.ids import uuid7
from tally.ledger import repository
from tally.ledger.domain import (
    Balance,
    HoldState,
    Leg,
    Link,
    Origin,
    Policy,
    WalletState,
    check_balanced,
    entry_hash,
    extend_chains,
    member_available,
    member_deltas,
    partner_issued,
    plan_consumption,
)
from tally.ledger.models import EntryKind
from tally.members import repository as member_repository
from tally.members import service as members
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType, entry_payload
from tally.programme.domain import Programme


def policy_for(programme: Programme, settings: Settings) -> Policy:
    """The ledger policy: validity and zone from the programme, operating limits from settings."""
    return Policy(
        validity_days=programme.currency.default_validity_days,
        reversal_grace_days=settings.reversal_grace_days,
        zone_name=programme.currency.timezone,
        max_points=settings.max_points_per_operation,
        max_hold_seconds=settings.hold_max_seconds,
    )


@dataclass(frozen=True, slots=True)
class Posted:
    """The outcome of a use case: the entry written (if any) and what it did; ``balance`` is
    the member's balance after it, where the use case worked it out already, and ``hold`` the
    hold it made or closed."""

    entry_id: uuid.UUID | None
    member_id: int
    details: dict[str, Any] = field(default_factory=dict)
    balance: Balance | None = None
    hold: HoldState | None = None  # the hold the write made or closed


def default_expiry(now: datetime, policy: Policy) -> datetime:
    """Points earned today last through the programme-local day ``validity_days`` from now."""
    zone = ZoneInfo(policy.zone_name)
    return end_of_day(local_date(now, zone) + timedelta(days=policy.validity_days), zone)


@dataclass(frozen=True, slots=True)
class Draft:
    """A journal entry about to be written."""

    kind: EntryKind
    legs: list[Leg]
    origin: Origin
    member_id: int | None
    now: datetime
    entry_id: uuid.UUID = field(default_factory=uuid7)
    reference: str | None = None
    source_key: str | None = None
    reverses_id: uuid.UUID | None = None
    memo: str | None = None
    details: dict[str, Any] | None = None
    record_only: bool = False

    def row(self) -> dict[str, Any]:
        """The entry's row, with the content hash that binds it and its legs."""
        digest = entry_hash(
            entry_id=str(self.entry_id),
            kind=self.kind.value,
            created_at=self.now,
            partner_id=self.origin.partner_id,
            staff_id=self.origin.staff_id,
            member_id=self.member_id,
            reference=self.reference,
            reverses_id=str(self.reverses_id) if self.reverses_id else None,
            legs=self.legs,
            memo=self.memo,
            details=self.details,
        )
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "member_id": self.member_id,
            "partner_id": self.origin.partner_id,
            "staff_id": self.origin.staff_id,
            "reference": self.reference,
            "source_key": self.source_key,
            "reverses_id": self.reverses_id,
            "memo": self.memo,
            "details": self.details,
            "created_at": self.now,
            "hash": digest,
        }


class Journal:
    """Entries posted against wallets locked up front, written together by :meth:`write`.

    Each :meth:`add` moves the wallets in memory and extends their hash chains, or refuses
    (``insufficient_points``) leaving them as they were; so one refused entry of a batch
    leaves the others standing.
    """

    def __init__(self, wallets: dict[int, WalletState]) -> None:
        self.wallets = wallets
        self._before = {member_id: wallet.seq for member_id, wallet in self.wallets.items()}
        self._entries: list[dict[str, Any]] = []
        self._legs: list[list[Leg]] = []
        self._links: list[tuple[Link, uuid.UUID]] = []

    def add(self, draft: Draft) -> uuid.UUID:
        """Post ``draft``: its wallets move (none may go negative) and its chains grow."""
        check_balanced(draft.legs, record_only=draft.record_only)
        row = draft.row()
        links = extend_chains(self.wallets, draft.legs, row["hash"])
        self._entries.append(row)
        self._legs.append(draft.legs)
        self._links.extend((link, draft.entry_id) for link in links)
        return draft.entry_id

    def write(self, session: Session) -> None:
        """Write the entries, their postings and chain links, the moved wallets, the net change
        of every partner and system account (one statement for them all, see
        ``tally.accounts``), and an ``entry.posted`` event per entry and member it moves (one
        statement for them all)."""
        if not self._entries:
            return
        repository.insert_entries(session, self._entries, self._legs)
        accounts.add_to_balances(
            session,
            striped_deltas((leg.account, leg.amount) for legs in self._legs for leg in legs),
        )
        repository.insert_links(session, self._links)
        outbox.emit(session, posted_events(self._entries, self._legs))
        moved = {
            member_id: seq
            for member_id, seq in self._before.items()
            if self.wallets[member_id].seq != seq
        }
        if not repository.save_wallets(session, moved, self.wallets):
            raise ConcurrentChange("A concurrent request changed the same data; retry.")
        self._entries, self._legs, self._links = [], [], []
        self._before = {member_id: wallet.seq for member_id, wallet in self.wallets.items()}


def posted_events(entries: list[dict[str, Any]], legs: list[list[Leg]]) -> list[Event]:
    """The ``entry.posted`` events of entries about to be written: one per member an entry
    moves (a transfer tells both members' partners), or one for an entry that moves none."""
    events: list[Event] = []
    for row, entry_legs in zip(entries, legs, strict=True):
        deltas = member_deltas(entry_legs) or {row["member_id"]: (0, 0)}
        for member_id, (available, held) in sorted(
            deltas.items(), key=lambda item: (item[0] != row["member_id"], item[0] or 0)
        ):
            events.append(
                Event(
                    type=EventType.ENTRY_POSTED,
                    data=entry_payload(
                        entry_id=row["id"],
                        kind=str(row["kind"]),
                        member_id=member_id,
                        points=available,
                        held=held,
                        partner_id=row["partner_id"],
                        reference=row["reference"],
                        reverses_id=row["reverses_id"],
                        created_at=row["created_at"],
                    ),
                    occurred_at=row["created_at"],
                    member_id=member_id,
                    partner_id=row["partner_id"],
                )
            )
    return events


def post(
    session: Session,
    *,
    kind: EntryKind,
    legs: list[Leg],
    origin: Origin,
    member_id: int | None,
    now: datetime,
    entry_id: uuid.UUID | None = None,
    reference: str | None = None,
    source_key: str | None = None,
    reverses_id: uuid.UUID | None = None,
    memo: str | None = None,
    details: dict[str, Any] | None = None,
    record_only: bool = False,
) -> uuid.UUID:
    """Write one balanced entry, move the wallets it touches and extend their hash chains.

    The wallets are locked in member-id order (so two entries never deadlock); an entry that
    would make any balance negative raises ``insufficient_points``.
    """
    draft = Draft(
        kind=kind,
        legs=legs,
        origin=origin,
        member_id=member_id,
        now=now,
        entry_id=entry_id or uuid7(),
        reference=reference,
        source_key=source_key,
        reverses_id=reverses_id,
        memo=memo,
        details=details,
        record_only=record_only,
    )
    wallets, _statuses = repository.lock_wallets(session, list(member_deltas(legs)))
    journal = Journal(wallets)
    journal.add(draft)
    journal.write(session)
    return draft.entry_id


def lock_members(
    session: Session, member_ids: Sequence[int], require: Mapping[int, bool] | None = None
) -> dict[int, WalletState]:
    """Lock the members' wallets until commit, in member-id order and in one statement (so two
    writers never deadlock), and check under that lock the statuses ``require`` names (member
    id → whether a frozen member may be written to), in its order: unknown, merged and (unless
    allowed) frozen members are refused. A status read before the lock could change before
    the write commits; one read under it cannot (every status change takes the lock too)."""
    wallets, statuses = repository.lock_wallets(session, member_ids)
    for member_id, allow_frozen in (require or {}).items():
        members.check_usable(member_id, statuses.get(member_id), allow_frozen=allow_frozen)
    return wallets


MAX_VALIDITY = timedelta(days=100 * 366)


def checked_expiry(expires_at: datetime | None, now: datetime, policy: Policy) -> datetime:
    """The expiry of new points: the programme default, or a moment within the next 100 years."""
    expires = expires_at or default_expiry(now, policy)
    if not now < expires <= now + MAX_VALIDITY:
        raise ValidationFailed(
            "expires_at must be in the future and within 100 years.", field="expires_at"
        )
    return expires


def check_points(points: int, policy: Policy) -> None:
    if points <= 0 or points > policy.max_points:
        raise ValidationFailed(
            f"points must be a whole number from 1 to {policy.max_points}.", field="points"
        )


def source_key(kind: EntryKind, origin: Origin, reference: str) -> str | None:
    if origin.partner_id is None:
        return None
    return f"{kind.value}:{origin.partner_id}:{reference}"


def consume(
    session: Session, entry_id: uuid.UUID, member_id: int, points: int, now: datetime
) -> list[tuple[int, int, datetime]]:
    """Take ``points`` from the member's live lots, earliest expiry first."""
    lots = repository.live_lots(session, [member_id], now)[member_id]
    plan = plan_consumption(lots, points)
    if plan is None:
        raise InsufficientPoints(f"Member {member_id} does not have enough points.")
    if not repository.change_lots(session, [(entry_id, lot_id, -taken) for lot_id, taken in plan]):
        raise InsufficientPoints(f"Member {member_id} does not have enough points.")
    expiry = {lot.id: lot.expires_at for lot in lots}
    return [(lot_id, taken, expiry[lot_id]) for lot_id, taken in plan]


def restore(
    session: Session,
    entry_id: uuid.UUID,
    member_id: int,
    portions: list[tuple[int, int]],
    now: datetime,
    policy: Policy,
) -> int:
    """Give points back to the lots they came from, keeping those lots' expiry; return how many
    of them were clawed back instead (see below).

    A lot that has expired meanwhile cannot take them back: the points come back as a new lot
    valid for ``reversal_grace_days``, so a member is never handed points that are already dead.
    (A lapse keeps even a passed expiry: :func:`tally.ledger.releases.lapse`.) Points of an earn
    that was reversed while they were held do not come back at all: they are clawed back now,
    completing that reversal.
    """
    fresh = 0
    clawed: dict[int, dict[str, Any]] = {}
    for lot_id, points in portions:
        lot = repository.lot(session, lot_id)
        reversed_earn = _reversed_earn_of(session, lot.entry_id) if lot is not None else None
        if reversed_earn is not None and repository.change_lot(session, entry_id, lot_id, points):
            # Released into the lot (so what this entry gave back is on record), then clawed.
            partner_id, earn_id = reversed_earn
            claim = clawed.setdefault(partner_id, {"points": 0, "earns": [], "lots": []})
            claim["points"] += points
            claim["earns"].append(str(earn_id))
            claim["lots"].append((lot_id, points))
            continue
        if (
            lot is not None
            and lot.expires_at > now
            and lot.member_id == member_id
            and repository.change_lot(session, entry_id, lot_id, points)
        ):
            continue
        fresh += points
    if fresh:
        repository.insert_lot(
            session,
            member_id=member_id,
            entry_id=entry_id,
            points=fresh,
            expires_at=now + timedelta(days=max(policy.reversal_grace_days, 1)),
            now=now,
        )
    for partner_id, claim in sorted(clawed.items()):
        claw_id = post(
            session,
            kind=EntryKind.REVERSAL,
            legs=[
                Leg(member_available(member_id), -claim["points"]),
                Leg(partner_issued(partner_id), claim["points"]),
            ],
            origin=Origin(),
            member_id=member_id,
            now=now,
            details={
                "late_clawback_of": sorted(set(claim["earns"])),
                "clawed_back": claim["points"],
            },
        )
        for lot_id, points in claim["lots"]:
            if not repository.change_lot(session, claw_id, lot_id, -points):
                raise PointsChanged("The released points changed meanwhile; retry.")
    return sum(claim["points"] for claim in clawed.values())


def with_clawback(details: dict[str, Any], clawed: int) -> dict[str, Any]:
    """Outcome details, naming points that came back only to be clawed back."""
    return {**details, "clawed_back": clawed} if clawed else details


def _reversed_earn_of(session: Session, source_id: uuid.UUID) -> tuple[int, uuid.UUID] | None:
    """``(partner_id, earn_id)`` when ``source_id`` is an earn that has been reversed."""
    source = repository.entry(session, source_id)
    if source is None or source.kind is not EntryKind.EARN:
        return None
    if repository.entry_reversal(session, source_id) is None:
        return None
    return source.partner_id or 0, source.id


def require_partner(origin: Origin) -> int:
    if origin.partner_id is None:
        raise Forbidden("Only a partner can do this.")
    return origin.partner_id


def still_consumed(session: Session, entry_ids: list[uuid.UUID]) -> list[tuple[int, datetime, int]]:
    """``(lot_id, expires_at, points)`` still taken from lots, net over ``entry_ids``."""
    net: dict[int, int] = defaultdict(int)
    expiry: dict[int, datetime] = {}
    for entry_id in entry_ids:
        for lot_id, expires_at, points in repository.allocations_of(session, entry_id):
            net[lot_id] -= points
            expiry[lot_id] = expires_at
    return [(lot_id, expiry[lot_id], taken) for lot_id, taken in net.items() if taken > 0]


def current_member(session: Session, member_id: int) -> int:
    """Follow merges to the member that now owns ``member_id``'s value."""
    seen = set()
    while member_id not in seen:
        seen.add(member_id)
        found = member_repository.member(session, member_id)
        if found is None or found.merged_into_id is None:
            return member_id
        member_id = found.merged_into_id
    return member_id
