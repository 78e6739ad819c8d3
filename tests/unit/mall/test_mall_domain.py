"""The order state machine, limits' windows, prices and refunds (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.errors import InvalidTransition, OrderRefunded, ValidationFailed
from tally.mall import domain
from tally.mall.domain import Action, FulfilmentStatus, LimitPeriod, PaymentStatus, State

START = State(PaymentStatus.PENDING, FulfilmentStatus.UNFULFILLED)


@given(st.lists(st.sampled_from(list(Action)), max_size=12))
def test_no_sequence_of_actions_fulfils_an_unpaid_order(actions: list[Action]) -> None:
    state = START
    for action in actions:
        after = domain.allowed(state, action)
        if after is None:
            with pytest.raises((InvalidTransition, OrderRefunded)):
                domain.transition(state, action)
            continue
        state = after
        if state.fulfilment in (FulfilmentStatus.SHIPPED, FulfilmentStatus.DELIVERED):
            assert state.payment in (
                PaymentStatus.PAID,
                PaymentStatus.PART_REFUNDED,
                PaymentStatus.REFUNDED,
            )
        if state.payment in (PaymentStatus.LAPSED, PaymentStatus.CANCELLED):
            assert state.fulfilment is FulfilmentStatus.CANCELLED
    if state.payment in domain.FINAL_PAYMENTS:
        for action in Action:
            assert domain.allowed(state, action) is None or action is Action.DELIVER


def test_a_refunded_order_refuses_ship_with_order_refunded() -> None:
    refunded = State(PaymentStatus.REFUNDED, FulfilmentStatus.CANCELLED)
    with pytest.raises(OrderRefunded):
        domain.transition(refunded, Action.SHIP)
    with pytest.raises(InvalidTransition):
        domain.transition(START, Action.SHIP)


def test_limit_windows_follow_the_programme_zone() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    moment = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 January in Shanghai
    assert domain.limit_window(LimitPeriod.DAY, moment, zone) == "d:2027-01-01"
    assert domain.limit_window(LimitPeriod.MONTH, moment, zone) == "m:2027-01"
    assert domain.limit_window(LimitPeriod.YEAR, moment, zone) == "y:2027"
    assert domain.limit_window(LimitPeriod.WEEK, moment, zone) == "w:2026-W53"
    assert domain.limit_window(LimitPeriod.TOTAL, moment, zone) == "total"


def test_tier_prices_never_cost_more() -> None:
    pricing = domain.Pricing(100, {"GOLD": 80, "BRONZE": 150}, None)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert domain.unit_points(pricing, "GOLD", now) == (80, False)
    assert domain.unit_points(pricing, "BRONZE", now) == (100, False)
    assert domain.unit_points(pricing, "SILVER", now) == (100, False)


@given(st.integers(1, 20), st.integers(0, 1000), st.data())
def test_refunds_never_give_back_more_than_was_paid(
    quantity: int, unit: int, data: st.DataObject
) -> None:
    total, points_back, units_back = unit * quantity, 0, 0
    while units_back < quantity:
        units = data.draw(st.integers(1, quantity - units_back))
        plan = domain.plan_refund(total, points_back, quantity, units_back, None, units)
        points_back += plan.points
        units_back += plan.quantity
        assert points_back <= total
    assert points_back == total


def test_durations() -> None:
    assert domain.parse_duration("PT48H").total_seconds() == 48 * 3600
    assert domain.parse_duration("P1DT12H").total_seconds() == 36 * 3600
    for bad in ("48H", "P", "PT", "P1Y", "PT0S", "P100D"):
        with pytest.raises(ValidationFailed):
            domain.parse_duration(bad)
