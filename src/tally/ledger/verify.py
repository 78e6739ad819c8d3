"""``tally ledger verify``: prove the ledger is whole, balanced and untampered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import String, cast, func, literal, select, text
from sqlalchemy.orm import Session

from tally.kit.crypto import GENESIS_HASH
from tally.ledger.domain import HoldStatus, Leg, entry_hash, link_hash
from tally.ledger.models import (
    ChainLink,
    Hold,
    JournalEntry,
    Lot,
    LotAllocation,
    Posting,
    Wallet,
)
from tally.ledger.verify_accounts import check_accounts
from tally.programme.models import ProgrammeVersion

BATCH = 5000
MAX_REPORTED = 50


@dataclass
class Report:
    """What verification found; ``problems`` empty means the ledger is sound."""

    entries: int = 0
    links: int = 0
    wallets: int = 0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)
        elif len(self.problems) == MAX_REPORTED:
            self.problems.append("… more problems not listed")


Check = Callable[[Session, "Report"], None]


def verify(session: Session, *, also: Sequence[Check] = ()) -> Report:
    """Check hashes, chains and balanced entries; wallets against postings, lots and holds;
    accounts against postings, and rows that belong to nothing; then the checks ``also`` names
    (those of the layers above the ledger), in the same snapshot. On PostgreSQL, a session whose
    transaction has not begun reads everything in one read-only REPEATABLE READ snapshot."""
    report = Report()
    snapshot(session)
    _check_entries(session, report)
    _check_chains(session, report)
    _check_wallets(session, report)
    check_accounts(session, report)
    _check_lots(session, report)
    _check_versions(session, report)
    for check in also:
        check(session, report)
    return report


def snapshot(session: Session) -> None:
    """Begin the session's transaction as one read-only snapshot (PostgreSQL; an SQLite read
    transaction is one already): every check then sees the ledger of one instant, however long
    verification takes and whatever commits meanwhile."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        # Every check scans whole tables: a nested loop, which the planner picks when it cannot
        # estimate a join on a computed account name (``member:<id>:available``), turns one
        # scan into one per wallet (minutes at 100,000 members).
        session.execute(text("SET LOCAL enable_nestloop = off"))


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
    """Every wallet (the balance of its member's accounts) against its postings, lots and active
    holds, in one grouped query that returns only the wallets that disagree."""
    report.wallets = int(session.scalar(select(func.count()).select_from(Wallet)) or 0)
    posted = (
        select(Posting.account, func.sum(Posting.amount).label("total"))
        .where(Posting.account.like("member:%"))
        .group_by(Posting.account)
        .cte("posted")
    )
    available, held = posted.alias("available"), posted.alias("held")
    in_lots = (
        select(Lot.member_id, func.sum(Lot.remaining).label("points"))
        .group_by(Lot.member_id)
        .subquery()
    )
    in_holds = (
        select(Hold.member_id, func.sum(Hold.points).label("points"))
        .where(Hold.status == HoldStatus.ACTIVE)
        .group_by(Hold.member_id)
        .subquery()
    )
    member = cast(Wallet.member_id, String)
    columns = (
        func.coalesce(available.c.total, 0),
        func.coalesce(held.c.total, 0),
        func.coalesce(in_lots.c.points, 0),
        func.coalesce(in_holds.c.points, 0),
    )
    rows = session.execute(
        select(Wallet.member_id, Wallet.available, Wallet.held, *columns)
        .outerjoin(available, available.c.account == literal("member:") + member + ":available")
        .outerjoin(held, held.c.account == literal("member:") + member + ":held")
        .outerjoin(in_lots, in_lots.c.member_id == Wallet.member_id)
        .outerjoin(in_holds, in_holds.c.member_id == Wallet.member_id)
        .where(
            (Wallet.available < 0)
            | (Wallet.held < 0)
            | (Wallet.available != columns[0])
            | (Wallet.held != columns[1])
            | (Wallet.available != columns[2])
            | (Wallet.held != columns[3])
        )
        .order_by(Wallet.member_id)
        .limit(MAX_REPORTED)
    )
    for member_id, wallet_available, wallet_held, *found in rows:
        posted_available, posted_held, lots, holds = (int(value) for value in found)
        if wallet_available < 0 or wallet_held < 0:
            report.add(f"member {member_id} is negative: {wallet_available}/{wallet_held}")
        if (wallet_available, wallet_held) != (posted_available, posted_held):
            report.add(
                f"member {member_id}'s balance {wallet_available}/{wallet_held} differs from "
                f"its postings {posted_available}/{posted_held}"
            )
        if wallet_available != lots:
            report.add(
                f"member {member_id}'s available {wallet_available} differs from its lots {lots}"
            )
        if wallet_held != holds:
            report.add(
                f"member {member_id}'s held {wallet_held} differs from its active holds {holds}"
            )


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
