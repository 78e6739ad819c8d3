"""Real parallel connections: balances are never overdrawn, nothing deadlocks, jobs run once."""

from __future__ import annotations

import itertools
from datetime import timedelta

from support.policy import policy_of
from support.race import race
from tally.config import Settings
from tally.db.session import Database
from tally.errors import HoldNotActive, InsufficientPoints
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import holds as ledger_holds
from tally.ledger import jobs, repository
from tally.ledger import posting as ledger_posting
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners

POLICY = policy_of(Settings())
THREADS = 16
_serial = itertools.count()


def _setup(db: Database, members: int, points: int) -> tuple[Origin, list[int]]:
    now = utcnow()
    with db.write() as session:
        partner = partners.create_partner(session, f"C{next(_serial)}", "c", now)
        origin = Origin(partner_id=partner.id)
        ids = []
        for _ in range(members):
            member_id, _ = enrolment.enrol(session, Identity("t", f"c{next(_serial)}"), {}, now)
            if points:
                ledger.earn(session, origin, member_id, points, f"seed{next(_serial)}", now, POLICY)
            ids.append(member_id)
    return origin, ids


def _assert_sound(db: Database) -> None:
    with db.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_parallel_redemptions_never_overdraw(database: Database) -> None:
    origin, (member,) = _setup(database, 1, 100)

    def redeem(index: int) -> object:
        with database.write() as session:
            return ledger.redeem(session, origin, member, 10, f"r{index}", utcnow(), POLICY)

    outcomes = race(THREADS * 2, redeem)
    succeeded = [item for item in outcomes if isinstance(item, ledger_posting.Posted)]
    refused = [item for item in outcomes if isinstance(item, InsufficientPoints)]
    assert len(succeeded) == 10
    assert len(refused) == THREADS * 2 - 10
    with database.read() as session:
        wallet = repository.wallet(session, member)
        assert wallet is not None
        assert (wallet.available, wallet.held) == (0, 0)
    _assert_sound(database)


def test_parallel_holds_and_captures_never_overdraw(database: Database) -> None:
    origin, (member,) = _setup(database, 1, 50)

    def hold(index: int) -> object:
        with database.write() as session:
            found, _ = ledger_holds.create_hold(
                session, origin, member, 7, f"h{index}", 600, utcnow(), POLICY
            )
            return found.id

    holds = [item for item in race(THREADS, hold) if not isinstance(item, Exception)]
    assert len(holds) == 7  # 7 × 7 = 49 ≤ 50 < 56

    def settle(index: int) -> object:
        hold_id = holds[index % len(holds)]
        with database.write() as session:
            if index % 2:
                return ledger_holds.capture_hold(session, origin, hold_id, 3, utcnow(), POLICY)
            return ledger_holds.void_hold(session, origin, hold_id, utcnow(), POLICY)

    outcomes = race(len(holds) * 2, settle)
    assert sum(1 for item in outcomes if isinstance(item, HoldNotActive)) == len(holds)
    _assert_sound(database)
    with database.read() as session:
        wallet = repository.wallet(session, member)
        assert wallet is not None
        assert wallet.held == 0


def test_opposing_transfers_neither_deadlock_nor_lose_points(database: Database) -> None:
    origin, (left, right) = _setup(database, 2, 1000)

    def transfer(index: int) -> object:
        giver, receiver = (left, right) if index % 2 else (right, left)
        with database.write() as session:
            return ledger.transfer(
                session, origin, giver, receiver, 5, f"t{index}", utcnow(), POLICY
            )

    outcomes = race(THREADS * 2, transfer)
    assert all(isinstance(item, ledger_posting.Posted) for item in outcomes), outcomes
    with database.read() as session:
        total = sum(repository.wallet(session, m).available for m in (left, right))  # type: ignore[union-attr]
    assert total == 2000
    _assert_sound(database)


def test_earns_for_different_members_run_side_by_side(database: Database) -> None:
    origin, members = _setup(database, THREADS, 0)

    def earn(index: int) -> object:
        with database.write() as session:
            return ledger.earn(session, origin, members[index], 25, f"e{index}", utcnow(), POLICY)

    outcomes = race(THREADS, earn)
    assert all(isinstance(item, ledger_posting.Posted) for item in outcomes), outcomes
    _assert_sound(database)


def test_expiry_job_racing_itself_expires_each_lot_once(database: Database) -> None:
    origin, members = _setup(database, 20, 0)
    now = utcnow()
    with database.write() as session:
        for member in members:
            ledger.earn(
                session, origin, member, 30, f"x{member}", now, POLICY, now + timedelta(days=1)
            )
    later = now + timedelta(days=2)
    reports = race(4, lambda _index: jobs.expire(database.write, later, batch=5))
    errors = [item for item in reports if isinstance(item, Exception)]
    assert not errors, errors
    assert sum(report.points for report in reports) == 20 * 30  # type: ignore[attr-defined]
    _assert_sound(database)
