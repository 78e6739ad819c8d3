"""The pure rules of family accounts: months in the programme's zone, who a spend draws on,
how a pool is drawn, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.errors import (
    NotFamilyMember,
    NotFamilyOwner,
    NotInvitee,
    NotMemberItself,
    ValidationFailed,
)
from tally.families.domain import (
    FamilyMode,
    check_limit,
    effective_limit,
    month_of,
    plan_pool_draw,
    remaining,
    require_invitee,
    require_owner,
    require_self,
    spend_source,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("at", "month"),
    [
        (datetime(2026, 11, 30, 15, 30, tzinfo=UTC), "2026-11"),  # 23:30 on 30 Nov in Shanghai
        (datetime(2026, 11, 30, 15, 59, 59, 999999, tzinfo=UTC), "2026-11"),
        (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), "2026-12"),  # local midnight
        (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "2026-12"),  # 00:30 on 1 Dec
        (datetime(2026, 12, 31, 16, 30, tzinfo=UTC), "2027-01"),  # across the year
        (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "2028-02"),
        (datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI), "2026-12"),
    ],
)
def test_month_is_the_calendar_month_in_the_programme_zone(at: datetime, month: str) -> None:
    assert month_of(at, SHANGHAI) == month


def test_the_same_instant_is_in_different_months_in_different_zones() -> None:
    at = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert month_of(at, SHANGHAI) == "2026-12"
    assert month_of(at, ZoneInfo("America/New_York")) == "2026-11"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))  # noqa: DTZ001
def test_month_of_matches_the_local_date(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    local = at.astimezone(SHANGHAI)
    assert month_of(at, SHANGHAI) == local.strftime("%Y-%m")
    assert month_of(at + timedelta(microseconds=1), SHANGHAI) >= month_of(at, SHANGHAI)


def test_pool_draw_takes_from_each_in_order() -> None:
    assert plan_pool_draw([(1, 100), (2, 100), (3, 100)], 250) == [(1, 100), (2, 100), (3, 50)]
    assert plan_pool_draw([(1, 0), (2, 30)], 30) == [(2, 30)]
    assert plan_pool_draw([(1, 10), (2, 10)], 21) is None
    assert plan_pool_draw([], 1) is None
    with pytest.raises(ValueError, match="positive"):
        plan_pool_draw([(1, 10)], 0)


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=0, max_size=8),
    st.integers(min_value=1, max_value=5000),
)
def test_pool_draw_is_exact_ordered_and_never_overdraws(balances: list[int], points: int) -> None:
    wallets = list(enumerate(balances, start=1))
    plan = plan_pool_draw(wallets, points)
    if sum(balances) < points:
        assert plan is None
        return
    assert plan is not None
    assert sum(taken for _member, taken in plan) == points
    assert all(0 < taken <= balances[member - 1] for member, taken in plan)
    # Every wallet before the last one drawn on is emptied (owner first, then join order).
    last = plan[-1][0]
    drawn = dict(plan)
    for member, balance in wallets:
        if member < last:
            assert drawn.get(member, 0) == balance


def test_who_a_spend_draws_on() -> None:
    assert spend_source(FamilyMode.POOL, 1, 1, True) == (True, False)
    assert spend_source(FamilyMode.SHARE, 1, 1, True) == (False, False)
    assert spend_source(FamilyMode.SHARE, 1, 2, True) == (False, True)
    with pytest.raises(NotFamilyOwner):
        spend_source(FamilyMode.POOL, 1, 2, True)
    with pytest.raises(NotFamilyMember):
        spend_source(FamilyMode.SHARE, 1, 3, False)


def test_limits_and_rights() -> None:
    assert effective_limit(None, 5000) == 5000
    assert effective_limit(0, 5000) == 0
    assert remaining(100, 30) == 70
    assert remaining(100, 130) == 0  # a lowered limit
    check_limit(0)
    check_limit(1_000_000_000)
    for bad in (-1, 1_000_000_001):
        with pytest.raises(ValidationFailed):
            check_limit(bad)
    require_owner(1, 1, "invite")
    with pytest.raises(NotFamilyOwner):
        require_owner(1, 2, "invite")
    require_invitee(2, 2, "accept")
    with pytest.raises(NotInvitee):
        require_invitee(2, 1, "accept")
    require_self(2, 2, "leave")
    with pytest.raises(NotMemberItself):
        require_self(2, 1, "leave")
