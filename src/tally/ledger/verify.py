"""``tally ledger verify``: prove the ledger is whole, balanced and untampered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.kit.crypto import GENESIS_HASH
from tally.ledger.domain import HoldStatus, Leg, entry_hash, link_hash, member_of
from tally.ledger.models import (
    ChainLink,
    Hold,
    JournalEntry,
    Lot,
    LotAllocation,
    Posting,
    Wallet,
)
from tally.programme.models import ProgrammeVersion

BATCH = 5000
MAX_REPORTED = 50


@dataclass
class Report:
    """What verification found; ``problems`` empty means the ledger is sound."""

    entries: int = 0
    links: int = 0
    wallets: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)
        elif len(self.problems) == MAX_REPORTED:
            self.problems.append("… more problems not listed")


def verify(session: Session) -> Report:
    """Check hashes, chains and balanced entries; wallets against postings, lots and holds."""
    report = Report()
    _check_entries(session, report)
    _check_chains(session, report)
    _check_wallets(session, report)
    _check_lots(session, report)
    _check_versions(session, report)
    return report


def _entries(session: Session) -> Iterator[list[JournalEntry]]:
    last = None
    while True:
        query = select(JournalEntry).order_by(JournalEntry.id).limit(BATCH)
        if last is not None:
            query = query.where(JournalEntry.id > last)
        rows = list(session.scalars(query))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _check_entries(session: Session, report: Report) -> None:
    for batch in _entries(session):
        ids = [entry.id for entry in batch]
        legs: dict[object, list[Leg]] = defaultdict(list)
        for entry_id, account, amount in session.execute(
            select(Posting.entry_id, Posting.account, Posting.amount).where(
                Posting.entry_id.in_(ids)
            )
        ):
            legs[entry_id].append(Leg(account, amount))
        for entry in batch:
            report.entries += 1
            entry_legs = legs.get(entry.id, [])
            if len(entry_legs) < 2 or sum(leg.amount for leg in entry_legs) != 0:
                report.add(f"entry {entry.id} does not balance: {entry_legs}")
            expected = entry_hash(
                entry_id=str(entry.id),
                kind=entry.kind.value,
                created_at=entry.created_at,
                partner_id=entry.partner_id,
                staff_id=entry.staff_id,
                member_id=entry.member_id,
                reference=entry.reference,
                reverses_id=str(entry.reverses_id) if entry.reverses_id else None,
                legs=entry_legs,
                memo=entry.memo,
                details=entry.details,
            )
            if expected != entry.hash:
                report.add(f"entry {entry.id} was altered: its content no longer matches its hash")
    orphans = session.scalar(
        select(func.count())
        .select_from(Posting)
        .outerjoin(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(JournalEntry.id.is_(None))
    )
    if orphans:
        report.add(f"{orphans} postings belong to no entry")


def _check_chains(session: Session, report: Report) -> None:
    heads = {row.member_id: (row.seq, row.head_hash) for row in session.scalars(select(Wallet))}
    linked: set[object] = set()
    member, previous, expected_seq = None, GENESIS_HASH, 0
    last: tuple[int, int] | None = None

    def close(member_id: int | None, seq: int, head: str) -> None:
        if member_id is None:
            return
        stored = heads.pop(member_id, None)
        if stored is None:
            report.add(f"member {member_id} has chain links but no wallet")
        elif stored != (seq, head):
            report.add(
                f"member {member_id}'s chain head does not match its wallet (entries removed?)"
            )

    while True:
        query = (
            select(
                ChainLink.member_id,
                ChainLink.seq,
                ChainLink.hash,
                ChainLink.entry_id,
                JournalEntry.hash,
            )
            .outerjoin(JournalEntry, JournalEntry.id == ChainLink.entry_id)
            .order_by(ChainLink.member_id, ChainLink.seq)
            .limit(BATCH)
        )
        if last is not None:
            query = query.where(
                (ChainLink.member_id > last[0])
                | ((ChainLink.member_id == last[0]) & (ChainLink.seq > last[1]))
            )
        rows = session.execute(query).all()
        if not rows:
            break
        for member_id, seq, stored_link, entry_id, digest in rows:
            if member_id != member:
                close(member, expected_seq, previous)
                member, previous, expected_seq = member_id, GENESIS_HASH, 0
            expected_seq += 1
            report.links += 1
            linked.add(entry_id)
            if int(seq) != expected_seq:
                report.add(f"member {member_id}'s chain skips from {expected_seq - 1} to {seq}")
                expected_seq = int(seq)
            entry_digest: str | None = digest  # the outer join yields None for a missing entry
            if entry_digest is None:
                report.add(f"member {member_id}'s chain link {seq} points to a missing entry")
            elif link_hash(previous, seq, entry_digest) != stored_link:
                report.add(
                    f"member {member_id}'s chain is broken at link {seq} (changed or reordered)"
                )
            previous = stored_link
        last = (rows[-1][0], rows[-1][1])
    close(member, expected_seq, previous)
    for member_id, (seq, head) in heads.items():
        if seq != 0 or head != GENESIS_HASH:
            report.add(f"member {member_id}'s wallet has a chain head but no links")
    unlinked = session.scalar(
        select(func.count())
        .select_from(JournalEntry)
        .outerjoin(ChainLink, ChainLink.entry_id == JournalEntry.id)
        .where(ChainLink.id.is_(None))
    )
    if unlinked:
        report.add(f"{unlinked} entries are in no member's chain (inserted outside the ledger?)")


def _check_wallets(session: Session, report: Report) -> None:
    posted: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for account, total in session.execute(
        select(Posting.account, func.sum(Posting.amount))
        .where(Posting.account.like("member:%"))
        .group_by(Posting.account)
    ):
        owner = member_of(account)
        if owner is not None:
            posted[owner[0]][0 if owner[1] == "available" else 1] += int(total)
    in_lots = {
        row[0]: row[1]
        for row in session.execute(
            select(Lot.member_id, func.sum(Lot.remaining)).group_by(Lot.member_id)
        )
    }
    in_holds = {
        row[0]: row[1]
        for row in session.execute(
            select(Hold.member_id, func.sum(Hold.points))
            .where(Hold.status == HoldStatus.ACTIVE)
            .group_by(Hold.member_id)
        )
    }
    for wallet in session.scalars(select(Wallet).order_by(Wallet.member_id)):
        report.wallets += 1
        member_id = wallet.member_id
        if wallet.available < 0 or wallet.held < 0:
            report.add(f"member {member_id} is negative: {wallet.available}/{wallet.held}")
        available, held = posted.pop(member_id, [0, 0])
        if (wallet.available, wallet.held) != (available, held):
            report.add(
                f"member {member_id}'s balance {wallet.available}/{wallet.held} differs from "
                f"its postings {available}/{held}"
            )
        if wallet.available != int(in_lots.get(member_id) or 0):
            report.add(
                f"member {member_id}'s available {wallet.available} differs from its lots "
                f"{int(in_lots.get(member_id) or 0)}"
            )
        if wallet.held != int(in_holds.get(member_id) or 0):
            report.add(
                f"member {member_id}'s held {wallet.held} differs from its active holds "
                f"{int(in_holds.get(member_id) or 0)}"
            )
    for member_id in posted:
        report.add(f"postings name member {member_id}, who has no wallet")


def _check_lots(session: Session, report: Report) -> None:
    changes = (
        select(LotAllocation.lot_id, func.sum(LotAllocation.points).label("delta"))
        .group_by(LotAllocation.lot_id)
        .subquery()
    )
    rows = session.execute(
        select(Lot.id, Lot.points, Lot.remaining, func.coalesce(changes.c.delta, 0))
        .outerjoin(changes, changes.c.lot_id == Lot.id)
        .where(Lot.points + func.coalesce(changes.c.delta, 0) != Lot.remaining)
        .limit(MAX_REPORTED)
    ).all()
    for lot_id, points, remaining, delta in rows:
        report.add(
            f"lot {lot_id} holds {remaining}, but {points} less {-delta} used is {points + delta}"
        )


def _check_versions(session: Session, report: Report) -> None:
    """Every entry and lot names a programme version that was in force (one that exists and
    was not cancelled), and every lot records a point's value (grouped queries: bounded)."""
    live = select(ProgrammeVersion.version).where(ProgrammeVersion.cancelled_at.is_(None))
    for table, column in (
        ("journal entries", JournalEntry.programme_version),
        ("lots", Lot.programme_version),
    ):
        for version, count in session.execute(
            select(column, func.count())
            .where(column.is_not(None), column.not_in(live))
            .group_by(column)
            .order_by(column)
        ):
            report.add(
                f"{count} {table} name programme version {version}, which never was in force"
            )
    unvalued = session.scalar(
        select(func.count()).select_from(Lot).where(Lot.value_points.is_(None))
    )
    if unvalued:
        report.add(f"{unvalued} lots record no value of a point")
