"""Ledger use cases: earn, redeem, transfer, adjust; balances and history. Never commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.errors import (
    NotFound,
    ValidationFailed,
)
from tally.ledger import releases, repository
from tally.ledger.domain import (
    SYSTEM_ADJUSTMENTS,
    Balance,
    Leg,
    Origin,
    Policy,
    balance_of,
    member_available,
    member_held,
)
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.orders import Order, post_orders, posted
from tally.ledger.posting import (
    Posted,
    check_points,
    checked_expiry,
    consume,
    lock_members,
    post,
    source_key,
)
from tally.members import repository as member_repository
from tally.members import service as members


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
    return posted(
        post_orders(
            session,
            [Order(EntryKind.EARN, origin, member_id, points, reference, expires_at)],
            now,
            policy,
        )[0]
    )


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
    return posted(
        post_orders(
            session, [Order(EntryKind.REDEEM, origin, member_id, points, reference)], now, policy
        )[0]
    )


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
    check_points(points, policy)
    if from_member_id == to_member_id:
        raise ValidationFailed("A member cannot transfer to itself.", field="to_member_id")
    # Both wallets locked, both members checked under the lock (a freeze or a merge waits).
    lock_members(
        session, [from_member_id, to_member_id], {from_member_id: False, to_member_id: False}
    )
    releases.lapse_due(session, [from_member_id], now)
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
        source_key=source_key(EntryKind.TRANSFER, origin, reference),
        details={"to_member_id": to_member_id},
    )
    by_expiry: dict[datetime, int] = defaultdict(int)
    for _lot_id, taken, expires_at in consume(session, entry_id, from_member_id, points, now):
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
    check_points(abs(points), policy)
    if not reason.strip():
        raise ValidationFailed("An adjustment needs a reason.", field="reason")
    lock_members(session, [member_id], {member_id: True})  # checked under the wallet's lock
    releases.lapse_due(session, [member_id], now)
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
        expires = checked_expiry(expires_at, now, policy)
        repository.insert_lot(
            session,
            member_id=member_id,
            entry_id=entry_id,
            points=points,
            expires_at=expires,
            now=now,
        )
    else:
        consume(session, entry_id, member_id, -points, now)
    return Posted(entry_id, member_id, {"points": points})


def balance(session: Session, member_id: int, now: datetime, zone: ZoneInfo) -> Balance:
    """Spendable points (unexpired lots), held points, and what expires on which local date.

    A hold past its timeout counts as lapsed at once: its points are available again (those
    whose lot is still valid), whether or not the lapse job has recorded it yet.
    """
    held = repository.held_points(session, member_id)
    if held is None:
        raise NotFound(f"Member {member_id} does not exist.")
    live = repository.live_points_by_expiry(session, [member_id], now)[member_id]
    if not held:  # no active hold, none past its timeout
        return balance_of(live, held, zone)
    lapsed = releases.lapse_returns(session, member_id, now)
    back = [(expires_at, points) for expires_at, points in lapsed.lots if expires_at > now]
    return balance_of([*live, *back], held - lapsed.held, zone)


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One entry as a member sees it: the net change to its available and held points."""

    link_id: int
    entry: JournalEntry
    points: int
    held: int


def history(
    session: Session,
    member_id: int,
    before: int | None,
    limit: int,
    *,
    partner_id: int | None = None,
) -> tuple[list[HistoryItem], int | None]:
    """A member's entries (with those of members merged into it), newest first; only those
    made by ``partner_id`` when given.

    Returns the page and the position to continue before, or ``None`` on the last page.
    """
    members.get(session, member_id)
    member_ids = member_repository.merged_into(session, member_id)
    rows = repository.history(
        session, member_ids, before=before, limit=limit + 1, partner_id=partner_id
    )
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
