"""The adjustment guardrails as pure rules: post, request or refuse; who may decide; value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.adjustments.domain import (
    CONFIRM_ABOVE,
    Guardrails,
    RequestStatus,
    Route,
    status_at,
    worth,
)
from tally.errors import AdjustmentTooLarge, NotAnApprover, OwnRequest, ValidationFailed
from tally.programme.domain import Money, PointRate, StaffRules

RULES = StaffRules(
    adjustment_limits={"admin": 100_000, "support": 5_000},
    approver_roles=["admin", "finance"],
    max_adjustment=10_000_000,
)


T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


def test_the_api_has_a_limit_of_its_own_and_the_same_ceiling_approvers_and_deadline() -> None:
    api = Guardrails.of_api(
        RULES.model_copy(update={"api_adjustment_limit": 2_000, "request_ttl_hours": 5}),
        2_000_000,
    )
    assert (api.role_limit, api.ceiling, api.approver_roles) == (
        2_000,
        2_000_000,
        ("admin", "finance"),
    )
    assert (api.route(2_000), api.route(-2_001)) == (Route.POST, Route.REQUEST)
    assert api.deadline(T0) == T0 + timedelta(hours=5)
    assert api.ttl_hours == 5
    assert Guardrails.of_api(RULES, 10**9).role_limit == 0  # by default: every one a request
    with pytest.raises(AdjustmentTooLarge):
        api.route(2_000_001)


def test_a_request_filed_under_the_default_rules_waits_72_hours() -> None:
    assert Guardrails.of(RULES, "support", 10**9).deadline(T0) == T0 + timedelta(hours=72)


@pytest.mark.parametrize(
    ("stored", "at", "status"),
    [
        (RequestStatus.PENDING, T0 - timedelta(microseconds=1), RequestStatus.PENDING),
        (RequestStatus.PENDING, T0, RequestStatus.EXPIRED),  # from the deadline on
        (RequestStatus.PENDING, T0 + timedelta(days=1), RequestStatus.EXPIRED),
        (RequestStatus.APPROVED, T0 + timedelta(days=1), RequestStatus.APPROVED),  # decided: kept
        (RequestStatus.REJECTED, T0 + timedelta(days=1), RequestStatus.REJECTED),
        (RequestStatus.WITHDRAWN, T0 + timedelta(days=1), RequestStatus.WITHDRAWN),
    ],
)
def test_a_pending_request_is_expired_from_its_deadline(
    stored: RequestStatus, at: datetime, status: RequestStatus
) -> None:
    assert status_at(stored, T0, at) is status
    assert status_at(stored, T0.replace(tzinfo=None), at) is status  # as SQLite hands it back


def test_the_ceiling_is_the_lower_of_the_programme_and_the_server() -> None:
    assert Guardrails.of(RULES, "support", 1_000_000_000).ceiling == 10_000_000
    assert Guardrails.of(RULES, "support", 2_000_000).ceiling == 2_000_000
    assert Guardrails.of(RULES, "ops", 10**9).role_limit == 0  # not listed: always a request


@pytest.mark.parametrize(
    ("role", "points", "route"),
    [
        ("support", 5_000, Route.POST),
        ("support", -5_000, Route.POST),
        ("support", 5_001, Route.REQUEST),
        ("support", -5_001, Route.REQUEST),
        ("admin", 100_000, Route.POST),
        ("admin", 100_001, Route.REQUEST),
        ("ops", 1, Route.REQUEST),
        ("admin", 10_000_000, Route.REQUEST),
    ],
)
def test_route(role: str, points: int, route: Route) -> None:
    assert Guardrails.of(RULES, role, 10**9).route(points) is route


@given(st.integers(min_value=-(10**12), max_value=10**12).filter(lambda n: n != 0))
def test_every_amount_is_posted_requested_or_refused_by_its_size(points: int) -> None:
    limits = Guardrails.of(RULES, "support", 10**9)
    if abs(points) > limits.ceiling:
        with pytest.raises(AdjustmentTooLarge, match=r"at most 10,000,000 points"):
            limits.route(points)
    else:
        expected = Route.POST if abs(points) <= 5_000 else Route.REQUEST
        assert limits.route(points) is expected
    assert limits.needs_confirmation(points) is (abs(points) > CONFIRM_ABOVE)


def test_zero_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        Guardrails.of(RULES, "admin", 10**9).route(0)


def test_only_another_staff_member_in_an_approving_role_decides() -> None:
    limits = Guardrails.of(RULES, "admin", 10**9)
    limits.check_decider(role="admin", staff_id=2, requester_id=1)
    limits.check_decider(role="finance", staff_id=3, requester_id=1)
    with pytest.raises(OwnRequest):
        limits.check_decider(role="admin", staff_id=1, requester_id=1)
    with pytest.raises(NotAnApprover, match="approving roles: admin, finance"):
        limits.check_decider(role="support", staff_id=2, requester_id=1)


@pytest.mark.parametrize(
    ("points", "rate", "value"),
    [
        (50_000, PointRate(1, 1, "CNY"), Money(50_000, "CNY")),
        (-6_000, PointRate(1, 1, "CNY"), Money(-6_000, "CNY")),
        (15, PointRate(10, 1, "CNY"), Money(2, "CNY")),  # 1.5 fen, half away from zero
        (-15, PointRate(10, 1, "CNY"), Money(-2, "CNY")),
        (14, PointRate(10, 1, "CNY"), Money(1, "CNY")),
        (3, PointRate(1, 5, "JPY"), Money(15, "JPY")),
    ],
)
def test_worth(points: int, rate: PointRate, value: Money) -> None:
    assert worth(points, rate) == value
