"""Sign-in streaks walked day by day: a property against counting the days directly, and the
cases a programme's rules rely on (a repeat, a late day, a broken streak)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tally.engagement.domain import Day, Streak, step

D0 = date(2026, 12, 1)


def _walk(days: list[date]) -> list[Day]:
    state: Streak | None = None
    seen = []
    for day in days:
        state, view = step(state, day, signs_in=True)
        seen.append(view)
    return seen


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40).map(sorted))
def test_a_counted_sign_in_sees_the_run_of_days_up_to_its_own(offsets: list[int]) -> None:
    days = [D0 + timedelta(days=n) for n in offsets]
    counted: set[date] = set()
    for day, view in zip(days, _walk(days), strict=True):
        if day in counted:
            assert view == Day(view.streak, False, repeats=day)
            continue
        counted.add(day)
        run = 0
        while day - timedelta(days=run) in counted:
            run += 1
        assert view.streak == run
        assert view.repeats is None
        assert view.broken == (len(counted) > 1 and day - timedelta(days=1) not in counted)


def test_a_repeat_and_a_late_day_count_nothing_and_change_nothing() -> None:
    state, first = step(None, D0, signs_in=True)
    assert first == Day(1, False)
    again, repeat = step(state, D0, signs_in=True)
    assert (again, repeat) == (state, Day(1, False, repeats=D0))
    later, _ = step(state, D0 + timedelta(days=1), signs_in=True)
    assert later == Streak(D0 + timedelta(days=1), 2)
    _, late = step(later, D0, signs_in=True)
    assert late.repeats == D0 + timedelta(days=1)


def test_other_events_see_a_live_streak_and_a_broken_one() -> None:
    state = Streak(D0, 6)
    assert step(state, D0, signs_in=False) == (state, Day(6, False))
    assert step(state, D0 + timedelta(days=1), signs_in=False) == (state, Day(6, False))
    assert step(state, D0 + timedelta(days=2), signs_in=False) == (state, Day(0, True))
    assert step(None, D0, signs_in=False) == (None, Day(0, False))
    _, restart = step(state, D0 + timedelta(days=3), signs_in=True)
    assert restart == Day(1, True)
