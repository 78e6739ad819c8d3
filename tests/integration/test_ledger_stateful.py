"""Hypothesis drives random sequences of ledger operations; the invariants must always hold.

The model tracks each member's total and held points from what every operation reported;
the database must agree with it, never overdraw, never refuse a spend it could cover, and
`verify` must find nothing wrong after every step.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from sqlalchemy import select

from support.policy import policy_of
from tally.config import Settings
from tally.db.session import Database
from tally.errors import HoldNotActive, InsufficientPoints, NotReversible, TallyError
from tally.flows import enrolment
from tally.ledger import holds as ledger_holds
from tally.ledger import jobs, repository
from tally.ledger import reversals as ledger_reversals
from tally.ledger import service as ledger
from tally.ledger.domain import HoldStatus, Origin
from tally.ledger.models import EntryKind, Hold, JournalEntry
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners

POLICY = policy_of(Settings(points_validity_days=30, reversal_grace_days=5))
ZONE = Settings().zone
_serial = itertools.count()

points = st.integers(min_value=1, max_value=500)


def build_machine(db: Database) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        members = Bundle("members")
        holds = Bundle("holds")
        earns = Bundle("earns")
        spends = Bundle("spends")

        @initialize()
        def start(self) -> None:
            self.now = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=next(_serial))
            self.total: dict[int, int] = {}
            self.held: dict[int, int] = {}
            with db.write() as session:
                partner = partners.create_partner(session, f"P{next(_serial)}", "p", self.now)
                self.origin = Origin(partner_id=partner.id)

        def ref(self) -> str:
            return f"r{next(_serial)}"

        def available_now(self, member_id: int) -> int:
            with db.read() as session:
                return ledger.balance(session, member_id, self.now, ZONE).available

        @rule(target=members)
        def enrol(self) -> int:
            with db.write() as session:
                member_id, _ = enrolment.enrol(
                    session, Identity("t", f"m{next(_serial)}"), {}, self.now
                )
            self.total[member_id] = 0
            self.held[member_id] = 0
            return member_id

        @rule(target=earns, member=members, amount=points, days=st.integers(1, 60))
        def earn(self, member: int, amount: int, days: int) -> object:
            with db.write() as session:
                result = ledger.earn(
                    session,
                    self.origin,
                    member,
                    amount,
                    self.ref(),
                    self.now,
                    POLICY,
                    self.now + timedelta(days=days),
                )
            self.total[member] += amount
            return result.entry_id

        @rule(target=spends, member=members, amount=points)
        def redeem(self, member: int, amount: int) -> object:
            before = self.available_now(member)
            try:
                with db.write() as session:
                    result = ledger.redeem(
                        session, self.origin, member, amount, self.ref(), self.now, POLICY
                    )
            except InsufficientPoints:
                assert amount > before, f"refused {amount} with {before} available"
                return None
            assert amount <= before, f"spent {amount} with only {before} available"
            self.total[member] -= amount
            return result.entry_id

        @rule(target=holds, member=members, amount=points, seconds=st.integers(60, 5 * 86400))
        def hold(self, member: int, amount: int, seconds: int) -> object:
            before = self.available_now(member)
            try:
                with db.write() as session:
                    found, _ = ledger_holds.create_hold(
                        session,
                        self.origin,
                        member,
                        amount,
                        self.ref(),
                        seconds,
                        self.now,
                        POLICY,
                    )
            except InsufficientPoints:
                assert amount > before
                return None
            assert amount <= before
            self.total[member] -= amount
            self.held[member] += amount
            return (found.id, member, amount)

        @rule(hold=consumes(holds), fraction=st.floats(0.01, 1.0))
        def capture(self, hold: object, fraction: float) -> None:
            if hold is None:
                return
            hold_id, member, amount = hold  # type: ignore[misc]
            take = max(1, int(amount * fraction))
            try:
                with db.write() as session:
                    _, result = ledger_holds.capture_hold(
                        session, self.origin, hold_id, take, self.now, POLICY
                    )
            except HoldNotActive:
                return  # it lapsed: the expiry job already gave the points back
            self.held[member] -= amount
            self.total[member] += amount - take - result.details.get("clawed_back", 0)

        @rule(hold=consumes(holds))
        def void(self, hold: object) -> None:
            if hold is None:
                return
            hold_id, member, amount = hold  # type: ignore[misc]
            try:
                with db.write() as session:
                    _, result = ledger_holds.void_hold(
                        session, self.origin, hold_id, self.now, POLICY
                    )
            except HoldNotActive:
                return
            self.held[member] -= amount
            self.total[member] += amount - result.details.get("clawed_back", 0)

        @rule(giver=members, receiver=members, amount=points)
        def transfer(self, giver: int, receiver: int, amount: int) -> None:
            if giver == receiver:
                return
            before = self.available_now(giver)
            try:
                with db.write() as session:
                    ledger.transfer(
                        session, self.origin, giver, receiver, amount, self.ref(), self.now, POLICY
                    )
            except InsufficientPoints:
                assert amount > before
                return
            assert amount <= before
            self.total[giver] -= amount
            self.total[receiver] += amount

        @rule(member=members, amount=st.integers(-300, 300).filter(bool))
        def adjust(self, member: int, amount: int) -> None:
            before = self.available_now(member)
            try:
                with db.write() as session:
                    ledger.adjust(
                        session, Origin(staff_id=1), member, amount, "test", self.now, POLICY
                    )
            except InsufficientPoints:
                assert -amount > before
                return
            self.total[member] += amount

        @rule(entry=consumes(earns))
        def reverse_earn(self, entry: object) -> None:
            with db.write() as session:
                original = repository.entry(session, entry)  # type: ignore[arg-type]
                assert original is not None
                member = original.member_id
                result = ledger_reversals.reverse(session, self.origin, entry, self.now, POLICY)  # type: ignore[arg-type]
            clawed = result.details["clawed_back"]
            assert clawed >= 0
            assert result.details["shortfall"] >= 0
            self.total[member] -= clawed  # type: ignore[index]

        @rule(entry=consumes(spends))
        def reverse_spend(self, entry: object) -> None:
            if entry is None:
                return
            try:
                with db.write() as session:
                    original = repository.entry(session, entry)  # type: ignore[arg-type]
                    assert original is not None
                    member = original.member_id
                    result = ledger_reversals.reverse(session, self.origin, entry, self.now, POLICY)  # type: ignore[arg-type]
            except NotReversible:
                return
            returned = result.details["returned"] - result.details.get("clawed_back", 0)
            self.total[member] += returned  # type: ignore[index]

        @rule(days=st.integers(1, 40))
        def time_passes_and_expiry_runs(self, days: int) -> None:
            self.now += timedelta(days=days)
            with db.write() as session:
                everyone = repository.members_with_due_lots(session, self.now, 10**6)
                due = {
                    member: sum(r for _l, r in lots)
                    for member, lots in repository.due_lots(session, everyone, self.now).items()
                }
                lapsing = session.execute(
                    select(Hold.member_id, Hold.points).where(
                        Hold.status == HoldStatus.ACTIVE, Hold.expires_at <= self.now
                    )
                ).all()
            report = jobs.expire(db.write, self.now)
            assert report.holds_lapsed == len(lapsing)
            assert report.points == sum(due.values())
            for member, expired in due.items():
                if member in self.total:
                    self.total[member] -= expired
            for member, held_points in lapsing:
                if member in self.total:
                    self.held[member] -= held_points
                    self.total[member] += held_points
            # Lapsed points of an earn reversed meanwhile were clawed back at once.
            with db.read() as session:
                clawbacks = session.execute(
                    select(JournalEntry.member_id, JournalEntry.details).where(
                        JournalEntry.kind == EntryKind.REVERSAL,
                        JournalEntry.reverses_id.is_(None),
                        JournalEntry.created_at == self.now,
                    )
                ).all()
            for member, details in clawbacks:
                if member in self.total:
                    self.total[member] -= details["clawed_back"]

        @invariant()
        def database_agrees_with_model(self) -> None:
            if not hasattr(self, "total"):
                return
            with db.read() as session:
                for member, total in self.total.items():
                    wallet = repository.wallet(session, member)
                    assert wallet is not None
                    assert (wallet.available, wallet.held) == (total, self.held[member])
                    balance = ledger.balance(session, member, self.now, ZONE)
                    assert 0 <= balance.available <= wallet.available
                    assert sum(item.points for item in balance.expiring) == balance.available

        def teardown(self) -> None:
            # A full verification after every step costs minutes; once per run still catches
            # any step that broke a chain, a balance or a lot (verify reports them all).
            with db.read() as session:
                report = verify(session)
            assert report.ok, report.problems

    return LedgerMachine


def test_ledger_invariants_hold_under_random_operations(database: Database, dialect: str) -> None:
    machine = build_machine(database)
    machine.TestCase.settings = settings(
        max_examples=30 if dialect == "sqlite" else 12,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    try:
        machine.TestCase().runTest()
    except TallyError as error:  # pragma: no cover - show the business error plainly
        pytest.fail(f"unexpected {error.code}: {error.detail}")
