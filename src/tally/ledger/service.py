"""Ledger use cases: earn, redeem, hold, capture, void, transfer, adjust, reverse. Never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.config import Settings
from tally.errors import (
    AlreadyReversed,
    Forbidden,
    HoldNotActive,
    InsufficientPoints,
    NotFound,
    NotReversible,
    ValidationFailed,
)
from tally.kit.clock import end_of_day, local_date
from tally.kit.ids import uuid7
from tally.ledger import repository
from tally.ledger.domain import (
    SYSTEM_ADJUSTMENTS,
    Leg,
    Origin,
    Policy,
    check_balanced,
    entry_hash,
    link_hash,
    member_available,
    member_deltas,
    member_held,
    partner_issued,
    partner_redeemed,
    plan_consumption,
    plan_release,
)
from tally.ledger.models import EntryKind, Hold, HoldStatus, JournalEntry
from tally.members import repository as member_repository
from tally.members import service as members


def policy_from(settings: Settings) -> Policy:
    """The ledger policy of the running programme."""
    return Policy(
        validity_days=settings.points_validity_days,
        reversal_grace_days=settings.reversal_grace_days,
        zone_name=settings.timezone,
        max_points=settings.max_points_per_operation,
    )


@dataclass(frozen=True, slots=True)
class Expiring:
    date: date
    points: int


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    held: int
    expiring: list[Expiring]


@dataclass(frozen=True, slots=True)
class Posted:
    """The outcome of a use case: the entry written (if any) and what it did."""

    entry_id: uuid.UUID | None
    member_id: int
    details: dict[str, Any] = field(default_factory=dict)


def default_expiry(now: datetime, policy: Policy) -> datetime:
    """Points earned today last through the programme-local day ``validity_days`` from now."""
    zone = ZoneInfo(policy.zone_name)
    return end_of_day(local_date(now, zone) + timedelta(days=policy.validity_days), zone)


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

    Wallets are moved in member-id order (so two entries never deadlock) by conditional
    updates: an entry that would make any balance negative raises ``insufficient_points``.
    """
    check_balanced(legs, record_only=record_only)
    entry_id = entry_id or uuid7()
    digest = entry_hash(
        entry_id=str(entry_id),
        kind=kind.value,
        created_at=now,
        partner_id=origin.partner_id,
        staff_id=origin.staff_id,
        member_id=member_id,
        reference=reference,
        reverses_id=str(reverses_id) if reverses_id else None,
        legs=legs,
        memo=memo,
        details=details,
    )
    repository.insert_entry(
        session,
        {
            "id": entry_id,
            "kind": kind,
            "member_id": member_id,
            "partner_id": origin.partner_id,
            "staff_id": origin.staff_id,
            "reference": reference,
            "source_key": source_key,
            "reverses_id": reverses_id,
            "memo": memo,
            "details": details,
            "created_at": now,
            "hash": digest,
        },
        legs,
    )
    for touched, (available, held) in sorted(member_deltas(legs).items()):
        moved = repository.move_wallet(session, touched, available, held)
        if moved is None:
            raise InsufficientPoints(
                f"Member {touched} does not have enough points.", member_id=touched
            )
        seq, previous = moved
        repository.append_link(session, touched, seq, entry_id, link_hash(previous, seq, digest))
    return entry_id


MAX_VALIDITY = timedelta(days=100 * 366)


def _checked_expiry(expires_at: datetime | None, now: datetime, policy: Policy) -> datetime:
    """The expiry of new points: the programme default, or a moment within the next 100 years."""
    expires = expires_at or default_expiry(now, policy)
    if not now < expires <= now + MAX_VALIDITY:
        raise ValidationFailed(
            "expires_at must be in the future and within 100 years.", field="expires_at"
        )
    return expires


def _check_points(points: int, policy: Policy) -> None:
    if points <= 0 or points > policy.max_points:
        raise ValidationFailed(
            f"points must be a whole number from 1 to {policy.max_points}.", field="points"
        )


def _source_key(kind: EntryKind, origin: Origin, reference: str) -> str | None:
    if origin.partner_id is None:
        return None
    return f"{kind.value}:{origin.partner_id}:{reference}"


def _consume(
    session: Session, entry_id: uuid.UUID, member_id: int, points: int, now: datetime
) -> list[tuple[int, int, datetime]]:
    """Take ``points`` from the member's live lots, earliest expiry first."""
    lots = repository.live_lots(session, member_id, now)
    plan = plan_consumption(lots, points)
    if plan is None:
        raise InsufficientPoints(f"Member {member_id} does not have enough points.")
    expiry = {lot.id: lot.expires_at for lot in lots}
    for lot_id, taken in plan:
        if not repository.change_lot(session, entry_id, lot_id, -taken):
            raise InsufficientPoints(f"Member {member_id} does not have enough points.")
    return [(lot_id, taken, expiry[lot_id]) for lot_id, taken in plan]


def _restore(
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
    Points of an earn that was reversed while they were held do not come back at all: they are
    clawed back now, completing that reversal.
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
                raise InsufficientPoints("The released points changed meanwhile; retry.")
    return sum(claim["points"] for claim in clawed.values())


def _with_clawback(details: dict[str, Any], clawed: int) -> dict[str, Any]:
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


def _partner(origin: Origin) -> int:
    if origin.partner_id is None:
        raise Forbidden("Only a partner can do this.")
    return origin.partner_id


def earn(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
    expires_at: datetime | None = None,
) -> Posted:
    """Credit points issued by a partner as a new lot."""
    partner_id = _partner(origin)
    _check_points(points, policy)
    expires = _checked_expiry(expires_at, now, policy)
    members.require_usable(session, member_id)
    entry_id = post(
        session,
        kind=EntryKind.EARN,
        legs=[Leg(partner_issued(partner_id), -points), Leg(member_available(member_id), points)],
        origin=origin,
        member_id=member_id,
        now=now,
        reference=reference,
        source_key=_source_key(EntryKind.EARN, origin, reference),
    )
    repository.insert_lot(
        session, member_id=member_id, entry_id=entry_id, points=points, expires_at=expires, now=now
    )
    return Posted(entry_id, member_id, {"points": points, "expires_at": expires.isoformat()})


def redeem(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
) -> Posted:
    """Spend points with a partner, oldest-expiring lots first."""
    partner_id = _partner(origin)
    _check_points(points, policy)
    members.require_usable(session, member_id)
    entry_id = post(
        session,
        kind=EntryKind.REDEEM,
        legs=[Leg(member_available(member_id), -points), Leg(partner_redeemed(partner_id), points)],
        origin=origin,
        member_id=member_id,
        now=now,
        reference=reference,
        source_key=_source_key(EntryKind.REDEEM, origin, reference),
    )
    _consume(session, entry_id, member_id, points, now)
    return Posted(entry_id, member_id, {"points": points})


def create_hold(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    expires_in_seconds: int,
    now: datetime,
    policy: Policy,
    max_seconds: int,
) -> tuple[Hold, Posted]:
    """Reserve points until captured, voided or lapsed."""
    partner_id = _partner(origin)
    _check_points(points, policy)
    if not 1 <= expires_in_seconds <= max_seconds:
        raise ValidationFailed(
            f"expires_in_seconds must be from 1 to {max_seconds}.", field="expires_in_seconds"
        )
    members.require_usable(session, member_id)
    entry_id = post(
        session,
        kind=EntryKind.HOLD,
        legs=[Leg(member_available(member_id), -points), Leg(member_held(member_id), points)],
        origin=origin,
        member_id=member_id,
        now=now,
        reference=reference,
        source_key=_source_key(EntryKind.HOLD, origin, reference),
    )
    _consume(session, entry_id, member_id, points, now)
    hold_id = uuid7()
    repository.insert_hold(
        session,
        {
            "id": hold_id,
            "member_id": member_id,
            "partner_id": partner_id,
            "points": points,
            "captured_points": 0,
            "status": HoldStatus.ACTIVE,
            "reference": reference,
            "expires_at": now + timedelta(seconds=expires_in_seconds),
            "created_at": now,
            "entry_id": entry_id,
        },
    )
    created = repository.hold(session, hold_id)
    assert created is not None
    return created, Posted(entry_id, member_id, {"points": points, "hold_id": str(hold_id)})


def _own_hold(session: Session, origin: Origin, hold_id: uuid.UUID) -> Hold:
    found = repository.hold(session, hold_id)
    if found is None or (origin.partner_id is not None and found.partner_id != origin.partner_id):
        raise NotFound(f"Hold {hold_id} does not exist.")
    return found


def capture_hold(
    session: Session,
    origin: Origin,
    hold_id: uuid.UUID,
    points: int | None,
    now: datetime,
    policy: Policy,
) -> tuple[Hold, Posted]:
    """Spend all or part of a hold; the rest goes back to the member."""
    found = _own_hold(session, origin, hold_id)
    captured = found.points if points is None else points
    if not 1 <= captured <= found.points:
        raise ValidationFailed(f"points must be from 1 to the held {found.points}.", field="points")
    members.require_usable(session, found.member_id)
    entry_id = uuid7()
    if not repository.close_hold(
        session,
        hold_id,
        status=HoldStatus.CAPTURED,
        captured=captured,
        closed_entry_id=entry_id,
        now=now,
    ):
        raise HoldNotActive(f"Hold {hold_id} is not active.")
    rest = found.points - captured
    legs = [
        Leg(member_held(found.member_id), -found.points),
        Leg(partner_redeemed(found.partner_id or 0), captured),
    ]
    if rest:
        legs.append(Leg(member_available(found.member_id), rest))
    post(
        session,
        kind=EntryKind.CAPTURE,
        legs=legs,
        origin=origin,
        member_id=found.member_id,
        now=now,
        entry_id=entry_id,
        reference=found.reference,
        details={"hold_id": str(hold_id), "captured": captured, "released": rest},
    )
    clawed = 0
    if rest:
        portions = plan_release(_still_consumed(session, [found.entry_id]), rest)
        clawed = _restore(session, entry_id, found.member_id, portions, now, policy)
    session.refresh(found)
    outcome = _with_clawback({"captured": captured, "released": rest}, clawed)
    return found, Posted(entry_id, found.member_id, outcome)


def release_hold(
    session: Session,
    origin: Origin,
    hold_id: uuid.UUID,
    now: datetime,
    policy: Policy,
    *,
    lapse: bool = False,
) -> tuple[Hold, Posted]:
    """Void a hold (or, for the lapse job, let it lapse): every held point goes back."""
    found = _own_hold(session, origin, hold_id)
    entry_id = uuid7()
    status = HoldStatus.LAPSED if lapse else HoldStatus.VOIDED
    if not repository.close_hold(
        session, hold_id, status=status, captured=0, closed_entry_id=entry_id, now=None
    ):
        raise HoldNotActive(f"Hold {hold_id} is not active.")
    post(
        session,
        kind=EntryKind.LAPSE if lapse else EntryKind.VOID,
        legs=[
            Leg(member_held(found.member_id), -found.points),
            Leg(member_available(found.member_id), found.points),
        ],
        origin=origin,
        member_id=found.member_id,
        now=now,
        entry_id=entry_id,
        reference=found.reference,
        details={"hold_id": str(hold_id), "released": found.points},
    )
    portions = plan_release(_still_consumed(session, [found.entry_id]), found.points)
    clawed = _restore(session, entry_id, found.member_id, portions, now, policy)
    session.refresh(found)
    outcome = _with_clawback({"released": found.points}, clawed)
    return found, Posted(entry_id, found.member_id, outcome)


def _still_consumed(
    session: Session, entry_ids: list[uuid.UUID]
) -> list[tuple[int, datetime, int]]:
    """``(lot_id, expires_at, points)`` still taken from lots, net over ``entry_ids``."""
    net: dict[int, int] = defaultdict(int)
    expiry: dict[int, datetime] = {}
    for entry_id in entry_ids:
        for lot_id, expires_at, points in repository.allocations_of(session, entry_id):
            net[lot_id] -= points
            expiry[lot_id] = expires_at
    return [(lot_id, expiry[lot_id], taken) for lot_id, taken in net.items() if taken > 0]


def transfer(
    session: Session,
    origin: Origin,
    from_member_id: int,
    to_member_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
) -> Posted:
    """Give points to another member; they keep the expiry they had (a gift never extends it)."""
    _check_points(points, policy)
    if from_member_id == to_member_id:
        raise ValidationFailed("A member cannot transfer to itself.", field="to_member_id")
    members.require_usable(session, from_member_id)
    members.require_usable(session, to_member_id)
    entry_id = post(
        session,
        kind=EntryKind.TRANSFER,
        legs=[
            Leg(member_available(from_member_id), -points),
            Leg(member_available(to_member_id), points),
        ],
        origin=origin,
        member_id=from_member_id,
        now=now,
        reference=reference,
        source_key=_source_key(EntryKind.TRANSFER, origin, reference),
        details={"to_member_id": to_member_id},
    )
    by_expiry: dict[datetime, int] = defaultdict(int)
    for _lot_id, taken, expires_at in _consume(session, entry_id, from_member_id, points, now):
        by_expiry[expires_at] += taken
    for expires_at, amount in sorted(by_expiry.items()):
        repository.insert_lot(
            session,
            member_id=to_member_id,
            entry_id=entry_id,
            points=amount,
            expires_at=expires_at,
            now=now,
        )
    return Posted(entry_id, from_member_id, {"points": points, "to_member_id": to_member_id})


def adjust(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reason: str,
    now: datetime,
    policy: Policy,
    expires_at: datetime | None = None,
) -> Posted:
    """An operator's correction: positive credits a new lot, negative takes from the oldest."""
    if points == 0:
        raise ValidationFailed("An adjustment cannot be zero.", field="points")
    _check_points(abs(points), policy)
    if not reason.strip():
        raise ValidationFailed("An adjustment needs a reason.", field="reason")
    members.require_usable(session, member_id, allow_frozen=True)
    account = member_available(member_id)
    entry_id = post(
        session,
        kind=EntryKind.ADJUST,
        legs=[Leg(SYSTEM_ADJUSTMENTS, -points), Leg(account, points)],
        origin=origin,
        member_id=member_id,
        now=now,
        memo=reason.strip(),
    )
    if points > 0:
        expires = _checked_expiry(expires_at, now, policy)
        repository.insert_lot(
            session,
            member_id=member_id,
            entry_id=entry_id,
            points=points,
            expires_at=expires,
            now=now,
        )
    else:
        _consume(session, entry_id, member_id, -points, now)
    return Posted(entry_id, member_id, {"points": points})


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


def reverse(
    session: Session, origin: Origin, entry_id: uuid.UUID, now: datetime, policy: Policy
) -> Posted:
    """Undo an earn (claw back what is left, reporting any shortfall), a redemption or a capture.

    A redemption or capture gives every point back to the lots it came from (see ``_restore``).
    """
    original = repository.entry(session, entry_id)
    if original is None or (
        origin.partner_id is not None and original.partner_id != origin.partner_id
    ):
        raise NotFound(f"Transaction {entry_id} does not exist.")
    if repository.entry_reversal(session, entry_id) is not None:
        raise AlreadyReversed(f"Transaction {entry_id} was already reversed.")
    if original.member_id is None:
        raise NotReversible("This transaction cannot be reversed.")
    member_id = current_member(session, original.member_id)
    partner_id = original.partner_id or 0
    if original.kind is EntryKind.EARN:
        return _reverse_earn(session, origin, original.id, member_id, partner_id, now)
    if original.kind in (EntryKind.REDEEM, EntryKind.CAPTURE):
        consumed = _still_consumed(
            session, _consuming_entries(session, original.id, original.kind, original.details)
        )
        points = sum(taken for _lot, _expiry, taken in consumed)
        if points == 0:
            raise NotReversible("Nothing of this transaction is left to return.")
        new_id = post(
            session,
            kind=EntryKind.REVERSAL,
            legs=[
                Leg(partner_redeemed(partner_id), -points),
                Leg(member_available(member_id), points),
            ],
            origin=origin,
            member_id=member_id,
            now=now,
            reverses_id=original.id,
            details={"reversed_kind": original.kind.value, "returned": points},
        )
        clawed = _restore(
            session,
            new_id,
            member_id,
            [(lot_id, taken) for lot_id, _expiry, taken in consumed],
            now,
            policy,
        )
        return Posted(new_id, member_id, _with_clawback({"returned": points}, clawed))
    raise NotReversible(f"A {original.kind.value} transaction cannot be reversed.")


def _consuming_entries(
    session: Session, entry_id: uuid.UUID, kind: EntryKind, details: dict[str, Any] | None
) -> list[uuid.UUID]:
    if kind is EntryKind.REDEEM:
        return [entry_id]
    held = repository.hold(session, uuid.UUID(str((details or {})["hold_id"])))
    assert held is not None
    return [held.entry_id, entry_id]


def _reverse_earn(
    session: Session,
    origin: Origin,
    entry_id: uuid.UUID,
    member_id: int,
    partner_id: int,
    now: datetime,
) -> Posted:
    lots = repository.lots_created_by(session, entry_id)
    earned = sum(lot.points for lot in lots)
    plan = [(lot.id, lot.remaining) for lot in lots if lot.remaining > 0]
    clawed = sum(points for _lot, points in plan)
    details = {"reversed_kind": "earn", "clawed_back": clawed, "shortfall": earned - clawed}
    # Even when nothing is left to claw back, the reversal is recorded (a zero entry), so the
    # shortfall reaches settlement and the earn cannot be reversed twice.
    reversal_id = post(
        session,
        kind=EntryKind.REVERSAL,
        legs=[
            Leg(member_available(member_id), -clawed),
            Leg(partner_issued(partner_id), clawed),
        ],
        origin=origin,
        member_id=member_id,
        now=now,
        reverses_id=entry_id,
        details=details,
        record_only=clawed == 0,
    )
    for lot_id, points in plan:
        if not repository.change_lot(session, reversal_id, lot_id, -points):
            raise InsufficientPoints("The earned points changed during the reversal; retry.")
    return Posted(reversal_id, member_id, {"clawed_back": clawed, "shortfall": earned - clawed})


def balance(session: Session, member_id: int, now: datetime, zone: ZoneInfo) -> Balance:
    """Spendable points (unexpired lots), held points, and what expires on which local date."""
    held = repository.held_points(session, member_id)
    if held is None:
        raise NotFound(f"Member {member_id} does not exist.")
    by_date: dict[date, int] = defaultdict(int)
    for expires_at, points in repository.live_points_by_expiry(session, member_id, now):
        # A lot that expires at local midnight is last usable on the day before.
        by_date[local_date(expires_at - timedelta(microseconds=1), zone)] += points
    return Balance(
        available=sum(by_date.values()),
        held=held,
        expiring=[Expiring(day, points) for day, points in sorted(by_date.items())],
    )


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One entry as a member sees it: the net change to its available and held points."""

    link_id: int
    entry: JournalEntry
    points: int
    held: int


def history(
    session: Session, member_id: int, before: int | None, limit: int
) -> tuple[list[HistoryItem], int | None]:
    """A member's entries (with those of members merged into it), newest first.

    Returns the page and the position to continue before, or ``None`` on the last page.
    """
    members.get(session, member_id)
    member_ids = member_repository.merged_into(session, member_id)
    rows = repository.history(session, member_ids, before=before, limit=limit + 1)
    page = rows[:limit]
    legs = repository.legs_of(session, [entry.id for _link, entry in page])
    available = {member_available(item) for item in member_ids}
    held = {member_held(item) for item in member_ids}
    items = [
        HistoryItem(
            link_id=link_id,
            entry=entry,
            points=sum(leg.amount for leg in legs[entry.id] if leg.account in available),
            held=sum(leg.amount for leg in legs[entry.id] if leg.account in held),
        )
        for link_id, entry in page
    ]
    return items, (page[-1][0] if len(rows) > limit else None)
