"""The adjustment guardrails as pure rules: post, request or refuse; who may decide; value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.adjustments.domain import CONFIRM_ABOVE, Guardrails, Route, worth
from tally.errors import AdjustmentTooLarge, NotAnApprover, OwnRequest, ValidationFailed
from tally.programme.domain import Money, PointRate, StaffRules

RULES = StaffRules(
    adjustment_limits={"admin": 100_000, "support": 5_000},
    approver_roles=["admin", "finance"],
    max_adjustment=10_000_000,
)


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
