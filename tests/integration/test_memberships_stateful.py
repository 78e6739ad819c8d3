"""Hypothesis drives random sequences of payments, repeats, cancellations, refunds, the expiry
job and the passing of time through the membership services; the invariants must always hold.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from support.membership_programme import programme_text
from tally.db.session import Database
from tally.errors import (
    Conflict,
    MembershipNotActive,
    RefundExceedsPayment,
    TallyError,
)
from tally.flows import enrolment
from tally.members.service import Identity
from tally.memberships import jobs
from tally.memberships import service as memberships
from tally.memberships.domain import MembershipStatus
from tally.partners import service as partners
from tally.programme import service as programme_service
from tally.programme.domain import Money

PRICE = Money(1500, "CNY")
_serial = itertools.count()


def build_machine(db: Database) -> type[RuleBasedStateMachine]:
    text = programme_text()
    programme = programme_service.validate(text)
    with db.write() as session:
        if programme_service.latest(session) is None:
            programme_service.apply(
                session, programme, text, "tests", datetime(2026, 1, 1, tzinfo=UTC)
            )

    class MembershipMachine(RuleBasedStateMachine):
        @initialize(start=st.integers(0, 400))
        def start(self, start: int) -> None:
            self.now = datetime(2026, 1, 1, 2, 0, tzinfo=UTC) + timedelta(days=start, hours=start)
            with db.write() as session:
                partner = partners.create_partner(session, f"P{next(_serial)}", "p", self.now)
                self.actor = memberships.Actor(partner_id=partner.id)
                member_id, _ = enrolment.enrol(
                    session, Identity("t", f"m{next(_serial)}"), {}, self.now
                )
                row, _ = memberships.subscribe(
                    session, self.actor, member_id, "MONTHLY", programme, self.now
                )
            self.member_id = member_id
            self.membership = row.id
            self.paid: list[str] = []
            self.refunded: dict[str, int] = {}

        def view(self) -> memberships.MembershipView:
            with db.read() as session:
                return memberships.view(session, self.membership, self.now, programme)

        @rule(days=st.integers(0, 45), hours=st.integers(0, 23))
        def time_passes(self, days: int, hours: int) -> None:
            self.now += timedelta(days=days, hours=hours)

        @rule()
        def pay(self) -> None:
            before = self.view()
            reference = f"ref-{len(self.paid)}"
            with db.write() as session:
                _row, payment, created = memberships.pay(
                    session,
                    self.actor,
                    self.membership,
                    reference,
                    PRICE,
                    None,
                    programme,
                    self.now,
                )
            assert created
            self.paid.append(reference)
            self.refunded[reference] = 0
            if before.status is MembershipStatus.ACTIVE:
                assert payment.period_start == before.current_period_end
            else:
                assert payment.period_start == self.now

        @rule(data=st.data())
        def pay_again(self, data: st.DataObject) -> None:
            if not self.paid:
                return
            reference = data.draw(st.sampled_from(self.paid))
            before = self.view()
            with db.write() as session:
                _row, _payment, created = memberships.pay(
                    session,
                    self.actor,
                    self.membership,
                    reference,
                    PRICE,
                    None,
                    programme,
                    self.now,
                )
            assert not created
            after = self.view()
            assert (after.current_period_end, len(after.payments)) == (
                before.current_period_end,
                len(before.payments),
            )

        @rule(resume=st.booleans())
        def cancel_or_resume(self, resume: bool) -> None:
            active = self.view().status is MembershipStatus.ACTIVE
            action = memberships.resume if resume else memberships.cancel
            try:
                with db.write() as session:
                    row = action(session, self.actor, self.membership, self.now)
            except MembershipNotActive:
                assert not active
                return
            assert active
            assert row.cancel_at_period_end is not resume

        @rule(data=st.data(), partial=st.booleans())
        def refund(self, data: st.DataObject, partial: bool) -> None:
            if not self.paid:
                return
            reference = data.draw(st.sampled_from(self.paid))
            left = PRICE.minor_units - self.refunded[reference]
            amount = data.draw(st.integers(1, 2000)) if partial else None
            try:
                with db.write() as session:
                    memberships.refund(
                        session,
                        self.actor,
                        self.membership,
                        reference,
                        Money(amount, "CNY") if amount is not None else None,
                        self.now,
                    )
            except RefundExceedsPayment:
                assert (amount or left) > left or left == 0
                return
            except Conflict:
                # Only an earlier payment, while a later one stands, is refused.
                standing = [p for p in self.view().payments if p.revoked_at is None]
                assert standing
                assert max(standing, key=lambda p: p.period_end).reference != reference
                return
            self.refunded[reference] += amount if amount is not None else left

        @rule()
        def job(self) -> None:
            jobs.expire(db.write, self.now)

        @invariant()
        def consistent(self) -> None:
            if not hasattr(self, "membership"):
                return
            view = self.view()
            assert [p.reference for p in view.payments] == self.paid
            for payment in view.payments:
                assert payment.refunded.minor_units == self.refunded[payment.reference]
                assert 0 <= payment.refunded.minor_units <= payment.amount.minor_units
                assert payment.period_end > payment.period_start
            standing = [p for p in view.payments if p.revoked_at is None]
            if view.status is MembershipStatus.ACTIVE:
                assert view.current_period_end is not None
                assert view.current_period_end > self.now
                assert view.current_period_end == max(p.period_end for p in standing)
            with db.read() as session:
                in_force = memberships.active_memberships(session, self.member_id, self.now)
            assert [item.id for item in in_force] == (
                [self.membership] if view.status is MembershipStatus.ACTIVE else []
            )
            # Periods never overlap, unless the earlier one was revoked by a refund.
            for before, after in itertools.pairwise(view.payments):
                assert after.period_start >= before.period_end or before.revoked_at is not None

    return MembershipMachine


def test_membership_invariants_hold_under_random_operations(
    database: Database, dialect: str
) -> None:
    machine = build_machine(database)
    machine.TestCase.settings = settings(
        max_examples=25 if dialect == "sqlite" else 10,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    try:
        machine.TestCase().runTest()
    except TallyError as error:  # pragma: no cover - show the business error plainly
        pytest.fail(f"unexpected {error.code}: {error.detail}")
