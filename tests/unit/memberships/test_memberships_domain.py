"""The pure membership rules: calendar terms in the programme's zone, effective status, what a
payment and a refund do, eligibility."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.memberships.domain import (
    PENDING_TTL,
    EventKind,
    MembershipStatus,
    PaidPeriod,
    RefundEffect,
    Requirement,
    State,
    Term,
    add_term,
    apply_payment,
    close,
    effective_status,
    is_in_force,
    plan_refund,
    shortfall,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def sh(text: str) -> datetime:
    """A Shanghai wall-clock time, as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


# --- Terms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "term", "end"),
    [
        ("2026-01-31 10:00", "P1M", "2026-02-28 10:00"),
        ("2028-01-31 10:00", "P1M", "2028-02-29 10:00"),  # leap year
        ("2026-03-31 00:00", "P1M", "2026-04-30 00:00"),
        ("2026-01-15 23:59", "P1M", "2026-02-15 23:59"),
        ("2026-12-31 12:00", "P2M", "2027-02-28 12:00"),
        ("2028-02-29 08:00", "P1Y", "2029-02-28 08:00"),
        ("2026-05-20 08:00", "P30D", "2026-06-19 08:00"),
        ("2026-12-31 23:30", "P1D", "2027-01-01 23:30"),
        ("2026-01-01 00:00", "P12M", "2027-01-01 00:00"),
    ],
)
def test_terms_are_calendar_arithmetic_in_the_programme_zone(
    start: str, term: str, end: str
) -> None:
    assert add_term(sh(start), Term.parse(term), SHANGHAI) == sh(end)


def test_a_day_boundary_is_the_programme_zone_s() -> None:
    # 31 January 20:00 UTC is already 1 February in Shanghai: a month later is 1 March there.
    start = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
    assert add_term(start, Term(1, "M"), SHANGHAI) == sh("2026-03-01 04:00")
    assert add_term(start, Term(1, "M"), ZoneInfo("UTC")) == datetime(2026, 2, 28, 20, tzinfo=UTC)


def test_the_anchor_day_returns_after_a_short_month() -> None:
    feb = add_term(sh("2026-01-31 10:00"), Term(1, "M"), SHANGHAI)
    assert add_term(feb, Term(1, "M"), SHANGHAI, anchor_day=31) == sh("2026-03-31 10:00")
    assert add_term(feb, Term(1, "M"), SHANGHAI) == sh("2026-03-28 10:00")


def test_terms_are_parsed_strictly() -> None:
    assert Term.parse("P3M") == Term(3, "M")
    assert str(Term.parse("P1Y")) == "P1Y"
    for bad in ("P0M", "1M", "P1W", "P1.5M", "p1m", ""):
        with pytest.raises(ValueError, match="not a term"):
            Term.parse(bad)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_term(datetime(2026, 1, 1), Term(1, "D"), SHANGHAI)  # noqa: DTZ001


moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2090, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
terms = st.builds(Term, st.integers(1, 60), st.sampled_from(["D", "M", "Y"]))


@given(moments, terms)
def test_a_term_ends_later_on_the_right_local_day_at_the_same_local_time(
    start: datetime, term: Term
) -> None:
    end = add_term(start, term, SHANGHAI)
    assert end.tzinfo is UTC
    assert end > start
    local_start, local_end = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    assert local_end.time() == local_start.time()  # Shanghai keeps no daylight saving
    if term.unit == "D":
        assert (local_end.date() - local_start.date()).days == term.count
        return
    months = term.count * (12 if term.unit == "Y" else 1)
    index = lambda moment: moment.year * 12 + moment.month  # noqa: E731
    assert index(local_end) - index(local_start) == months
    last = calendar.monthrange(local_end.year, local_end.month)[1]
    assert local_end.day == min(local_start.day, last)


@given(moments, st.integers(1, 12), st.integers(1, 24))
def test_renewing_from_the_anchor_never_drifts(start: datetime, count: int, renewals: int) -> None:
    term = Term(count, "M")
    anchor_day = start.astimezone(SHANGHAI).day
    end = start
    for _ in range(renewals):
        end = add_term(end, term, SHANGHAI, anchor_day)
    assert end == add_term(start, Term(count * renewals, "M"), SHANGHAI)


@given(moments, terms)
def test_terms_in_a_zone_with_daylight_saving_keep_the_wall_clock_date(
    start: datetime, term: Term
) -> None:
    end = add_term(start, term, NEW_YORK)
    assert end > start
    if term.unit == "D":
        days = (end.astimezone(NEW_YORK).date() - start.astimezone(NEW_YORK).date()).days
        assert days == term.count


# --- Effective status and the expiry job -------------------------------------------------------

T0 = sh("2026-03-01 00:00")


def active(end: datetime, *, cancel: bool = False) -> State:
    return State(
        status=MembershipStatus.ACTIVE,
        created_at=T0 - timedelta(days=1),
        period_start=T0,
        period_end=end,
        anchor_at=T0,
        cancel_at_period_end=cancel,
    )


def test_an_active_membership_ends_at_its_period_end_exactly() -> None:
    state = active(sh("2026-04-01 00:00"))
    just_before = sh("2026-04-01 00:00") - timedelta(microseconds=1)
    assert effective_status(state, just_before) is MembershipStatus.ACTIVE
    assert is_in_force(state, just_before)
    assert effective_status(state, sh("2026-04-01 00:00")) is MembershipStatus.EXPIRED
    assert close(state, just_before) is None
    kind, closed = close(state, sh("2026-04-02 00:00"))  # type: ignore[misc]
    assert kind is EventKind.EXPIRED
    assert (closed.status, closed.ended_at) == (MembershipStatus.EXPIRED, sh("2026-04-01 00:00"))
    assert close(closed, sh("2026-05-01 00:00")) is None  # once only


def test_a_pending_membership_is_abandoned_after_a_day() -> None:
    state = State(status=MembershipStatus.PENDING, created_at=T0)
    assert effective_status(state, T0 + PENDING_TTL - timedelta(seconds=1)) is (
        MembershipStatus.PENDING
    )
    assert effective_status(state, T0 + PENDING_TTL) is MembershipStatus.ABANDONED
    kind, closed = close(state, T0 + PENDING_TTL)  # type: ignore[misc]
    assert (kind, closed.status) == (EventKind.ABANDONED, MembershipStatus.ABANDONED)


# --- Payments ---------------------------------------------------------------------------------


def test_a_payment_activates_a_pending_membership_from_when_it_was_paid() -> None:
    state = State(status=MembershipStatus.PENDING, created_at=T0)
    paid = sh("2026-03-01 09:00")
    outcome = apply_payment(state, Term(1, "M"), SHANGHAI, paid + timedelta(hours=1), paid)
    assert outcome.kind is EventKind.ACTIVATED
    assert (outcome.period_start, outcome.period_end) == (paid, sh("2026-04-01 09:00"))
    assert outcome.state.status is MembershipStatus.ACTIVE


def test_a_renewal_extends_from_the_current_end_and_withdraws_a_cancellation() -> None:
    state = active(sh("2026-04-01 00:00"), cancel=True)
    outcome = apply_payment(state, Term(1, "M"), SHANGHAI, sh("2026-03-10 00:00"), None)
    assert outcome.kind is EventKind.RENEWED
    assert outcome.resumed
    assert outcome.period_start == sh("2026-04-01 00:00")
    assert outcome.period_end == sh("2026-05-01 00:00")
    assert outcome.state.period_start == T0
    assert not outcome.state.cancel_at_period_end


def test_a_payment_after_the_end_starts_a_new_period_now() -> None:
    state = active(sh("2026-03-31 00:00"))
    now = sh("2026-06-15 12:00")
    outcome = apply_payment(state, Term(1, "Y"), SHANGHAI, now, sh("2026-06-01 00:00"))
    assert outcome.kind is EventKind.RESTARTED
    assert (outcome.period_start, outcome.period_end) == (now, sh("2027-06-15 12:00"))


# --- Refunds ----------------------------------------------------------------------------------


def paid(start: str, end: str, refunded: int = 0, *, revoked: bool = False) -> PaidPeriod:
    return PaidPeriod(1500, refunded, sh(start), sh(end), revoked)


def test_a_full_refund_of_an_advance_renewal_rolls_the_end_back() -> None:
    state = active(sh("2026-05-01 00:00"))
    payment = paid("2026-04-01 00:00", "2026-05-01 00:00")
    effect, new = plan_refund(state, payment, True, 1500, sh("2026-03-15 00:00"))
    assert effect is RefundEffect.REVOKES_PERIOD
    assert (new.status, new.period_end) == (MembershipStatus.ACTIVE, sh("2026-04-01 00:00"))


def test_a_full_refund_of_the_running_period_ends_the_membership_now() -> None:
    state = active(sh("2026-04-01 00:00"))
    now = sh("2026-03-15 00:00")
    effect, new = plan_refund(state, paid("2026-03-01 00:00", "2026-04-01 00:00"), True, 1500, now)
    assert effect is RefundEffect.ENDS_MEMBERSHIP
    assert (new.status, new.period_end, new.ended_at) == (MembershipStatus.REFUNDED, now, now)


def test_partial_earlier_and_revoked_refunds() -> None:
    state = active(sh("2026-05-01 00:00"))
    now = sh("2026-03-15 00:00")
    latest = paid("2026-04-01 00:00", "2026-05-01 00:00")
    assert plan_refund(state, latest, True, 500, now) == (RefundEffect.MONEY_ONLY, state)
    assert (
        plan_refund(state, paid("2026-04-01 00:00", "2026-05-01 00:00", 1000), True, 500, now)[0]
        is RefundEffect.REVOKES_PERIOD
    )
    earlier = paid("2026-03-01 00:00", "2026-04-01 00:00")
    assert plan_refund(state, earlier, False, 1500, now)[0] is RefundEffect.REFUSED
    gone = paid("2026-03-01 00:00", "2026-04-01 00:00", 1000, revoked=True)
    assert plan_refund(state, gone, False, 500, now) == (RefundEffect.MONEY_ONLY, state)
    with pytest.raises(ValueError, match="refundable"):
        plan_refund(state, gone, False, 501, now)
    with pytest.raises(ValueError, match="refundable"):
        plan_refund(state, latest, True, 0, now)


# --- Eligibility ------------------------------------------------------------------------------


def test_eligibility_on_growth_and_tier() -> None:
    assert Requirement(0, 0).is_open_to_all
    needed = Requirement(min_growth=1000, min_tier_index=2)
    assert not needed.is_open_to_all
    assert shortfall(needed, 999, 5) == "needs 1000 growth value, has 999"
    assert shortfall(needed, 1000, 1) == "needs a higher tier"
    assert shortfall(needed, 1000, 2) is None
