"""The pure rules of growth value and tiers: windows in the programme's zone, the qualified
tier, upgrades and evaluation (grace, downgrade steps, programme changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tally.programme.domain import Programme, TierModel
from tally.tiers import domain
from tally.tiers.domain import Qualifying, State, Window

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 6, 15, 4, 0, tzinfo=UTC)


def programme(
    thresholds: list[int] | None = None,
    kind: str = "rolling_window",
    window_days: int | None = 365,
    grace_days: int = 0,
    max_levels_down: int = 1,
    zone: str = "Asia/Shanghai",
) -> Programme:
    thresholds = thresholds if thresholds is not None else [0, 1000, 5000, 15000]
    model: dict[str, Any] = {
        "kind": kind,
        "grace_days": grace_days,
        "max_levels_down": max_levels_down,
    }
    if kind == "rolling_window":
        model["window_days"] = window_days
    return Programme.model_validate(
        {
            "currency": {
                "code": "AIB",
                "names": {"zh-CN": "豆", "en": "Beans"},
                "point_value": {"amount": "0.01", "currency": "CNY"},
                "default_validity_days": 365,
                "timezone": zone,
            },
            "tiers": [
                {
                    "code": f"T{index}",
                    "names": {"zh-CN": f"T{index}", "en": f"T{index}"},
                    "threshold": threshold,
                    "earn_multiplier": "1",
                }
                for index, threshold in enumerate(thresholds)
            ],
            "tier_model": model,
        }
    )


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


def same(value: int) -> Qualifying:
    return Qualifying(value, value)


# --- windows ----------------------------------------------------------------------------------


def test_growth_at_2330_shanghai_counts_on_that_shanghai_day_not_the_utc_one() -> None:
    model = TierModel(kind="rolling_window", window_days=1)
    late = shanghai(2027, 6, 15, 23, 30)  # 15:30 UTC on the 15th
    early = shanghai(2027, 6, 15, 7, 30)  # 23:30 UTC on the 14th

    in_shanghai = domain.windows(model, shanghai(2027, 6, 15, 12, 0), SHANGHAI).current
    in_utc = domain.windows(model, shanghai(2027, 6, 15, 12, 0), ZoneInfo("UTC")).current

    assert domain.in_window(in_shanghai, late)
    assert domain.in_window(in_shanghai, early)
    assert domain.in_window(in_utc, late)
    assert not domain.in_window(in_utc, early)  # the 14th in UTC


def test_rolling_window_edges_fall_at_local_midnight() -> None:
    model = TierModel(kind="rolling_window", window_days=365)

    window = domain.windows(model, shanghai(2027, 6, 15, 0, 5), SHANGHAI).current

    assert window == Window(shanghai(2026, 6, 16, 0, 0), shanghai(2027, 6, 16, 0, 0))
    assert window.start == datetime(2026, 6, 15, 16, 0, tzinfo=UTC)
    assert domain.in_window(window, shanghai(2026, 6, 16, 0, 0))
    assert not domain.in_window(window, shanghai(2026, 6, 16, 0, 0) - timedelta(microseconds=1))
    assert domain.in_window(window, shanghai(2027, 6, 15, 23, 59, 59))


def test_calendar_year_rolls_over_at_local_new_year() -> None:
    model = TierModel(kind="calendar_year")
    moment = shanghai(2027, 1, 1, 0, 30)  # still 2026 in UTC

    local = domain.windows(model, moment, SHANGHAI)
    utc = domain.windows(model, moment, ZoneInfo("UTC"))

    assert local.current == Window(shanghai(2027, 1, 1, 0, 0), shanghai(2028, 1, 1, 0, 0))
    assert local.previous == Window(shanghai(2026, 1, 1, 0, 0), shanghai(2027, 1, 1, 0, 0))
    assert utc.current.start == datetime(2026, 1, 1, tzinfo=UTC)


def test_lifetime_counts_everything() -> None:
    found = domain.windows(TierModel(kind="lifetime"), NOW, SHANGHAI)

    assert found.current == Window(None, None)
    assert found.previous is None


def test_calendar_year_status_lasts_through_the_next_year() -> None:
    assert domain.qualifying(200, 6000) == Qualifying(up=200, keep=6000)
    assert domain.qualifying(200, None) == Qualifying(up=200, keep=200)


def test_the_qualified_tier_is_the_highest_threshold_reached() -> None:
    tiers = programme().tiers

    assert [domain.qualified_index(tiers, value) for value in (0, 999, 1000, 4999, 10**9)] == [
        0,
        0,
        1,
        1,
        3,
    ]
    assert domain.qualified_index(tiers, -50) == 0


# --- upgrades ---------------------------------------------------------------------------------


def test_upgrade_is_immediate_and_may_skip_levels() -> None:
    decision = domain.upgrade(programme(), State(None), same(6000))

    assert decision is not None
    assert decision.tier_code == "T2"
    assert decision.changes == (domain.Change(None, "T2", "upgrade"),)


def test_upgrade_never_moves_down_and_clears_a_pending_grace() -> None:
    assert domain.upgrade(programme(), State("T3"), same(0)) is None
    decision = domain.upgrade(programme(), State("T1", downgrade_at=NOW), same(15000))
    assert decision is not None
    assert (decision.tier_code, decision.downgrade_at) == ("T3", None)


# --- evaluation -------------------------------------------------------------------------------


def test_without_grace_a_member_moves_down_one_level_at_the_first_evaluation() -> None:
    decision = domain.evaluate(programme(), State("T3"), same(0), NOW)

    assert decision is not None
    assert (decision.tier_code, decision.tier_changed) == ("T2", True)
    assert decision.changes == (domain.Change("T3", "T2", "downgrade"),)


def test_max_levels_down_and_the_qualified_tier_bound_the_step() -> None:
    two = programme(max_levels_down=2)

    far = domain.evaluate(two, State("T3"), same(0), NOW)
    near = domain.evaluate(two, State("T3"), same(5000), NOW)

    assert far is not None
    assert far.tier_code == "T1"
    assert near is not None
    assert near.tier_code == "T2"


def test_the_grace_starts_then_the_downgrade_waits_for_its_end() -> None:
    rules = programme(grace_days=30)

    started = domain.evaluate(rules, State("T2"), same(100), NOW)

    assert started is not None
    due = NOW + timedelta(days=30)
    assert (started.tier_code, started.downgrade_at, started.tier_changed) == ("T2", due, False)
    assert started.changes == (domain.Change("T2", "T2", "grace_started", due),)
    pending = State("T2", downgrade_at=due, evaluated_at=NOW)
    assert domain.evaluate(rules, pending, same(100), NOW + timedelta(days=29)) is None
    moved = domain.evaluate(rules, pending, same(100), due)
    assert moved is not None
    assert (moved.tier_code, moved.downgrade_at) == ("T1", None)


def test_requalifying_during_the_grace_clears_it() -> None:
    rules = programme(grace_days=30)
    pending = State("T2", downgrade_at=NOW + timedelta(days=3), evaluated_at=NOW)

    cleared = domain.evaluate(rules, pending, same(5000), NOW + timedelta(days=1))

    assert cleared is not None
    assert (cleared.tier_code, cleared.downgrade_at, cleared.tier_changed) == ("T2", None, False)
    assert cleared.changes == (domain.Change("T2", "T2", "grace_cleared"),)


def test_a_tier_the_programme_no_longer_has_maps_to_the_qualified_one() -> None:
    decision = domain.evaluate(programme(), State("GONE", downgrade_at=NOW), same(5200), NOW)

    assert decision is not None
    assert (decision.tier_code, decision.downgrade_at) == ("T2", None)
    assert decision.changes == (domain.Change("GONE", "T2", "programme_change"),)


def test_calendar_year_keeps_the_tier_on_last_years_growth() -> None:
    rules = programme(kind="calendar_year", window_days=None)

    assert domain.evaluate(rules, State("T2"), Qualifying(up=0, keep=5000), NOW) is None
    decision = domain.evaluate(rules, State("T2"), Qualifying(up=0, keep=999), NOW)
    assert decision is not None
    assert decision.tier_code == "T1"


def test_progress_names_the_next_tier_and_what_keeps_this_one() -> None:
    rules = programme()

    assert domain.progress(rules, "T1", same(1200)) == domain.Progress(1, 2, 3800, 0)
    assert domain.progress(rules, "T2", same(1200)) == domain.Progress(2, 3, 13800, 3800)
    assert domain.progress(rules, "T3", same(20000)) == domain.Progress(3, None, None, 0)
    assert domain.progress(rules, "GONE", same(1200)).tier_index == 1
    assert domain.progress(rules, None, same(0)) == domain.Progress(0, 1, 1000, 0)


# --- properties -------------------------------------------------------------------------------

ladders = st.lists(st.integers(1, 10**6), min_size=0, max_size=7, unique=True).map(
    lambda rest: [0, *sorted(rest)]
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Programme, State, Qualifying, datetime]:
    thresholds = draw(ladders)
    rules = programme(
        thresholds,
        grace_days=draw(st.integers(0, 60)),
        max_levels_down=draw(st.integers(1, 8)),
    )
    codes = [tier.code for tier in rules.tiers]
    code = draw(st.sampled_from([None, "GONE", *codes]))
    offsets = st.none() | st.integers(-90, 90).map(lambda days: NOW + timedelta(days=days))
    state = State(code, draw(offsets), draw(offsets))
    up = draw(st.integers(-1000, 2 * 10**6))
    keep = draw(st.integers(up, 2 * 10**6))
    return rules, state, Qualifying(up, keep), NOW


@given(cases())
def test_evaluation_never_drops_more_than_max_levels_nor_below_the_qualified_tier(
    case: tuple[Programme, State, Qualifying, datetime],
) -> None:
    rules, state, value, now = case
    decision = domain.evaluate(rules, state, value, now)
    current = domain.index_of(rules.tiers, state.tier_code)
    if decision is None or current is None:
        return
    after = domain.index_of(rules.tiers, decision.tier_code)
    assert after is not None
    qualified = domain.qualified_index(rules.tiers, value.keep)
    if after < current:
        assert current - after <= rules.tier_model.max_levels_down
        assert after >= qualified
        assert all(change.reason == "downgrade" for change in decision.changes)


@given(cases())
def test_an_upgrade_is_immediate(case: tuple[Programme, State, Qualifying, datetime]) -> None:
    rules, state, value, now = case
    current = domain.index_of(rules.tiers, state.tier_code)
    target = domain.qualified_index(rules.tiers, value.up)
    if current is None or target <= current:
        return
    for decision in (
        domain.upgrade(rules, state, value),
        domain.evaluate(rules, state, value, now),
    ):
        assert decision is not None
        assert decision.tier_code == rules.tiers[target].code
        assert decision.downgrade_at is None


@given(cases())
def test_evaluating_again_at_the_same_moment_changes_nothing(
    case: tuple[Programme, State, Qualifying, datetime],
) -> None:
    rules, state, value, now = case
    decision = domain.evaluate(rules, state, value, now)
    if decision is None:
        return
    after = State(decision.tier_code, decision.downgrade_at, evaluated_at=now)
    assert domain.evaluate(rules, after, value, now) is None
    assert domain.upgrade(rules, after, value) is None


@given(cases())
def test_a_grace_never_moves_the_member_and_only_a_downgrade_moves_it_down(
    case: tuple[Programme, State, Qualifying, datetime],
) -> None:
    rules, state, value, now = case
    decision = domain.evaluate(rules, state, value, now)
    if decision is None:
        return
    reasons = {change.reason for change in decision.changes}
    if reasons & {"grace_started", "grace_cleared"}:
        assert decision.tier_code == (state.tier_code or rules.tiers[0].code)
        assert not decision.tier_changed
    if "grace_started" in reasons:
        assert decision.downgrade_at == now + timedelta(days=rules.tier_model.grace_days)
