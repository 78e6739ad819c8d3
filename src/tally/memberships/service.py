"""Paid membership use cases: subscribe, pay (activate, renew, restart), cancel at period end,
resume, refund; views. Never commits.

Every change locks the membership row (a named helper), settles what time has already decided
(an ended period expires, an unpaid subscription is abandoned), then writes conditionally on the
row's version and records an event. Payment references are unique per partner by constraint, so
a repeated or concurrent callback can never buy a second period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.errors import (
    ConcurrentChange,
    Conflict,
    DuplicateReference,
    MembershipNotActive,
    NotEligible,
    NotFound,
    PaymentMismatch,
    RefundExceedsPayment,
    ValidationFailed,
)
from tally.kit.clock import as_utc
from tally.kit.ids import uuid7
from tally.members import service as members
from tally.memberships import domain, repository
from tally.memberships.domain import (
    EventKind,
    MembershipStatus,
    RefundEffect,
    Requirement,
    State,
    Term,
)
from tally.memberships.models import Membership, MembershipEvent, MembershipPayment
from tally.programme.domain import CURRENCY_EXPONENTS, Money, Plan, Programme
from tally.tiers import service as tiers


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change: a partner, a staff member, or (neither) the system."""

    partner_id: int | None = None
    staff_id: int | None = None


SYSTEM = Actor()


@dataclass(frozen=True, slots=True)
class PaymentView:
    reference: str
    partner_id: int
    amount: Money
    refunded: Money
    paid_at: datetime
    period_start: datetime
    period_end: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class MembershipView:
    """A membership as callers see it: the status is the effective one at the time of reading."""

    id: uuid.UUID
    member_id: int
    plan_code: str
    plan_names: dict[str, str] | None
    status: MembershipStatus
    price: Money
    term: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    created_at: datetime
    ended_at: datetime | None
    payments: list[PaymentView]


@dataclass(frozen=True, slots=True)
class ActiveMembership:
    """A membership in force: the member has the plan's benefits until ``period_end``."""

    id: uuid.UUID
    plan_code: str
    period_end: datetime
    cancel_at_period_end: bool


def _record(
    session: Session,
    row: Membership,
    kind: EventKind,
    actor: Actor,
    now: datetime,
    *,
    before: State | None,
    money: Money | None = None,
    payment_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    repository.insert_event(
        session,
        {
            "membership_id": row.id,
            "kind": kind,
            "partner_id": actor.partner_id,
            "staff_id": actor.staff_id,
            "payment_id": payment_id,
            "minor_units": money.minor_units if money else None,
            "currency": money.currency if money else None,
            "status_before": before.status.value if before else None,
            "status_after": row.status.value,
            "period_end_before": before.period_end if before else None,
            "period_end_after": row.current_period_end,
            "details": details,
            "created_at": now,
        },
    )


def _save(session: Session, row: Membership, new: State, now: datetime) -> None:
    if not repository.save_state(session, row, new, now):
        raise ConcurrentChange("A concurrent request changed this membership; retry.")


def _settle(session: Session, row: Membership, now: datetime) -> None:
    """Apply what time has already decided (the expiry job may not have run yet)."""
    before = repository.state_of(row)
    closed = domain.close(before, now)
    if closed is None:
        return
    kind, new = closed
    _save(session, row, new, now)
    _record(session, row, kind, SYSTEM, now, before=before, details={"lazily": True})


def _locked(session: Session, membership_id: uuid.UUID, now: datetime) -> Membership:
    row = repository.lock_membership(session, membership_id)
    if row is None:
        raise NotFound(f"Membership {membership_id} does not exist.")
    _settle(session, row, now)
    return row


def requirement(plan: Plan, programme: Programme) -> Requirement:
    codes = [tier.code for tier in programme.tiers]
    wanted = plan.eligibility.min_tier
    index = codes.index(wanted) if wanted in codes else 0
    return Requirement(min_growth=plan.eligibility.min_growth, min_tier_index=index)


def _check_eligible(
    session: Session, member_id: int, plan: Plan, programme: Programme, now: datetime
) -> None:
    needed = requirement(plan, programme)
    if needed.is_open_to_all:
        return
    standing = tiers.standing(session, member_id, now, programme)
    reason = domain.shortfall(needed, standing.growth, standing.tier_index)
    if reason is not None:
        raise NotEligible(
            f"Member {member_id} may not subscribe to {plan.code}: {reason}.",
            plan=plan.code,
            min_growth=plan.eligibility.min_growth,
            min_tier=plan.eligibility.min_tier,
        )


def subscribe(
    session: Session,
    actor: Actor,
    member_id: int,
    plan_code: str,
    programme: Programme,
    now: datetime,
) -> tuple[Membership, bool]:
    """A pending membership of ``plan_code`` awaiting its first payment: ``(membership, created)``.

    A member has at most one pending-or-active membership per plan; asking again returns it.
    """
    plan = programme.plan(plan_code)
    if plan is None:
        known = ", ".join(item.code for item in programme.plans) or "none"
        raise ValidationFailed(f"No plan {plan_code!r}; plans are: {known}.", field="plan")
    members.require_usable(session, member_id)
    existing = repository.open_membership(session, member_id, plan.code)
    if existing is not None:
        row = _locked(session, existing.id, now)
        if row.status in domain.OPEN_STATUSES:
            return row, False
    _check_eligible(session, member_id, plan, programme, now)
    price = plan.price.money
    row = repository.insert_membership(
        session,
        {
            "id": uuid7(),
            "member_id": member_id,
            "plan_code": plan.code,
            "status": MembershipStatus.PENDING,
            "price_minor_units": price.minor_units,
            "currency": price.currency,
            "term": plan.term,
            "cancel_at_period_end": False,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    _record(session, row, EventKind.SUBSCRIBED, actor, now, before=None, money=price)
    return row, True


def _price(row: Membership) -> Money:
    return Money(row.price_minor_units, row.currency)


def _show(money: Money) -> str:
    """``88.00 CNY``; minor units for a currency the programme does not know."""
    if money.currency in CURRENCY_EXPONENTS:
        return str(money)
    return f"{money.minor_units} minor units of {money.currency}"


def pay(
    session: Session,
    actor: Actor,
    membership_id: uuid.UUID,
    reference: str,
    amount: Money,
    paid_at: datetime | None,
    programme: Programme,
    now: datetime,
) -> tuple[Membership, MembershipPayment, bool]:
    """A partner confirms it took the money for one term: ``(membership, payment, created)``.

    The same reference again (the same membership and amount) returns the first payment and
    changes nothing; with another membership or amount it is a ``duplicate_reference``.
    """
    if actor.partner_id is None:
        raise ValidationFailed("A payment is confirmed by the partner that took it.")
    found = _replay(session, actor.partner_id, reference, membership_id, amount)
    if found is not None:
        return found
    row = _locked(session, membership_id, now)
    # A concurrent callback with this reference may have committed while we waited for the lock.
    found = _replay(session, actor.partner_id, reference, membership_id, amount)
    if found is not None:
        return found
    if paid_at is not None:
        problem = domain.paid_at_problem(paid_at, as_utc(row.created_at), now)
        if problem is not None:
            raise ValidationFailed(problem, field="paid_at")
    price = _price(row)
    if amount != price:
        raise PaymentMismatch(
            f"The payment is {_show(amount)}; this membership costs {_show(price)}.",
            expected={"minor_units": price.minor_units, "currency": price.currency},
        )
    before = repository.state_of(row)
    if before.status not in domain.OPEN_STATUSES:
        other = repository.open_membership(session, row.member_id, row.plan_code)
        if other is not None and other.id != row.id:
            raise Conflict(
                f"The member already has membership {other.id} of {row.plan_code}; "
                "pay that one instead.",
                membership_id=str(other.id),
            )
    outcome = domain.apply_payment(before, Term.parse(row.term), programme.zone, now, paid_at)
    payment = repository.insert_payment(
        session,
        {
            "membership_id": row.id,
            "partner_id": actor.partner_id,
            "reference": reference,
            "minor_units": amount.minor_units,
            "currency": amount.currency,
            "refunded_minor_units": 0,
            "paid_at": paid_at or now,
            "period_start": outcome.period_start,
            "period_end": outcome.period_end,
            "created_at": now,
        },
    )
    _save(session, row, outcome.state, now)
    details: dict[str, Any] = {
        "reference": reference,
        "period_start": outcome.period_start.isoformat(),
        "period_end": outcome.period_end.isoformat(),
    }
    if outcome.resumed:
        details["resumed"] = True
    _record(
        session,
        row,
        outcome.kind,
        actor,
        now,
        before=before,
        money=amount,
        payment_id=payment.id,
        details=details,
    )
    return row, payment, True


def _replay(
    session: Session, partner_id: int, reference: str, membership_id: uuid.UUID, amount: Money
) -> tuple[Membership, MembershipPayment, bool] | None:
    payment = repository.payment_by_reference(session, partner_id, reference)
    if payment is None:
        return None
    same = payment.membership_id == membership_id and amount == Money(
        payment.minor_units, payment.currency
    )
    if not same:
        raise DuplicateReference(
            "This payment reference was already used for another payment.", reference=reference
        )
    row = repository.membership(session, membership_id)
    assert row is not None
    return row, payment, False


def cancel(session: Session, actor: Actor, membership_id: uuid.UUID, now: datetime) -> Membership:
    """Cancel at period end: the membership stays active until then, then expires."""
    row = _locked(session, membership_id, now)
    if row.status is not MembershipStatus.ACTIVE:
        raise MembershipNotActive(
            f"Membership {membership_id} is {row.status.value}, not active.",
            membership_status=row.status.value,
        )
    if row.cancel_at_period_end:
        return row
    before = repository.state_of(row)
    _save(session, row, replace(before, cancel_at_period_end=True), now)
    _record(session, row, EventKind.CANCELLED, actor, now, before=before)
    return row


def resume(session: Session, actor: Actor, membership_id: uuid.UUID, now: datetime) -> Membership:
    """Withdraw a cancellation before the period ends."""
    row = _locked(session, membership_id, now)
    if row.status is not MembershipStatus.ACTIVE:
        raise MembershipNotActive(
            f"Membership {membership_id} is {row.status.value}, not active.",
            membership_status=row.status.value,
        )
    if not row.cancel_at_period_end:
        return row
    before = repository.state_of(row)
    _save(session, row, replace(before, cancel_at_period_end=False), now)
    _record(session, row, EventKind.RESUMED, actor, now, before=before)
    return row


def _paid_period(payment: MembershipPayment) -> domain.PaidPeriod:
    return domain.PaidPeriod(
        minor_units=payment.minor_units,
        refunded=payment.refunded_minor_units,
        period_start=payment.period_start,
        period_end=payment.period_end,
        is_revoked=payment.revoked_at is not None,
    )


def refund(
    session: Session,
    actor: Actor,
    membership_id: uuid.UUID,
    payment_reference: str,
    amount: Money | None,
    now: datetime,
) -> tuple[Membership, MembershipPayment]:
    """Give back all (default) or part of a payment; see :func:`domain.plan_refund`."""
    row = _locked(session, membership_id, now)
    payments = repository.payments_of(session, [row.id])
    # A partner refunds only the payments it took; staff may refund any.
    chosen = [
        item
        for item in payments
        if item.reference == payment_reference
        and (actor.partner_id is None or item.partner_id == actor.partner_id)
    ][:1]
    if not chosen:
        raise NotFound(
            f"Membership {membership_id} has no payment {payment_reference!r}.",
            reference=payment_reference,
        )
    payment = chosen[0]
    left = payment.minor_units - payment.refunded_minor_units
    if amount is not None and amount.currency != payment.currency:
        raise PaymentMismatch(
            f"The payment was in {payment.currency}, not {amount.currency}.",
            expected={"currency": payment.currency},
        )
    value = left if amount is None else amount.minor_units
    if value < 1 or value > left:
        raise RefundExceedsPayment(
            f"At most {Money(left, payment.currency)} of this payment can be refunded.",
            refundable={"minor_units": left, "currency": payment.currency},
        )
    standing = [item for item in payments if item.revoked_at is None]
    latest = max(standing, key=lambda item: (item.period_end, item.id), default=None)
    before = repository.state_of(row)
    effect, new = domain.plan_refund(before, _paid_period(payment), latest is payment, value, now)
    if effect is RefundEffect.REFUSED:
        raise Conflict(
            f"Payment {payment_reference!r} bought an earlier period than one still standing; "
            "refund the latest payment first.",
            reference=payment_reference,
        )
    revokes = effect in (RefundEffect.REVOKES_PERIOD, RefundEffect.ENDS_MEMBERSHIP)
    if not repository.add_refund(session, payment.id, value, now if revokes else None):
        raise RefundExceedsPayment("A concurrent refund took what was left; nothing refunded.")
    if new != before:
        _save(session, row, new, now)
    session.refresh(payment)
    _record(
        session,
        row,
        EventKind.REFUNDED,
        actor,
        now,
        before=before,
        money=Money(value, payment.currency),
        payment_id=payment.id,
        details={"reference": payment_reference, "effect": effect.value},
    )
    return row, payment


def get(session: Session, membership_id: uuid.UUID) -> Membership:
    row = repository.membership(session, membership_id)
    if row is None:
        raise NotFound(f"Membership {membership_id} does not exist.")
    return row


def view(
    session: Session, membership_id: uuid.UUID, now: datetime, programme: Programme | None = None
) -> MembershipView:
    """One membership with its payments; the status is the effective one at ``now``."""
    return _views(session, [get(session, membership_id)], now, programme)[0]


def list_for_member(
    session: Session, member_id: int, now: datetime, programme: Programme | None = None
) -> list[MembershipView]:
    """A member's memberships, newest first (``not_found`` for an unknown member)."""
    members.get(session, member_id)
    return _views(session, repository.memberships_of(session, member_id), now, programme)


def _views(
    session: Session, rows: list[Membership], now: datetime, programme: Programme | None
) -> list[MembershipView]:
    payments = repository.payments_of(session, [row.id for row in rows])
    by_membership: dict[uuid.UUID, list[PaymentView]] = {}
    for item in payments:
        by_membership.setdefault(item.membership_id, []).append(
            PaymentView(
                reference=item.reference,
                partner_id=item.partner_id,
                amount=Money(item.minor_units, item.currency),
                refunded=Money(item.refunded_minor_units, item.currency),
                paid_at=item.paid_at,
                period_start=item.period_start,
                period_end=item.period_end,
                revoked_at=item.revoked_at,
            )
        )
    views = []
    for row in rows:
        plan = programme.plan(row.plan_code) if programme is not None else None
        views.append(
            MembershipView(
                id=row.id,
                member_id=row.member_id,
                plan_code=row.plan_code,
                plan_names={"zh-CN": plan.names.zh_cn, "en": plan.names.en} if plan else None,
                status=domain.effective_status(repository.state_of(row), now),
                price=_price(row),
                term=row.term,
                current_period_start=row.current_period_start,
                current_period_end=row.current_period_end,
                cancel_at_period_end=row.cancel_at_period_end,
                created_at=row.created_at,
                ended_at=row.ended_at,
                payments=by_membership.get(row.id, []),
            )
        )
    return views


def active_memberships(session: Session, member_id: int, now: datetime) -> list[ActiveMembership]:
    """The memberships in force at ``now`` (for member status pages and rules)."""
    return [
        ActiveMembership(
            id=row.id,
            plan_code=row.plan_code,
            period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
        )
        for row in repository.active_candidates(session, member_id, now)
        if row.current_period_end is not None
    ]


def history(session: Session, membership_id: uuid.UUID) -> list[MembershipEvent]:
    """Every recorded change of a membership, oldest first."""
    get(session, membership_id)
    return repository.events_of(session, membership_id)
