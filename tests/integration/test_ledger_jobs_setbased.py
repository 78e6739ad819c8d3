"""The set-based expiry and lapse jobs: the same ledger as the row-by-row code they replaced, a
constant number of statements per batch, each lot expired and each hold lapsed once under
concurrent runs, and a ledger that verifies afterwards.

The row-by-row code is kept here, as the reference (``_reference_expire``, ``_reference_lapse``):
a member at a time, one entry posted and each lot changed by a statement of its own.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from support.policy import policy_of
from support.race import race
from tally.accounts.models import Account, AccountStripe
from tally.config import Settings
from tally.db import raw
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.kit.ids import uuid7
from tally.ledger import holds as ledger_holds
from tally.ledger import jobs, repository, reversals
from tally.ledger import service as ledger
from tally.ledger.domain import (
    SYSTEM_EXPIRED,
    HoldStatus,
    Leg,
    Origin,
    member_available,
    member_held,
    partner_issued,
    plan_release,
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
from tally.ledger.posting import post, still_consumed
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType
from tally.outbox.models import OutboxEvent
from tally.partners import service as partners

POLICY = policy_of(Settings())
_serial = itertools.count()


# -- the row-by-row reference ---------------------------------------------------------------------


def _reference_expire(session: Session, as_of: datetime) -> None:
    due = (Lot.remaining > 0, Lot.expires_at <= as_of)
    members = session.scalars(
        select(Lot.member_id).where(*due).group_by(Lot.member_id).order_by(Lot.member_id)
    ).all()
    for member_id in members:
        lots = session.execute(
            select(Lot.id, Lot.remaining).where(Lot.member_id == member_id, *due).order_by(Lot.id)
        ).all()
        total = sum(remaining for _lot, remaining in lots)
        entry_id = post(
            session,
            kind=EntryKind.EXPIRE,
            legs=[Leg(member_available(member_id), -total), Leg(SYSTEM_EXPIRED, total)],
            origin=Origin(),
            member_id=member_id,
            now=as_of,
            details={"lots": len(lots)},
        )
        for lot_id, remaining in lots:
            assert repository.change_lot(session, entry_id, lot_id, -remaining)


def _reference_lapse(session: Session, as_of: datetime) -> None:
    holds = session.execute(
        select(
            Hold.id,
            Hold.member_id,
            Hold.partner_id,
            Hold.points,
            Hold.reference,
            Hold.expires_at,
            Hold.entry_id,
        )
        .where(Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= as_of)
        .order_by(Hold.expires_at, Hold.id)
    ).all()
    for hold_id, member_id, partner_id, points, reference, expires_at, made_by in holds:
        entry_id = uuid7()
        session.execute(
            update(Hold)
            .where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
            .values(status=HoldStatus.LAPSED, captured_points=0, closed_entry_id=entry_id)
        )
        post(
            session,
            kind=EntryKind.LAPSE,
            legs=[Leg(member_held(member_id), -points), Leg(member_available(member_id), points)],
            origin=Origin(partner_id=partner_id),
            member_id=member_id,
            now=as_of,
            entry_id=entry_id,
            reference=reference,
            details={"hold_id": str(hold_id), "released": points},
        )
        data = {
            "hold_id": str(hold_id),
            "member_id": member_id,
            "points": points,
            "partner_id": partner_id,
            "reference": reference,
            "entry_id": str(entry_id),
            "expired_at": expires_at.isoformat(),
        }
        event = Event(EventType.HOLD_LAPSED, data, expires_at, member_id, partner_id)
        outbox.emit(session, [event], as_of)
        portions = plan_release(still_consumed(session, [made_by]), points)
        _reference_restore(session, entry_id, member_id, portions, as_of)


def _reference_restore(
    session: Session,
    entry_id: uuid.UUID,
    member_id: int,
    portions: list[tuple[int, int]],
    now: datetime,
) -> None:
    """Points back to their lots, keeping the lots' expiry; a reversed earn's are clawed back."""
    kept: dict[datetime, int] = defaultdict(int)
    clawed: dict[int, dict[str, Any]] = {}
    for lot_id, points in portions:
        lot = repository.lot(session, lot_id)
        assert lot is not None
        source = repository.entry(session, lot.entry_id)
        reversed_earn = (
            source is not None
            and source.kind is EntryKind.EARN
            and repository.entry_reversal(session, source.id) is not None
        )
        if reversed_earn and repository.change_lot(session, entry_id, lot_id, points):
            assert source is not None
            claim = clawed.setdefault(
                source.partner_id or 0, {"points": 0, "earns": [], "lots": []}
            )
            claim["points"] += points
            claim["earns"].append(str(source.id))
            claim["lots"].append((lot_id, points))
            continue
        if lot.member_id == member_id and repository.change_lot(session, entry_id, lot_id, points):
            continue
        kept[lot.expires_at] += points
    for expires_at, points in sorted(kept.items()):
        repository.insert_lot(
            session,
            member_id=member_id,
            entry_id=entry_id,
            points=points,
            expires_at=expires_at,
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
            assert repository.change_lot(session, claw_id, lot_id, -points)


# -- random ledgers -------------------------------------------------------------------------------


def _random_ledger(database: Database, seed: int, members: int, now: datetime) -> None:
    """Members with several lots (some due, some partly spent), holds timed out or not, captured,
    voided, holds on earns reversed afterwards, with two partners."""
    rng = random.Random(seed)
    with database.write() as session:
        origins = [
            Origin(partner_id=partners.create_partner(session, f"S{next(_serial)}", "s", now).id)
            for _ in range(2)
        ]
        for _ in range(members):
            member_id, _ = enrolment.enrol(session, Identity("t", f"s{next(_serial)}"), {}, now)
            earns = []
            for _lot in range(rng.randint(1, 4)):
                origin = rng.choice(origins)
                days = rng.choice([1, 1, 3, 10])  # as_of is 2 days on: the 1-day lots are due
                earned = ledger.earn(
                    session,
                    origin,
                    member_id,
                    rng.randint(10, 200),
                    f"e{next(_serial)}",
                    now,
                    POLICY,
                    now + timedelta(days=days, seconds=rng.randint(0, 3)),
                )
                earns.append((origin, earned.entry_id))
            if rng.random() < 0.5:
                points = rng.randint(5, 80)
                _try(
                    ledger.redeem,
                    session,
                    origins[0],
                    member_id,
                    points,
                    f"r{next(_serial)}",
                    now,
                    POLICY,
                )
            for _hold in range(rng.randint(0, 3)):
                origin = rng.choice(origins)
                seconds = rng.choice([60, 90, 3 * 86400])  # the first two time out by as_of
                points = rng.randint(5, 120)
                reference = f"h{next(_serial)}"
                made = _try(
                    ledger_holds.create_hold,
                    session,
                    origin,
                    member_id,
                    points,
                    reference,
                    seconds,
                    now,
                    POLICY,
                )
                if made is None:
                    continue
                hold, _posted = made
                fate = rng.random()
                if fate < 0.15:
                    ledger_holds.capture_hold(session, origin, hold.id, None, now, POLICY)
                elif fate < 0.25:
                    ledger_holds.void_hold(session, origin, hold.id, now, POLICY)
            for origin, earn_id in earns:
                if rng.random() < 0.3:  # a held part of it is clawed back when the hold lapses
                    _try(reversals.reverse, session, origin, earn_id, now, POLICY)


def _try(work: Callable[..., Any], *args: Any) -> Any:
    try:
        return work(*args)
    except Exception as error:  # a refusal (not enough points …) writes nothing
        if getattr(error, "code", None) is None:
            raise
        return None


# -- the ledger as seen from outside, with generated ids replaced by stable labels ---------------


def _snapshot(session: Session) -> dict[str, Any]:
    label: dict[str, str] = {}
    for entry_id, member_id, seq in session.execute(
        select(ChainLink.entry_id, ChainLink.member_id, ChainLink.seq).order_by(ChainLink.id)
    ):
        label.setdefault(str(entry_id), f"entry {member_id}.{seq}")
    for hold_id, reference in session.execute(select(Hold.id, Hold.reference)):
        label[str(hold_id)] = f"hold {reference}"

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: norm(item) for key, item in value.items()}
        if isinstance(value, list):
            return [norm(item) for item in value]
        if isinstance(value, uuid.UUID):
            return label[str(value)]
        return label.get(value, value) if isinstance(value, str) else value

    legs: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for entry_id, account, amount in session.execute(
        select(Posting.entry_id, Posting.account, Posting.amount)
    ):
        legs[label[str(entry_id)]].append((account, amount))
    entries = {
        label[str(row.id)]: (
            row.kind,
            row.member_id,
            row.partner_id,
            row.reference,
            norm(row.reverses_id) if row.reverses_id else None,
            norm(row.details),
            row.programme_version,
            row.created_at,
            sorted(legs[label[str(row.id)]]),
        )
        for row in session.execute(select(JournalEntry.__table__))
    }
    lot_key = {
        row.id: (label[str(row.entry_id)], row.expires_at, row.points)
        for row in session.execute(select(Lot.__table__))
    }
    lots = sorted(
        (*lot_key[row.id], row.member_id, row.remaining, row.programme_version)
        for row in session.execute(select(Lot.__table__))
    )
    allocations: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for row in session.execute(select(LotAllocation.__table__).order_by(LotAllocation.id)):
        allocations[label[str(row.entry_id)]].append((lot_key[row.lot_id], row.points))
    holds = {
        row.reference: (row.status, row.captured_points, norm(row.closed_entry_id))
        for row in session.execute(select(Hold.__table__))
    }
    wallets = {
        row.member_id: (row.available, row.held, row.seq)
        for row in session.execute(select(Wallet.__table__))
    }
    accounts = dict(
        session.execute(
            select(Account.code, func.sum(AccountStripe.balance))
            .join(AccountStripe, AccountStripe.account_id == Account.id)
            .group_by(Account.code)
        ).all()
    )
    # Events in order per member and type (the set-based lapse writes a batch's entry.posted
    # events before its hold.lapsed ones; the row-by-row code interleaved them per hold).
    events: dict[tuple[Any, str], list[Any]] = defaultdict(list)
    for row in session.execute(select(OutboxEvent.__table__).order_by(OutboxEvent.id)):
        events[(row.member_id, row.type)].append((row.partner_id, row.occurred_at, norm(row.data)))
    return {
        "entries": entries,
        "lots": lots,
        "allocations": dict(allocations),
        "holds": holds,
        "wallets": wallets,
        "accounts": accounts,
        "events": dict(events),
    }


class _Rollback(Exception):
    pass


def _reference_outcome(database: Database, as_of: datetime) -> dict[str, Any]:
    """The ledger as the row-by-row jobs leave it (worked out, then rolled back)."""
    found: dict[str, Any] = {}
    with suppress(_Rollback), database.write() as session:
        _reference_expire(session, as_of)
        _reference_lapse(session, as_of)
        found.update(_snapshot(session))
        raise _Rollback
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_set_based_jobs_leave_the_ledger_the_row_by_row_jobs_left(
    database: Database, seed: int
) -> None:
    now = utcnow()
    as_of = now + timedelta(days=2)
    _random_ledger(database, seed, 14, now)
    expected = _reference_outcome(database, as_of)
    assert any(kind is EntryKind.EXPIRE for kind, *_ in expected["entries"].values())
    assert any(kind is EntryKind.LAPSE for kind, *_ in expected["entries"].values())

    report = jobs.expire(database.write, as_of, batch=4)  # several batches of each job

    with database.read() as session:
        found = _snapshot(session)
    for part in expected:
        assert found[part] == expected[part], part
    kinds = [kind for kind, *_ in found["entries"].values()]
    assert report.members == kinds.count(EntryKind.EXPIRE)
    assert report.holds_lapsed == kinds.count(EntryKind.LAPSE)
    assert report.failures == ()
    with database.read() as session:
        checked = verify(session)
    assert checked.ok, checked.problems
    # Run again at the same moment: only the points the lapses gave back to lots already due
    # expire (as the row-by-row job did), and the time after that nothing is left to do.
    again = jobs.expire(database.write, as_of, batch=4)
    assert again.holds_lapsed == 0
    last = jobs.expire(database.write, as_of, batch=4)
    assert (last.members, last.lots, last.holds_lapsed) == (0, 0, 0)


def test_a_clawback_of_a_reversed_earn_completes_when_its_hold_lapses(database: Database) -> None:
    now = utcnow()
    with database.write() as session:
        origin = Origin(partner_id=partners.create_partner(session, "CLAW", "c", now).id)
        member_id, _ = enrolment.enrol(session, Identity("t", "claw"), {}, now)
        earned = ledger.earn(session, origin, member_id, 100, "e", now, POLICY)
        hold, _ = ledger_holds.create_hold(session, origin, member_id, 60, "h", 60, now, POLICY)
        reversals.reverse(session, origin, earned.entry_id, now, POLICY)  # 40 are clawed now
    expected = _reference_outcome(database, now + timedelta(hours=1))

    assert jobs.lapse_holds(database.write, now + timedelta(hours=1)).lapsed == 1

    with database.read() as session:
        found = _snapshot(session)
        wallet = repository.wallet(session, member_id)
    assert found == expected
    assert wallet is not None
    assert (wallet.available, wallet.held) == (0, 0)
    clawbacks = [
        details
        for kind, *_, details, _v, _at, _legs in found["entries"].values()
        if kind is EntryKind.REVERSAL and details.get("late_clawback_of")
    ]
    assert clawbacks == [{"late_clawback_of": [f"entry {member_id}.1"], "clawed_back": 60}]
    assert found["holds"]["h"][0] is HoldStatus.LAPSED
    _ = hold


# -- statements per batch -------------------------------------------------------------------------


@contextmanager
def _counting(database: Database) -> Iterator[list[str]]:
    """Every statement run: through SQLAlchemy, and straight on the driver (tally.db.raw, one
    per call however many rows it takes)."""
    from sqlalchemy import event

    seen: list[str] = []

    def through_sqlalchemy(*args: Any) -> None:
        seen.append(str(args[2]))

    originals = {
        (raw.Raw, "execute"): raw.Raw.execute,
        (raw.Raw, "execute_many"): raw.Raw.execute_many,
        (raw.Bulk, "execute"): raw.Bulk.execute,
        (raw.Bulk, "returning"): raw.Bulk.returning,
    }

    def counted(kind: type, name: str) -> Callable[..., Any]:
        original = originals[(kind, name)]

        def wrapper(self: Any, session: Session, params: Any) -> Any:
            seen.append(getattr(self, "pg_sql", ""))
            return original(self, session, params)

        return wrapper

    event.listen(database.engine, "before_cursor_execute", through_sqlalchemy)
    for kind, name in originals:
        setattr(kind, name, counted(kind, name))
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", through_sqlalchemy)
        for (kind, name), original in originals.items():
            setattr(kind, name, original)


def _members_with_due_lots_and_holds(database: Database, count: int, now: datetime) -> list[int]:
    with database.write() as session:
        origin = Origin(
            partner_id=partners.create_partner(session, f"N{next(_serial)}", "n", now).id
        )
        ids = []
        for index in range(count):
            member_id, _ = enrolment.enrol(session, Identity("t", f"n{next(_serial)}"), {}, now)
            for days in (1, 1, 10):
                ledger.earn(
                    session,
                    origin,
                    member_id,
                    50,
                    f"e{next(_serial)}",
                    now,
                    POLICY,
                    now + timedelta(days=days),
                )
            ledger_holds.create_hold(
                session, origin, member_id, 70, f"h{next(_serial)}", 60, now, POLICY
            )
            if index % 3 == 0:  # a hold on an earn reversed meanwhile: clawed back at the lapse
                soon = now + timedelta(hours=12)
                earned = ledger.earn(
                    session, origin, member_id, 20, f"e{next(_serial)}", now, POLICY, soon
                )
                ledger_holds.create_hold(
                    session, origin, member_id, 60, f"h{next(_serial)}", 60, now, POLICY
                )
                reversals.reverse(session, origin, earned.entry_id, now, POLICY)
            ids.append(member_id)
    return ids


def _preview(database: Database, as_of: datetime) -> jobs.ExpiryPreview:
    with database.read() as session:
        return jobs.preview_expiry(session, as_of)


def _statements_of_one_batch(database: Database, members: int) -> tuple[int, int]:
    now = utcnow()
    _members_with_due_lots_and_holds(database, members, now)
    as_of = now + timedelta(days=2)
    due = _preview(database, as_of)
    with _counting(database) as seen:
        expired = jobs.expire_lots(database.write, as_of, batch=1000)
    expiry = len(seen)
    with _counting(database) as seen:
        lapsed = jobs.lapse_holds(database.write, as_of, batch=1000)
    assert expired[:3] == (due.members, due.lots, due.points)
    assert lapsed.lapsed == due.lapses.holds == members + (members + 2) // 3
    return expiry, len(seen)


def test_a_batch_takes_the_same_statements_for_10_members_as_for_200(database: Database) -> None:
    few = _statements_of_one_batch(database, 10)
    many = _statements_of_one_batch(database, 200)

    assert few == many
    assert few[0] <= 20, few
    assert few[1] <= 25, few


# -- concurrency on PostgreSQL --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_jobs_run_at_once_expire_and_lapse_each_row_once(database: Database) -> None:
    now = utcnow()
    members = _members_with_due_lots_and_holds(database, 60, now)
    as_of = now + timedelta(days=2)

    due = _preview(database, as_of)
    holds = len(members) + 20

    reports = race(4, lambda index: jobs.expire(database.write, as_of, batch=7 + index))

    assert all(isinstance(report, jobs.ExpiryReport) for report in reports), reports
    done = [report for report in reports if isinstance(report, jobs.ExpiryReport)]
    assert sum(report.members for report in done) == due.members
    assert sum(report.lots for report in done) == due.lots
    assert sum(report.points for report in done) == due.points
    assert sum(report.holds_lapsed for report in done) == due.lapses.holds == holds
    assert all(report.failures == () for report in done)
    with database.read() as session:
        expiries = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.kind == EntryKind.EXPIRE)
        )
        lapses = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.kind == EntryKind.LAPSE)
        )
        lapsed_events = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "hold.lapsed")
        )
        checked = verify(session)
    assert (expiries, lapses, lapsed_events) == (due.members, holds, holds)
    assert checked.ok, checked.problems
