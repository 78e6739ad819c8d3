"""Every query of the ledger. Balances change only through conditional updates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from tally.db.base import table_of
from tally.db.raw import Raw, as_datetime
from tally.kit.crypto import GENESIS_HASH
from tally.ledger.domain import Leg, LotView
from tally.ledger.models import (
    ChainLink,
    Hold,
    HoldStatus,
    JournalEntry,
    Lot,
    LotAllocation,
    Posting,
    Wallet,
)

# The hot path runs hand-written SQL straight on the driver (see tally.db.raw).
_INSERT_ENTRY = Raw(
    "INSERT INTO journal_entries (id, kind, member_id, partner_id, staff_id, reference,"
    " source_key, reverses_id, memo, details, created_at, hash) VALUES (:id, :kind, :member_id,"
    " :partner_id, :staff_id, :reference, :source_key, :reverses_id, :memo, :details,"
    " :created_at, :hash)"
)
_INSERT_POSTING = Raw(
    "INSERT INTO postings (entry_id, account, amount) VALUES (:entry_id, :account, :amount)"
)
_MOVE_WALLET = Raw(
    "UPDATE wallets SET available = available + :da, held = held + :dh, seq = seq + 1"
    " WHERE member_id = :m AND available + :da >= 0 AND held + :dh >= 0"
    " RETURNING seq, head_hash"
)
_INSERT_LINK = Raw(
    "INSERT INTO chain_links (member_id, seq, entry_id, hash) VALUES (:m, :seq, :entry_id, :h)"
)
_SET_HEAD = Raw("UPDATE wallets SET head_hash = :h WHERE member_id = :m")
_INSERT_LOT = Raw(
    "INSERT INTO lots (member_id, entry_id, points, remaining, expires_at, created_at)"
    " VALUES (:m, :entry_id, :points, :points, :expires_at, :now)"
)
_LIVE_LOTS = Raw(
    "SELECT id, remaining, expires_at FROM lots"
    " WHERE member_id = :m AND remaining > 0 AND expires_at > :now ORDER BY expires_at, id"
)
_CHANGE_LOT = Raw(
    "UPDATE lots SET remaining = remaining + :pts"
    " WHERE id = :lot AND remaining + :pts >= 0 AND remaining + :pts <= points"
)
_INSERT_ALLOCATION = Raw(
    "INSERT INTO lot_allocations (entry_id, lot_id, points) VALUES (:entry_id, :lot, :pts)"
)
_WALLET_HELD = Raw("SELECT held FROM wallets WHERE member_id = :m")
_LIVE_BY_EXPIRY = Raw(
    "SELECT expires_at, SUM(remaining) FROM lots"
    " WHERE member_id = :m AND remaining > 0 AND expires_at > :now"
    " GROUP BY expires_at ORDER BY expires_at"
)


def create_wallet(session: Session, member_id: int) -> None:
    """Give a new member an empty wallet at the start of its chain."""
    session.connection().execute(
        insert(table_of(Wallet)),
        {"member_id": member_id, "available": 0, "held": 0, "seq": 0, "head_hash": GENESIS_HASH},
    )


def insert_entry(session: Session, values: dict[str, Any], legs: Sequence[Leg]) -> None:
    """Write an entry and its postings."""
    _INSERT_ENTRY.execute(session, values)
    _INSERT_POSTING.execute_many(
        session,
        [{"entry_id": values["id"], "account": leg.account, "amount": leg.amount} for leg in legs],
    )


def move_wallet(
    session: Session, member_id: int, available: int, held: int
) -> tuple[int, str] | None:
    """Apply deltas to a wallet unless a balance would go negative; lock it; advance its chain.

    Returns ``(new_seq, previous_head)`` or ``None`` when the guard refused the change.
    """
    row = _MOVE_WALLET.one(session, {"m": member_id, "da": available, "dh": held})
    return None if row is None else (int(row[0]), str(row[1]))


def append_link(session: Session, member_id: int, seq: int, entry_id: uuid.UUID, link: str) -> None:
    """Record the chain link and make it the wallet's head."""
    _INSERT_LINK.execute(session, {"m": member_id, "seq": seq, "entry_id": entry_id, "h": link})
    _SET_HEAD.execute(session, {"m": member_id, "h": link})


def wallet(session: Session, member_id: int) -> Wallet | None:
    """A member's wallet row."""
    return session.get(Wallet, member_id)


def held_points(session: Session, member_id: int) -> int | None:
    """A member's held points; ``None`` when there is no such member (every member has a wallet)."""
    row = _WALLET_HELD.one(session, {"m": member_id})
    return None if row is None else int(row[0])


def insert_lot(
    session: Session,
    *,
    member_id: int,
    entry_id: uuid.UUID,
    points: int,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Add a lot of freshly credited points."""
    _INSERT_LOT.execute(
        session,
        {
            "m": member_id,
            "entry_id": entry_id,
            "points": points,
            "expires_at": expires_at,
            "now": now,
        },
    )


def live_lots(session: Session, member_id: int, now: datetime) -> list[LotView]:
    """A member's unexpired lots with points left, earliest expiry first."""
    rows = _LIVE_LOTS.all(session, {"m": member_id, "now": now})
    return [LotView(id=row[0], remaining=row[1], expires_at=as_datetime(row[2])) for row in rows]


def live_points_by_expiry(
    session: Session, member_id: int, now: datetime
) -> list[tuple[datetime, int]]:
    """A member's unexpired points, summed per expiry instant, soonest first."""
    rows = _LIVE_BY_EXPIRY.all(session, {"m": member_id, "now": now})
    return [(as_datetime(row[0]), int(row[1])) for row in rows]


def change_lot(session: Session, entry_id: uuid.UUID, lot_id: int, points: int) -> bool:
    """Add ``points`` (negative: take) to a lot's remaining, guarded; record the allocation."""
    if _CHANGE_LOT.rowcount(session, {"lot": lot_id, "pts": points}) != 1:
        return False
    _INSERT_ALLOCATION.execute(session, {"entry_id": entry_id, "lot": lot_id, "pts": points})
    return True


def allocations_of(session: Session, entry_id: uuid.UUID) -> list[tuple[int, datetime, int]]:
    """``(lot_id, expires_at, points)`` for each lot change an entry made."""
    rows = session.execute(
        select(LotAllocation.lot_id, Lot.expires_at, LotAllocation.points)
        .join(Lot, Lot.id == LotAllocation.lot_id)
        .where(LotAllocation.entry_id == entry_id)
        .order_by(LotAllocation.id)
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def lots_created_by(session: Session, entry_id: uuid.UUID) -> list[Lot]:
    """The lots an entry created."""
    return list(session.scalars(select(Lot).where(Lot.entry_id == entry_id).order_by(Lot.id)))


def lots_of(session: Session, member_id: int, limit: int = 500) -> list[Lot]:
    """A member's lots, live ones first by expiry, then spent or expired ones, newest first."""
    return list(
        session.scalars(
            select(Lot)
            .where(Lot.member_id == member_id)
            .order_by((Lot.remaining > 0).desc(), Lot.expires_at, Lot.id.desc())
            .limit(limit)
        )
    )


def lot(session: Session, lot_id: int) -> Lot | None:
    return session.get(Lot, lot_id)


def entry(session: Session, entry_id: uuid.UUID) -> JournalEntry | None:
    """One journal entry."""
    return session.get(JournalEntry, entry_id)


def entry_reversal(session: Session, entry_id: uuid.UUID) -> JournalEntry | None:
    """The entry that reversed ``entry_id``, if any."""
    return session.scalars(select(JournalEntry).where(JournalEntry.reverses_id == entry_id)).first()


def legs_of(session: Session, entry_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Leg]]:
    """Postings of several entries."""
    legs: dict[uuid.UUID, list[Leg]] = {entry_id: [] for entry_id in entry_ids}
    if entry_ids:
        rows = session.execute(
            select(Posting.entry_id, Posting.account, Posting.amount)
            .where(Posting.entry_id.in_(entry_ids))
            .order_by(Posting.id)
        )
        for entry_id, account, amount in rows:
            legs[entry_id].append(Leg(account, amount))
    return legs


def hold(session: Session, hold_id: uuid.UUID) -> Hold | None:
    return session.get(Hold, hold_id)


def insert_hold(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(Hold).values(**values))


def close_hold(
    session: Session,
    hold_id: uuid.UUID,
    *,
    status: HoldStatus,
    captured: int,
    closed_entry_id: uuid.UUID,
    now: datetime | None,
) -> bool:
    """Move an active hold to a final status; ``now`` also requires it not to have lapsed."""
    conditions = [Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE]
    if now is not None:
        conditions.append(Hold.expires_at > now)
    result = session.execute(
        update(Hold)
        .where(*conditions)
        .values(status=status, captured_points=captured, closed_entry_id=closed_entry_id)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def holds_of(session: Session, member_id: int, *, active_only: bool) -> list[Hold]:
    query = select(Hold).where(Hold.member_id == member_id)
    if active_only:
        query = query.where(Hold.status == HoldStatus.ACTIVE)
    return list(session.scalars(query.order_by(Hold.created_at.desc()).limit(200)))


def lapsed_hold_ids(session: Session, as_of: datetime, limit: int) -> list[uuid.UUID]:
    """Active holds whose timeout has passed."""
    return list(
        session.scalars(
            select(Hold.id)
            .where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= as_of)
            .order_by(Hold.expires_at, Hold.id)
            .limit(limit)
        )
    )


def members_with_due_lots(session: Session, as_of: datetime, limit: int) -> list[int]:
    """Members owning lots due to expire by ``as_of``."""
    return list(
        session.scalars(
            select(Lot.member_id)
            .where(Lot.remaining > 0, Lot.expires_at <= as_of)
            .group_by(Lot.member_id)
            .order_by(Lot.member_id)
            .limit(limit)
        )
    )


def lock_wallet(session: Session, member_id: int) -> None:
    """Lock a wallet row for the rest of the transaction (SQLite's write lock already covers it)."""
    session.execute(select(Wallet.member_id).where(Wallet.member_id == member_id).with_for_update())


def due_lots_of(session: Session, member_id: int, as_of: datetime) -> list[tuple[int, int]]:
    """``(lot_id, remaining)`` of a member's lots due to expire by ``as_of``."""
    rows = session.execute(
        select(Lot.id, Lot.remaining)
        .where(Lot.member_id == member_id, Lot.remaining > 0, Lot.expires_at <= as_of)
        .order_by(Lot.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


def history(
    session: Session, member_ids: Sequence[int], *, before: int | None, limit: int
) -> list[tuple[int, JournalEntry]]:
    """``(link_id, entry)`` of the members' entries, newest first, each entry once.

    An entry between two of the members (a merge, a transfer between them) has a link in each
    chain; only its first link counts.
    """
    earlier = aliased(ChainLink)
    query = (
        select(ChainLink.id, JournalEntry)
        .join(JournalEntry, JournalEntry.id == ChainLink.entry_id)
        .where(ChainLink.member_id.in_(member_ids))
        .where(
            ~exists().where(
                earlier.entry_id == ChainLink.entry_id,
                earlier.member_id.in_(member_ids),
                earlier.id < ChainLink.id,
            )
        )
        .order_by(ChainLink.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(ChainLink.id < before)
    return [(row[0], row[1]) for row in session.execute(query)]


def count_entries(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)
