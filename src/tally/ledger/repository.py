"""Every query of the ledger. Balances change only through conditional updates."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session, aliased

from tally.accounts import service as accounts
from tally.db.base import table_of
from tally.db.raw import Bulk, Raw, as_datetime, as_uuid
from tally.kit.crypto import GENESIS_HASH
from tally.ledger.domain import (
    HeldRow,
    HoldPortion,
    HoldState,
    HoldStatus,
    Leg,
    Link,
    LotView,
    WalletState,
)
from tally.ledger.models import (
    ChainLink,
    EntryKind,
    Hold,
    JournalEntry,
    Lot,
    LotAllocation,
    Posting,
    Wallet,
)
from tally.members.models import MemberStatus
from tally.programme import runtime

# The hot path runs hand-written SQL straight on the driver, each statement over every row of a
# batch at once (see tally.db.raw).
ENTRY_COLUMNS = {  # name → PostgreSQL type
    "id": "uuid",
    "kind": "text",
    "member_id": "bigint",
    "partner_id": "bigint",
    "staff_id": "bigint",
    "reference": "text",
    "source_key": "text",
    "reverses_id": "uuid",
    "memo": "text",
    "details": "json",
    "created_at": "timestamptz",
    "hash": "text",
    "programme_version": "integer",
}
_INSERT_ENTRIES = Bulk.insert("journal_entries", ENTRY_COLUMNS)
_INSERT_POSTINGS = Bulk.insert(
    "postings", {"entry_id": "uuid", "account": "text", "amount": "bigint"}
)
_WALLETS_AND_STATUSES = (
    "SELECT w.member_id, w.available, w.held, w.seq, w.head_hash, m.status"
    " FROM wallets w JOIN members m ON m.id = w.member_id"
    " WHERE w.member_id = ANY(:ms) ORDER BY w.member_id"
)
_WALLETS = Raw(_WALLETS_AND_STATUSES)
_LOCK_WALLETS = Raw(_WALLETS_AND_STATUSES, lock="w")
_LOCK_FREE_WALLETS = Raw(_WALLETS_AND_STATUSES, lock="w", skip_locked=True)
# The status too must be the one at the lock, not at the statement's start: on PostgreSQL a
# row read beside a locked one keeps its version from the statement's snapshot, even when the
# statement waited for the lock while a freeze or a merge committed. Sharing the member row
# re-reads it at its newest version when it changed (and costs nothing more: the foreign keys
# of the rows an entry inserts take a lock on it anyway). Skipping locked wallets skips
# members whose status is being changed too.
_LOCK_WALLETS.pg_sql += " FOR SHARE OF m"
_LOCK_FREE_WALLETS.pg_sql += " FOR SHARE OF m SKIP LOCKED"
# Compare-and-set on the chain position read under the lock: a wallet moved meanwhile (only
# possible if the lock was not taken) changes no row, and the caller refuses the whole write.
_SAVE_WALLETS = Bulk(
    "UPDATE wallets SET available = :available, held = :held, seq = :seq, head_hash = :head"
    " WHERE member_id = :m AND seq = :before",
    "UPDATE wallets AS w SET available = v.available, held = v.held, seq = v.seq,"
    " head_hash = v.head FROM unnest(:m::bigint[], :available::bigint[], :held::bigint[],"
    " :seq::bigint[], :head::text[], :before::bigint[]) AS v(m, available, held, seq, head,"
    " before) WHERE w.member_id = v.m AND w.seq = v.before",
)
_INSERT_LINKS = Bulk.insert(
    "chain_links", {"member_id": "bigint", "seq": "bigint", "entry_id": "uuid", "hash": "text"}
)
_INSERT_LOTS = Bulk.insert(
    "lots",
    {
        "member_id": "bigint",
        "entry_id": "uuid",
        "points": "bigint",
        "remaining": "bigint",
        "expires_at": "timestamptz",
        "created_at": "timestamptz",
        "programme_version": "integer",
        "value_points": "bigint",
        "value_minor": "bigint",
        "value_currency": "text",
    },
)
_LIVE_LOTS = Raw(
    "SELECT member_id, id, remaining, expires_at FROM lots"
    " WHERE member_id = ANY(:ms) AND remaining > 0 AND expires_at > :now"
    " ORDER BY member_id, expires_at, id"
)
_CHANGE_LOTS = Bulk(
    "UPDATE lots SET remaining = remaining + :pts"
    " WHERE id = :lot AND remaining + :pts >= 0 AND remaining + :pts <= points",
    "UPDATE lots AS l SET remaining = l.remaining + v.pts"
    " FROM unnest(:lot::bigint[], :pts::bigint[]) AS v(lot, pts)"
    " WHERE l.id = v.lot AND l.remaining + v.pts >= 0 AND l.remaining + v.pts <= l.points",
)
_INSERT_ALLOCATIONS = Bulk.insert(
    "lot_allocations", {"entry_id": "uuid", "lot_id": "bigint", "points": "bigint"}
)
_WALLET_HELD = Raw("SELECT held FROM wallets WHERE member_id = :m")
# On every earn and redeem (a hold past its timeout is lapsed first): hand-written, like the rest.
_TIMED_OUT_HOLDS = Raw(
    "SELECT member_id, id FROM holds WHERE member_id = ANY(:ms) AND status = 'active'"
    " AND expires_at <= :now ORDER BY member_id, expires_at, id"
)
_INSERT_HOLDS = Bulk.insert(
    "holds",
    {
        "id": "uuid",
        "member_id": "bigint",
        "partner_id": "bigint",
        "points": "bigint",
        "captured_points": "bigint",
        "status": "text",
        "reference": "text",
        "expires_at": "timestamptz",
        "created_at": "timestamptz",
        "entry_id": "uuid",
    },
)
_HOLDS = Raw(
    "SELECT id, member_id, partner_id, points, captured_points, status, reference, expires_at,"
    " created_at, entry_id FROM holds WHERE id = ANY(:ids)"
)
# Closes holds that are still active and not past their timeout.
_CLOSE_HOLDS = Bulk(
    "UPDATE holds SET status = :status, captured_points = :captured, closed_entry_id = :entry"
    " WHERE id = :id AND status = 'active' AND expires_at > :now",
    "UPDATE holds AS h SET status = v.status, captured_points = v.captured,"
    " closed_entry_id = v.entry FROM unnest(:id::uuid[], :status::text[], :captured::bigint[],"
    " :entry::uuid[], :now::timestamptz[]) AS v(id, status, captured, entry, now)"
    " WHERE h.id = v.id AND h.status = 'active' AND h.expires_at > v.now",
)
# A lapse closes holds still active, whatever their timeout (the job's are past it).
_LAPSE_HOLDS = Bulk(
    "UPDATE holds SET status = 'lapsed', captured_points = 0, closed_entry_id = :entry"
    " WHERE id = :id AND status = 'active'",
    "UPDATE holds AS h SET status = 'lapsed', captured_points = 0, closed_entry_id = v.entry"
    " FROM unnest(:id::uuid[], :entry::uuid[]) AS v(id, entry)"
    " WHERE h.id = v.id AND h.status = 'active'",
)
# What the holds made by entries ``:es`` still take from each lot, with the lot and whether the
# earn that made the lot was reversed meanwhile (its points are clawed back, not returned).
_HOLD_PORTIONS = Raw(
    "SELECT a.entry_id, a.lot_id, -SUM(a.points), l.member_id, l.expires_at, l.points,"
    " l.remaining, e.id, e.partner_id, CASE WHEN e.kind = 'earn' AND EXISTS (SELECT 1 FROM"
    " journal_entries r WHERE r.reverses_id = e.id) THEN 1 ELSE 0 END"
    " FROM lot_allocations a JOIN lots l ON l.id = a.lot_id"
    " JOIN journal_entries e ON e.id = l.entry_id WHERE a.entry_id = ANY(:es)"
    " GROUP BY a.entry_id, a.lot_id, l.member_id, l.expires_at, l.points, l.remaining, e.id,"
    " e.partner_id, e.kind HAVING SUM(a.points) < 0"
)
_DUE_LOTS = Raw(
    "SELECT member_id, id, remaining FROM lots"
    " WHERE member_id = ANY(:ms) AND remaining > 0 AND expires_at <= :as_of"
    " ORDER BY member_id, id"
)
# Keyset pagination over the live-lots index (member, expiry): each batch starts after the last.
_MEMBERS_WITH_DUE_LOTS = Raw(
    "SELECT DISTINCT member_id FROM lots WHERE member_id > :after AND remaining > 0"
    " AND expires_at <= :as_of ORDER BY member_id LIMIT :n"
)
_LIVE_BY_EXPIRY = Raw(
    "SELECT member_id, expires_at, SUM(remaining) FROM lots"
    " WHERE member_id = ANY(:ms) AND remaining > 0 AND expires_at > :now"
    " GROUP BY member_id, expires_at ORDER BY member_id, expires_at"
)


def create_wallet(session: Session, member_id: int) -> None:
    """Give a new member an empty wallet at the start of its chain, and its accounts (whose
    balance the wallet is)."""
    session.connection().execute(
        insert(table_of(Wallet)),
        {"member_id": member_id, "available": 0, "held": 0, "seq": 0, "head_hash": GENESIS_HASH},
    )
    accounts.open_for_members(session, [member_id])


def insert_entries(
    session: Session, entries: Sequence[dict[str, Any]], legs: Sequence[Sequence[Leg]]
) -> None:
    """Write entries and their postings (``legs[i]`` are ``entries[i]``'s), each recording the
    programme version that priced it (the transaction's: ``tally.programme.runtime.pricing``)."""
    if not entries:
        return
    version = runtime.pricing(session, entries[0]["created_at"]).version
    for entry in entries:
        entry["programme_version"] = version
    _INSERT_ENTRIES.execute(session, entries)
    _INSERT_POSTINGS.execute(
        session,
        [
            {"entry_id": entry["id"], "account": leg.account, "amount": leg.amount}
            for entry, entry_legs in zip(entries, legs, strict=True)
            for leg in entry_legs
        ],
    )


def lock_wallets(
    session: Session, member_ids: Sequence[int], *, wait: bool = True
) -> tuple[dict[int, WalletState], dict[int, MemberStatus]]:
    """The members' wallets, locked until commit in member order (so writers never deadlock),
    and the members' statuses; members that do not exist are missing from both. Without
    ``wait`` (PostgreSQL) so are members whose wallet another transaction holds."""
    return _wallets(session, member_ids, _LOCK_WALLETS if wait else _LOCK_FREE_WALLETS)


def wallet_states(
    session: Session, member_ids: Sequence[int]
) -> tuple[dict[int, WalletState], dict[int, MemberStatus]]:
    """:func:`lock_wallets` without a lock (a dry run, a read): what the members hold now."""
    return _wallets(session, member_ids, _WALLETS)


def _wallets(
    session: Session, member_ids: Sequence[int], statement: Raw
) -> tuple[dict[int, WalletState], dict[int, MemberStatus]]:
    wallets: dict[int, WalletState] = {}
    statuses: dict[int, MemberStatus] = {}
    for member_id, available, held, seq, head, status in statement.all(
        session, {"ms": sorted(set(member_ids))}
    ):
        wallets[int(member_id)] = WalletState(int(available), int(held), int(seq), str(head))
        statuses[int(member_id)] = MemberStatus(status)
    return wallets, statuses


def save_wallets(session: Session, before: dict[int, int], wallets: dict[int, WalletState]) -> bool:
    """Write moved wallets, each only if its chain is still at the position ``before`` names
    (``member_id`` → seq read under the lock); ``False`` when one had moved meanwhile."""
    rows = [
        {
            "m": member_id,
            "available": wallets[member_id].available,
            "held": wallets[member_id].held,
            "seq": wallets[member_id].seq,
            "head": wallets[member_id].head,
            "before": seq,
        }
        for member_id, seq in sorted(before.items())
    ]
    return _SAVE_WALLETS.execute(session, rows) == len(rows)


def insert_links(session: Session, links: Sequence[tuple[Link, uuid.UUID]]) -> None:
    """Record chain links ``(link, entry_id)``."""
    _INSERT_LINKS.execute(
        session,
        [
            {"member_id": link.member_id, "seq": link.seq, "entry_id": entry_id, "hash": link.hash}
            for link, entry_id in links
        ],
    )


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
    insert_lots(session, [(member_id, entry_id, points, expires_at)], now)


def insert_lots(
    session: Session, lots: Sequence[tuple[int, uuid.UUID, int, datetime]], now: datetime
) -> None:
    """Add lots ``(member_id, entry_id, points, expires_at)`` of freshly credited points, each
    with the programme version that priced it and what a point was worth under it."""
    if not lots:
        return
    priced = runtime.pricing(session, now)
    _INSERT_LOTS.execute(
        session,
        [
            {
                "member_id": member_id,
                "entry_id": entry_id,
                "points": points,
                "remaining": points,
                "expires_at": expires_at,
                "created_at": now,
                "programme_version": priced.version,
                "value_points": priced.rate.points,
                "value_minor": priced.rate.minor_units,
                "value_currency": priced.rate.currency,
            }
            for member_id, entry_id, points, expires_at in lots
        ],
    )


def live_lots(
    session: Session, member_ids: Sequence[int], now: datetime
) -> dict[int, list[LotView]]:
    """The members' unexpired lots with points left, earliest expiry first."""
    found: dict[int, list[LotView]] = {member_id: [] for member_id in member_ids}
    for member_id, lot_id, remaining, expires_at in _LIVE_LOTS.all(
        session, {"ms": sorted(set(member_ids)), "now": now}
    ):
        found[int(member_id)].append(LotView(int(lot_id), int(remaining), as_datetime(expires_at)))
    return found


def live_points_by_expiry(
    session: Session, member_ids: Sequence[int], now: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """The members' unexpired points, summed per expiry instant, soonest first."""
    found: dict[int, list[tuple[datetime, int]]] = {member_id: [] for member_id in member_ids}
    for member_id, expires_at, points in _LIVE_BY_EXPIRY.all(
        session, {"ms": sorted(set(member_ids)), "now": now}
    ):
        found[int(member_id)].append((as_datetime(expires_at), int(points)))
    return found


def change_lot(session: Session, entry_id: uuid.UUID, lot_id: int, points: int) -> bool:
    """Add ``points`` (negative: take) to a lot's remaining, guarded; record the allocation."""
    return change_lots(session, [(entry_id, lot_id, points)])


def change_lots(session: Session, changes: Sequence[tuple[uuid.UUID, int, int]]) -> bool:
    """Apply ``(entry_id, lot_id, points)`` changes to lots' remaining (negative: take), guarded,
    and record each as an allocation; ``False`` (allocations unwritten) when a guard refused."""
    net: dict[int, int] = defaultdict(int)
    for _entry_id, lot_id, points in changes:
        net[lot_id] += points
    rows = [{"lot": lot_id, "pts": points} for lot_id, points in sorted(net.items())]
    if _CHANGE_LOTS.execute(session, rows) != len(rows):
        return False
    _INSERT_ALLOCATIONS.execute(
        session,
        [
            {"entry_id": entry_id, "lot_id": lot_id, "points": points}
            for entry_id, lot_id, points in changes
        ],
    )
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


def holds(session: Session, hold_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, HeldRow]:
    """The holds of ``hold_ids`` that exist, with the entry that made each."""
    if not hold_ids:
        return {}
    found: dict[uuid.UUID, HeldRow] = {}
    for row in _HOLDS.all(session, {"ids": sorted(set(hold_ids))}):
        hold_id, member_id, partner, points, captured, status, reference, expires, made, entry = row
        state = HoldState(
            id=as_uuid(hold_id),
            member_id=int(member_id),
            partner_id=None if partner is None else int(partner),
            points=int(points),
            captured_points=int(captured),
            status=HoldStatus(status),
            reference=str(reference),
            expires_at=as_datetime(expires),
            created_at=as_datetime(made),
        )
        found[state.id] = HeldRow(state, as_uuid(entry))
    return found


def insert_holds(session: Session, made: Sequence[HeldRow]) -> None:
    """Record new holds, each with the entry that reserved its points."""
    _INSERT_HOLDS.execute(
        session,
        [
            {
                "id": item.hold.id,
                "member_id": item.hold.member_id,
                "partner_id": item.hold.partner_id,
                "points": item.hold.points,
                "captured_points": item.hold.captured_points,
                "status": item.hold.status.value,
                "reference": item.hold.reference,
                "expires_at": item.hold.expires_at,
                "created_at": item.hold.created_at,
                "entry_id": item.entry_id,
            }
            for item in made
        ],
    )


def close_holds(
    session: Session, closed: Sequence[tuple[HoldState, uuid.UUID]], now: datetime
) -> int:
    """Move holds still active and not timed out by ``now`` to the final state each
    ``(hold as closed, closing entry)`` names; returns how many moved."""
    return _CLOSE_HOLDS.execute(
        session,
        [
            {
                "id": hold.id,
                "status": hold.status.value,
                "captured": hold.captured_points,
                "entry": entry_id,
                "now": now,
            }
            for hold, entry_id in closed
        ],
    )


def holds_of(session: Session, member_id: int, *, active_only: bool) -> list[Hold]:
    query = select(Hold).where(Hold.member_id == member_id)
    if active_only:
        query = query.where(Hold.status == HoldStatus.ACTIVE)
    return list(session.scalars(query.order_by(Hold.created_at.desc()).limit(200)))


def timed_out_hold_ids(
    session: Session, member_ids: Sequence[int], now: datetime
) -> list[tuple[int, uuid.UUID]]:
    """``(member_id, hold_id)`` of the members' active holds whose timeout has passed by
    ``now``, in member order."""
    if not member_ids:
        return []
    return [
        (int(member_id), as_uuid(hold_id))
        for member_id, hold_id in _TIMED_OUT_HOLDS.all(
            session, {"ms": sorted(set(member_ids)), "now": now}
        )
    ]


def timed_out_holds(
    session: Session, member_id: int, now: datetime
) -> list[tuple[int, list[tuple[datetime, int, bool]]]]:
    """``(points, portions)`` of each of the member's active holds timed out by ``now``, with
    the portions it took from lots: ``(lot expiry, points, the lot's earn was reversed)``."""
    holds = session.execute(
        select(Hold.entry_id, Hold.points).where(
            Hold.member_id == member_id, Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= now
        )
    ).all()
    if not holds:
        return []
    source = aliased(JournalEntry)
    reversal = aliased(JournalEntry)
    is_reversed_earn = (
        select(source.id)
        .where(source.id == Lot.entry_id, source.kind == EntryKind.EARN)
        .where(exists().where(reversal.reverses_id == source.id))
        .exists()
    )
    rows = session.execute(
        select(LotAllocation.entry_id, Lot.expires_at, LotAllocation.points, is_reversed_earn)
        .join(Lot, Lot.id == LotAllocation.lot_id)
        .where(LotAllocation.entry_id.in_([entry_id for entry_id, _points in holds]))
    ).all()
    portions: dict[uuid.UUID, list[tuple[datetime, int, bool]]] = defaultdict(list)
    for entry_id, expires_at, points, clawed in rows:
        portions[entry_id].append((as_datetime(expires_at), -int(points), bool(clawed)))
    return [(int(points), portions[entry_id]) for entry_id, points in holds]


def lapse_holds(session: Session, closed: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> int:
    """Mark lapsed the holds of ``(hold_id, lapse entry)`` that are still active; returns how
    many were."""
    return _LAPSE_HOLDS.execute(session, [{"id": hold, "entry": entry} for hold, entry in closed])


def hold_portions(
    session: Session, entry_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[HoldPortion]]:
    """What the holds made by ``entry_ids`` still take from lots, per entry (in one read)."""
    found: dict[uuid.UUID, list[HoldPortion]] = {entry_id: [] for entry_id in entry_ids}
    if not entry_ids:
        return found
    for row in _HOLD_PORTIONS.all(session, {"es": sorted(set(entry_ids))}):
        entry_id, lot_id, taken, member_id, expires, points, remaining, earn, partner, gone = row
        found[as_uuid(entry_id)].append(
            HoldPortion(
                lot_id=int(lot_id),
                taken=int(taken),
                lot_member_id=int(member_id),
                expires_at=as_datetime(expires),
                lot_points=int(points),
                lot_remaining=int(remaining),
                reversed_earn=(int(partner or 0), as_uuid(earn)) if gone else None,
            )
        )
    return found


def lapsed_holds(
    session: Session, as_of: datetime, limit: int, *, skip: Sequence[uuid.UUID] = ()
) -> list[tuple[uuid.UUID, int]]:
    """``(hold_id, member_id)`` of active holds whose timeout has passed (but those of
    ``skip``), soonest timeout first."""
    query = select(Hold.id, Hold.member_id).where(
        Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= as_of
    )
    if skip:
        query = query.where(Hold.id.not_in(skip))
    rows = session.execute(query.order_by(Hold.expires_at, Hold.id).limit(limit))
    return [(row[0], int(row[1])) for row in rows]


def members_with_due_lots(
    session: Session, as_of: datetime, limit: int, *, after: int = 0
) -> list[int]:
    """The first ``limit`` members after ``after`` owning lots due to expire by ``as_of``."""
    return [
        int(row[0])
        for row in _MEMBERS_WITH_DUE_LOTS.all(session, {"after": after, "as_of": as_of, "n": limit})
    ]


def due_lots(
    session: Session, member_ids: Sequence[int], as_of: datetime
) -> dict[int, list[tuple[int, int]]]:
    """``(lot_id, remaining)`` of the members' lots due to expire by ``as_of``, per member in
    member order (members with none left out)."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for member_id, lot_id, remaining in _DUE_LOTS.all(
        session, {"ms": sorted(set(member_ids)), "as_of": as_of}
    ):
        found[int(member_id)].append((int(lot_id), int(remaining)))
    return dict(found)


def lock_wallet(session: Session, member_id: int) -> None:
    """Lock a wallet row for the rest of the transaction (SQLite's write lock already covers it)."""
    session.execute(select(Wallet.member_id).where(Wallet.member_id == member_id).with_for_update())


def history(
    session: Session,
    member_ids: Sequence[int],
    *,
    before: int | None,
    limit: int,
    partner_id: int | None = None,
) -> list[tuple[int, JournalEntry]]:
    """``(link_id, entry)`` of the members' entries, newest first, each entry once; only the
    entries made by ``partner_id`` when given.

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
    if partner_id is not None:
        query = query.where(JournalEntry.partner_id == partner_id)
    return [(row[0], row[1]) for row in session.execute(query)]


def count_entries(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def due_lots_sample(session: Session, as_of: datetime, limit: int) -> list[tuple[int, int, int]]:
    """``(member_id, lots, points)`` due to expire by ``as_of`` for the first ``limit`` members
    the job would take (read only, for a dry run)."""
    rows = session.execute(
        select(Lot.member_id, func.count(), func.coalesce(func.sum(Lot.remaining), 0))
        .where(Lot.remaining > 0, Lot.expires_at <= as_of)
        .group_by(Lot.member_id)
        .order_by(Lot.member_id)
        .limit(limit)
    ).all()
    return [(int(member), int(lots), int(points)) for member, lots, points in rows]


def due_lots_totals(session: Session, as_of: datetime) -> tuple[int, int, int]:
    """``(members, lots, points)`` due to expire by ``as_of``, in one read."""
    members, lots, points = session.execute(
        select(
            func.count(func.distinct(Lot.member_id)),
            func.count(),
            func.coalesce(func.sum(Lot.remaining), 0),
        ).where(Lot.remaining > 0, Lot.expires_at <= as_of)
    ).one()
    return int(members), int(lots), int(points)


def lapsed_holds_totals(session: Session, as_of: datetime) -> tuple[int, int]:
    """``(holds, points)`` of the active holds timed out by ``as_of``, in one read."""
    holds, points = session.execute(
        select(func.count(), func.coalesce(func.sum(Hold.points), 0)).where(
            Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= as_of
        )
    ).one()
    return int(holds), int(points)


def lapsed_holds_sample(session: Session, as_of: datetime, limit: int) -> list[Hold]:
    """The first ``limit`` active holds timed out by ``as_of``, in the order the job takes them."""
    return list(
        session.scalars(
            select(Hold)
            .where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= as_of)
            .order_by(Hold.expires_at, Hold.id)
            .limit(limit)
        )
    )
