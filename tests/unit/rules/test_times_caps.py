"""Caps of times: a campaign fires on at most N events of a member in a period, each event
counted once however many of its rules fire; skipped as ``capped`` with the limit said."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from support.rule_engine import WEDNESDAY_NOON, D, book, campaign, member, purchase, rule
from tally.rules.engine import Outcome, Reason, counter_limits, evaluate
from tally.rules.rule_book import (
    Cap,
    CapPer,
    FixedGrowth,
    FixedPoints,
    Period,
    PointsPer,
    RuleBook,
)
from tally.rules.vectorised import evaluate_in_order, evaluate_many

SHARE = campaign(
    "SHARE",
    rule("points", FixedPoints(10), 10),
    rule("growth", FixedGrowth(1), 5),
    on=("share",),
    caps=(Cap(CapPer.MEMBER, None, Period.WEEK, times=3),),
)


def _share(days: int = 0) -> object:
    return purchase(None, at=WEDNESDAY_NOON + timedelta(days=days), type="share")


def _run(rule_book: RuleBook, events: list[object]) -> list[Outcome]:
    """Evaluate events in turn, each seeing what the ones before consumed (as the writer does)."""
    used: dict[str, int] = {}
    outcomes = []
    for event in events:
        limits = counter_limits(rule_book, event, "m-1")  # type: ignore[arg-type]
        remaining = {key: limit - used.get(key, 0) for key, limit in limits.items()}
        outcome = evaluate(rule_book, event, member(), remaining)  # type: ignore[arg-type]
        for key, n in outcome.consumption.items():
            used[key] = used.get(key, 0) + n
        outcomes.append(outcome)
    return outcomes


def test_a_times_cap_names_a_counter_of_the_week_limited_to_its_times() -> None:
    assert counter_limits(book(SHARE), _share(), "m-1") == {"cap:SHARE:0:m-1:2026-W19": 3}  # type: ignore[arg-type]


def test_the_fourth_share_of_a_week_is_capped_and_next_week_counts_anew() -> None:
    outcomes = _run(book(SHARE), [_share(), _share(), _share(1), _share(2), _share(5)])
    assert [o.points for o in outcomes] == [10, 10, 10, 0, 10]
    assert [o.growth for o in outcomes] == [1, 1, 1, 0, 1]
    # Two rules fired on each event; the event counts once.
    assert outcomes[0].consumption == {"cap:SHARE:0:m-1:2026-W19": 1}
    assert outcomes[4].consumption == {"cap:SHARE:0:m-1:2026-W20": 1}
    capped = outcomes[3].skipped
    assert [(s.rule, s.reason, s.detail) for s in capped] == [
        ("points", Reason.CAPPED, "at most 3 times a week, 0 left"),
        ("growth", Reason.CAPPED, "at most 3 times a week, 0 left"),
    ]
    assert outcomes[3].consumption == {}


def test_a_one_time_task_fires_once_for_the_whole_campaign() -> None:
    once = campaign(
        "PROFILE",
        rule("done", FixedPoints(100)),
        on=("profile_completed",),
        caps=(Cap(CapPer.MEMBER, None, Period.CAMPAIGN, times=1),),
    )
    event = purchase(None, type="profile_completed")
    first, second = _run(book(once), [event, event])
    assert first.points == 100
    assert first.applied[0].counters == ()  # a times counter is not given back by refunds
    assert second.points == 0
    assert second.skipped[0].detail == "at most once, 0 left"


def test_a_rule_whose_condition_is_false_does_not_count_a_time() -> None:
    picky = campaign(
        "BIG",
        rule("big", FixedPoints(5), when="event.amount >= 100"),
        caps=(Cap(CapPer.MEMBER, None, Period.DAY, times=1),),
    )
    outcomes = _run(book(picky), [purchase("50.00"), purchase("150.00"), purchase("150.00")])
    assert [o.points for o in outcomes] == [0, 5, 0]
    assert outcomes[0].consumption == {}
    assert outcomes[2].skipped[0].reason is Reason.CAPPED


def test_points_and_times_caps_hold_together() -> None:
    both = campaign(
        "BOTH",
        rule("p", FixedPoints(30)),
        caps=(
            Cap(CapPer.MEMBER, 50, Period.DAY),
            Cap(CapPer.MEMBER, None, Period.DAY, times=5),
        ),
    )
    outcomes = _run(book(both), [purchase()] * 4)
    assert [o.points for o in outcomes] == [30, 20, 0, 0]
    # The third event was cut to nothing by points: it fired on no grant, so no time counted.
    assert outcomes[2].skipped[0].detail == "asked 30, 0 left"
    assert sum(n for o in outcomes for k, n in o.consumption.items() if ":1:" in k) == 2


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 4),
    st.sampled_from(list(Period)),
    st.lists(st.integers(0, 40), min_size=1, max_size=15),
    st.integers(1, 3),
)
def test_a_campaign_never_fires_on_more_events_than_its_times(
    times: int, period: Period, offsets: list[int], rules: int
) -> None:
    capped = campaign(
        "T",
        *(rule(f"r{n}", FixedPoints(n + 1)) for n in range(rules)),
        caps=(Cap(CapPer.MEMBER, None, period, times=times),),
    )
    events = [purchase(at=WEDNESDAY_NOON + timedelta(days=d)) for d in sorted(offsets)]
    outcomes = _run(book(capped), events)
    windows: dict[str, int] = {}
    for outcome in outcomes:
        assert set(outcome.consumption.values()) <= {1}
        for key in outcome.consumption:
            windows[key] = windows.get(key, 0) + 1
        fired = bool(outcome.applied)
        assert fired == bool(outcome.consumption)
        assert outcome.points in (0, sum(range(1, rules + 1)))
    assert all(count <= times for count in windows.values())
    assert sum(windows.values()) == sum(1 for o in outcomes if o.applied)


def test_the_vectorised_evaluator_leaves_a_times_capped_campaign_to_the_engine() -> None:
    """Bulk evaluation gives the engine's outcomes: events of a times-capped campaign go to
    the engine, the others stay vectorised, and a streak field is read like the engine does."""
    base = campaign(
        "BASE",
        rule("per", PointsPer(D("1.00"), 1), 10),
        rule("loyal", FixedPoints(3), 5, when="member.sign_in_streak >= 2"),
        on=("purchase",),
    )
    rule_book = book(base, SHARE)
    events = [
        *[_share(days) for days in (0, 0, 1, 1, 2)],
        *[purchase("10.00", at=WEDNESDAY_NOON + timedelta(days=d)) for d in range(3)],
    ]
    members = [member(sign_in_streak=n % 3) for n in range(len(events))]
    assert evaluate_many(rule_book, events, members, {}) == evaluate_in_order(
        rule_book, events, members, {}
    )
    outcomes = evaluate_in_order(rule_book, events, members, {})
    assert [o.points for o in outcomes] == [10, 10, 10, 0, 0, 13, 10, 10]  # streaks 2, 0, 1
