"""Writes read what they decide on under the lock that guards the write (real connections).

Each test holds a first transaction open (a freeze, a merge, a spend, an unlink) until the
second, on another connection, waits for it — on PostgreSQL a lock wait seen in
``pg_stat_activity``; SQLite's write lock serialises the two anyway — and then lets it go:
the second must decide on what the first committed, not on what it read before the lock.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from support.race import race
from tally.config import Settings
from tally.db.session import Database
from tally.errors import Conflict, MemberFrozen, MemberMerged
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.flows import enrolment, family_spend
from tally.kit.clock import utcnow
from tally.ledger import holds as ledger_holds
from tally.ledger import repository, reversals
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.posting import Posted, policy_for
from tally.ledger.verify import verify
from tally.members import repository as member_repository
from tally.members import service as members
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.runtime import default_programme
from tally.tiers import service as tiers

PROGRAMME = default_programme(Settings())
POLICY = policy_for(PROGRAMME, Settings())
WAIT_SECONDS = 20
_serial = itertools.count()

Work = Callable[[Session], Any]


def _lock_waits(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            ).scalar_one()
        )


def interleaved(database: Database, first: Work, second: Work) -> object:
    """Run ``first`` in a transaction held open until ``second`` (its own transaction, on
    another thread) waits for it, then commit ``first``; ``second``'s result or exception."""
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def run_first() -> None:
        with database.write() as session:
            first(session)
            holding.set()
            release.wait(WAIT_SECONDS)

    def run_second() -> None:
        try:
            with database.write() as session:
                outcome["value"] = second(session)
        except Exception as error:
            outcome["value"] = error

    holder = threading.Thread(target=run_first)
    holder.start()
    assert holding.wait(WAIT_SECONDS)
    waiter = threading.Thread(target=run_second)
    waiter.start()
    if database.dialect == "postgresql":
        # Bounded polling for a condition (no clock to inject): the second is waiting for a
        # lock the first holds, or it has finished without waiting (what the bug would do).
        deadline = time.monotonic() + WAIT_SECONDS
        while waiter.is_alive() and _lock_waits(database) == 0:
            assert time.monotonic() < deadline, "the second transaction never waited"
            time.sleep(0.01)
    release.set()
    holder.join()
    waiter.join()
    return outcome["value"]


def _setup(db: Database, count: int, points: int) -> tuple[Origin, list[int]]:
    now = utcnow()
    with db.write() as session:
        partner = partners.create_partner(session, f"L{next(_serial)}", "l", now)
        origin = Origin(partner_id=partner.id)
        ids = []
        for _ in range(count):
            member_id, _ = enrolment.enrol(session, Identity("t", f"l{next(_serial)}"), {}, now)
            if points:
                ledger.earn(session, origin, member_id, points, f"s{next(_serial)}", now, POLICY)
            ids.append(member_id)
    return origin, ids


def _entries(db: Database) -> int:
    with db.read() as session:
        return repository.count_entries(session)


def _assert_sound(db: Database) -> None:
    with db.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_an_earn_reversal_reads_its_lots_after_the_wallet_lock(database: Database) -> None:
    origin, (member,) = _setup(database, 1, 0)
    with database.write() as session:
        earned = ledger.earn(session, origin, member, 100, "earn", utcnow(), POLICY)
    assert earned.entry_id is not None
    earn_id = earned.entry_id

    outcome = interleaved(
        database,
        lambda session: ledger.redeem(session, origin, member, 60, "spend", utcnow(), POLICY),
        lambda session: reversals.reverse(session, origin, earn_id, utcnow(), POLICY),
    )
    # The reversal claws back what the committed spend left, and reports the rest.
    assert isinstance(outcome, Posted), outcome
    assert outcome.details == {"clawed_back": 40, "shortfall": 60}
    with database.read() as session:
        wallet = repository.wallet(session, member)
        assert wallet is not None
        assert (wallet.available, wallet.held) == (0, 0)
    _assert_sound(database)


def _freeze(member: int) -> Work:
    return lambda session: members.freeze(session, member, "checking", utcnow())


def test_a_transfer_checks_the_givers_status_under_the_lock(database: Database) -> None:
    origin, (giver, receiver) = _setup(database, 2, 100)
    before = _entries(database)
    outcome = interleaved(
        database,
        _freeze(giver),
        lambda session: ledger.transfer(
            session, origin, giver, receiver, 10, "gift", utcnow(), POLICY
        ),
    )
    assert isinstance(outcome, MemberFrozen), outcome
    assert _entries(database) == before


def test_a_transfer_checks_the_receivers_status_under_the_lock(database: Database) -> None:
    origin, (giver, receiver) = _setup(database, 2, 100)
    outcome = interleaved(
        database,
        _freeze(receiver),
        lambda session: ledger.transfer(
            session, origin, giver, receiver, 10, "gift", utcnow(), POLICY
        ),
    )
    assert isinstance(outcome, MemberFrozen), outcome


def test_a_hold_checks_the_status_under_the_lock(database: Database) -> None:
    origin, (member,) = _setup(database, 1, 100)
    before = _entries(database)
    outcome = interleaved(
        database,
        _freeze(member),
        lambda session: ledger_holds.create_hold(
            session, origin, member, 10, "hold", 600, utcnow(), POLICY
        ),
    )
    assert isinstance(outcome, MemberFrozen), outcome
    assert _entries(database) == before


def test_a_capture_checks_the_status_under_the_lock(database: Database) -> None:
    origin, (member,) = _setup(database, 1, 100)
    with database.write() as session:
        hold, _posted = ledger_holds.create_hold(
            session, origin, member, 10, "hold", 600, utcnow(), POLICY
        )
    before = _entries(database)
    outcome = interleaved(
        database,
        _freeze(member),
        lambda session: ledger_holds.capture_hold(session, origin, hold.id, None, utcnow(), POLICY),
    )
    assert isinstance(outcome, MemberFrozen), outcome
    assert _entries(database) == before
    with database.read() as session:
        assert repository.hold(session, hold.id).status.value == "active"  # type: ignore[union-attr]


def test_a_family_spend_checks_the_spenders_status_under_the_lock(database: Database) -> None:
    origin, (owner, other) = _setup(database, 2, 100)
    with database.write() as session:
        family = families.create(session, owner, FamilyMode.POOL, utcnow())
        families.invite(session, family, owner, other, utcnow(), PROGRAMME.family)
        families.accept(session, family, other, other, utcnow())
    before = _entries(database)
    outcome = interleaved(
        database,
        _freeze(owner),
        lambda session: family_spend.spend(
            session, origin, family, owner, 150, "family", utcnow(), POLICY, PROGRAMME
        ),
    )
    assert isinstance(outcome, MemberFrozen), outcome
    assert _entries(database) == before


def _merge(survivor: int, merged: int) -> Work:
    return lambda session: enrolment.merge(
        session, survivor, merged, None, "same person", utcnow(), PROGRAMME
    )


def test_an_adjustment_checks_the_status_under_the_lock(database: Database) -> None:
    _origin, (survivor, merged) = _setup(database, 2, 100)
    outcome = interleaved(
        database,
        _merge(survivor, merged),
        lambda session: ledger.adjust(session, Origin(), merged, 5, "goodwill", utcnow(), POLICY),
    )
    assert isinstance(outcome, MemberMerged), outcome
    with database.read() as session:
        assert repository.wallet(session, merged).available == 0  # type: ignore[union-attr]
        assert repository.wallet(session, survivor).available == 200  # type: ignore[union-attr]
    _assert_sound(database)


def test_a_growth_adjustment_checks_the_status_under_the_lock(database: Database) -> None:
    _origin, (survivor, merged) = _setup(database, 2, 0)
    outcome = interleaved(
        database,
        _merge(survivor, merged),
        lambda session: tiers.adjust(session, merged, 50, "goodwill", utcnow(), PROGRAMME),
    )
    assert isinstance(outcome, MemberMerged), outcome


def test_two_unlinks_never_leave_a_member_without_an_identity(database: Database) -> None:
    _origin, (member,) = _setup(database, 1, 0)
    second = Identity("t", f"second-{uuid.uuid4().hex[:8]}")
    with database.write() as session:
        members.link(session, member, second, utcnow())
        first = next(
            Identity(item.namespace, item.external_id)
            for item in member_repository.identities(session, [member])
            if item.external_id != second.external_id
        )
    outcome = interleaved(
        database,
        lambda session: members.unlink(session, member, first),
        lambda session: members.unlink(session, member, second),
    )
    assert isinstance(outcome, Conflict), outcome
    with database.read() as session:
        left = member_repository.identities(session, [member])
    assert [item.external_id for item in left] == [second.external_id]


def test_a_merge_waits_for_the_other_way_round_and_is_refused(database: Database) -> None:
    _origin, (left, right) = _setup(database, 2, 100)
    outcome = interleaved(database, _merge(left, right), _merge(right, left))
    assert isinstance(outcome, MemberMerged), outcome
    _assert_sound(database)


@pytest.mark.parametrize("rounds", [4])
def test_opposite_merges_racing_never_deadlock(database: Database, rounds: int) -> None:
    for _ in range(rounds):
        _origin, (left, right) = _setup(database, 2, 10)

        def merge(index: int, left: int = left, right: int = right) -> object:
            survivor, merged = (left, right) if index % 2 else (right, left)
            with database.write() as session:
                return _merge(survivor, merged)(session)

        outcomes = race(2, merge)
        refused = [item for item in outcomes if isinstance(item, Exception)]
        assert len(refused) == 1, outcomes
        assert isinstance(refused[0], MemberMerged), refused
    _assert_sound(database)
