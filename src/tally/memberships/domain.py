"""Pure rules of paid memberships (no I/O): terms, effective status, payments and refunds.

A membership is *pending* until a partner confirms the first payment, then *active* for periods
``[start, end)`` bought one term at a time. Period ends are calendar arithmetic in the
programme's time zone: ``P1M`` from 31 January ends on the last day of February, and later
renewals return to the 31st where the month has one (the day of month is taken from the
*anchor*, the start of the first period of the run).
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["D", "M", "Y"]
TERM = re.compile(r"^P([1-9][0-9]{0,3})([DMY])$")
# A pending membership not paid within this time is abandoned.
PENDING_TTL = timedelta(hours=24)
# A payment may claim to have been taken at most this far in the future (clock skew).
PAID_AT_SKEW = timedelta(minutes=5)
# ... and at most this long ago (a late callback, a reconciliation run), and never before the
# membership it pays for was subscribed.
PAID_AT_MAX_AGE = timedelta(days=7)


class MembershipStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    ABANDONED = "abandoned"


OPEN_STATUSES = (MembershipStatus.PENDING, MembershipStatus.ACTIVE)


class EventKind(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    ACTIVATED = "activated"
    RENEWED = "renewed"
    RESTARTED = "restarted"
    CANCELLED = "cancelled"
    RESUMED = "resumed"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Term:
    """A plan's term: ``count`` days, months or years."""

    count: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Term:
        match = TERM.match(text)
        if match is None:
            raise ValueError(f"not a term such as P1M, P1Y or P30D: {text!r}")
        return cls(int(match.group(1)), match.group(2))  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"P{self.count}{self.unit}"


def _add_months(day: date, months: int, anchor_day: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(anchor_day, last))


def add_term(
    start: datetime, term: Term, zone: ZoneInfo, anchor_day: int | None = None
) -> datetime:
    """The end of a period of ``term`` starting at ``start``, in UTC.

    Counted on the calendar of ``zone`` (the wall-clock time of day is kept). Months and years
    land on ``anchor_day`` (default: ``start``'s local day), clamped to the month's last day.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    local = start.astimezone(zone)
    if term.unit == "D":
        day = local.date() + timedelta(days=term.count)
    else:
        months = term.count * (12 if term.unit == "Y" else 1)
        day = _add_months(local.date(), months, anchor_day or local.day)
    wall = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return wall.astimezone(UTC)


def local_day(moment: datetime, zone: ZoneInfo) -> int:
    """The day of month of ``moment`` in ``zone`` (a run's anchor day)."""
    return moment.astimezone(zone).day


@dataclass(frozen=True, slots=True)
class State:
    """What the rules need to know about a membership."""

    status: MembershipStatus
    created_at: datetime
    period_start: datetime | None = None
    period_end: datetime | None = None
    anchor_at: datetime | None = None
    cancel_at_period_end: bool = False
    ended_at: datetime | None = None


def effective_status(state: State, now: datetime) -> MembershipStatus:
    """The status at ``now``, whether or not the expiry job has run yet."""
    if state.status is MembershipStatus.ACTIVE and (
        state.period_end is None or state.period_end <= now
    ):
        return MembershipStatus.EXPIRED
    if state.status is MembershipStatus.PENDING and state.created_at + PENDING_TTL <= now:
        return MembershipStatus.ABANDONED
    return state.status


def is_in_force(state: State, now: datetime) -> bool:
    """The member has the plan's benefits at ``now``."""
    return effective_status(state, now) is MembershipStatus.ACTIVE


def close(state: State, now: datetime) -> tuple[EventKind, State] | None:
    """What the expiry job does at ``now``: expire or abandon (``None``: nothing to do)."""
    status = effective_status(state, now)
    if state.status is MembershipStatus.ACTIVE and status is MembershipStatus.EXPIRED:
        ended = state.period_end if state.period_end is not None else now
        return EventKind.EXPIRED, replace(state, status=status, ended_at=ended)
    if state.status is MembershipStatus.PENDING and status is MembershipStatus.ABANDONED:
        return EventKind.ABANDONED, replace(state, status=status, ended_at=now)
    return None


def paid_at_problem(paid_at: datetime, subscribed_at: datetime, now: datetime) -> str | None:
    """Why ``paid_at`` cannot be when the money for a membership subscribed at
    ``subscribed_at`` was taken (in the future, too long ago, before the subscription), or
    ``None`` when it can."""
    if paid_at > now + PAID_AT_SKEW:
        return "paid_at is in the future."
    if paid_at < now - PAID_AT_MAX_AGE:
        return (
            f"paid_at is more than {PAID_AT_MAX_AGE.days} days ago; a payment is confirmed "
            "within that time of being taken."
        )
    if paid_at < subscribed_at - PAID_AT_SKEW:
        return f"paid_at is before the membership was subscribed ({subscribed_at.isoformat()})."
    return None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What a confirmed payment does: the event, the period it bought and the new state."""

    kind: EventKind
    period_start: datetime
    period_end: datetime
    state: State
    resumed: bool = False


def apply_payment(
    state: State, term: Term, zone: ZoneInfo, now: datetime, paid_at: datetime | None
) -> PaymentOutcome:
    """One more term, paid for.

    - pending (or abandoned: the money was taken after all): the first period starts when the
      money was taken (``paid_at``, default now);
    - active: a renewal; the period runs on from the current end, and a pending cancellation is
      withdrawn;
    - expired or refunded: a new run of periods starts now.
    """
    status = effective_status(state, now)
    if status in (MembershipStatus.PENDING, MembershipStatus.ABANDONED):
        kind, start, anchor = EventKind.ACTIVATED, paid_at or now, paid_at or now
    elif status is MembershipStatus.ACTIVE:
        assert state.period_end is not None
        kind, start = EventKind.RENEWED, state.period_end
        anchor = state.anchor_at or state.period_start or state.period_end
    else:
        kind, start, anchor = EventKind.RESTARTED, now, now
    end = add_term(start, term, zone, local_day(anchor, zone))
    first = kind is not EventKind.RENEWED
    new = replace(
        state,
        status=MembershipStatus.ACTIVE,
        period_start=start if first else state.period_start,
        period_end=end,
        anchor_at=anchor,
        cancel_at_period_end=False,
        ended_at=None,
    )
    return PaymentOutcome(kind, start, end, new, resumed=state.cancel_at_period_end and not first)


class RefundEffect(enum.StrEnum):
    MONEY_ONLY = "money_only"  # a partial refund, or of a period already revoked
    REVOKES_PERIOD = "revokes_period"  # the latest period is given up; the membership goes on
    ENDS_MEMBERSHIP = "ends_membership"  # nothing paid for is left: the membership ends now
    REFUSED = "refused"  # a later period stands on this payment's


@dataclass(frozen=True, slots=True)
class PaidPeriod:
    """A payment as refunds see it."""

    minor_units: int
    refunded: int
    period_start: datetime
    period_end: datetime
    is_revoked: bool


def refundable(payment: PaidPeriod) -> int:
    return payment.minor_units - payment.refunded


def plan_refund(
    state: State, payment: PaidPeriod, is_latest: bool, amount: int, now: datetime
) -> tuple[RefundEffect, State]:
    """What refunding ``amount`` of ``payment`` does.

    Refunding the latest standing payment in full revokes the period it bought: the period end
    rolls back to that payment's period start; if that is not in the future, the membership ends
    now (``refunded``). A partial refund only returns money. An earlier payment cannot be
    refunded while a later period stands on it. ``amount`` must be within what is refundable.
    """
    if not 1 <= amount <= refundable(payment):
        raise ValueError("amount outside what is refundable")
    if payment.is_revoked:
        return RefundEffect.MONEY_ONLY, state
    if not is_latest:
        return RefundEffect.REFUSED, state
    if payment.refunded + amount < payment.minor_units:
        return RefundEffect.MONEY_ONLY, state
    if state.status is not MembershipStatus.ACTIVE:
        # Already over (expired before the job ran it, or refunded): the money goes back.
        return RefundEffect.REVOKES_PERIOD, state
    if payment.period_start > now:
        return RefundEffect.REVOKES_PERIOD, replace(state, period_end=payment.period_start)
    end = min(now, state.period_end or now)
    return RefundEffect.ENDS_MEMBERSHIP, replace(
        state,
        status=MembershipStatus.REFUNDED,
        period_end=end,
        cancel_at_period_end=False,
        ended_at=now,
    )


@dataclass(frozen=True, slots=True)
class Requirement:
    """A plan's eligibility: growth value and the index of the lowest tier allowed."""

    min_growth: int
    min_tier_index: int

    @property
    def is_open_to_all(self) -> bool:
        return self.min_growth <= 0 and self.min_tier_index <= 0


def shortfall(requirement: Requirement, growth: int, tier_index: int) -> str | None:
    """Why a member with ``growth`` and ``tier_index`` may not subscribe (``None``: eligible)."""
    if growth < requirement.min_growth:
        return f"needs {requirement.min_growth} growth value, has {growth}"
    if tier_index < requirement.min_tier_index:
        return "needs a higher tier"
    return None
