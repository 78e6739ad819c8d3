"""The vectorised tier evaluation (:mod:`tally.tiers.decisions`) decides exactly as the
per-member rules (:func:`tally.tiers.domain.evaluate`): a differential test over random
ladders, models and member states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from support.tier_programme import tier_programme
from tally.programme.domain import Programme
from tally.tiers import decisions, domain
from tally.tiers.domain import Qualifying, State

NOW = datetime(2027, 6, 15, 4, 0, tzinfo=UTC)


def programme(
    thresholds: list[int] | None = None, grace_days: int = 0, max_levels_down: int = 1
) -> Programme:
    ladder = [(f"T{index}", threshold, "1") for index, threshold in enumerate(thresholds or [0])]
    model = {"kind": "rolling_window", "window_days": 365, "grace_days": grace_days}
    return tier_programme(ladder, {**model, "max_levels_down": max_levels_down})


RELATIVE = st.one_of(st.none(), st.integers(-40, 40).map(lambda days: NOW + timedelta(days=days)))


@st.composite
def ladders(draw: st.DrawFn) -> list[int]:
    steps = draw(st.lists(st.integers(1, 5000), min_size=0, max_size=5))
    thresholds = [0]
    for step in steps:
        thresholds.append(thresholds[-1] + step)
    return thresholds


@st.composite
def members(draw: st.DrawFn, codes: list[str]) -> tuple[State, Qualifying]:
    code = draw(st.sampled_from([*codes, "GONE"]))  # a tier the programme no longer has
    state = State(code, draw(RELATIVE), draw(RELATIVE))
    up = draw(st.integers(-1000, 30_000))
    keep = draw(st.one_of(st.just(up), st.integers(up, up + 20_000)))
    return state, Qualifying(up, keep)


def frame_of(rows: list[tuple[State, Qualifying]]) -> pl.DataFrame:
    """The rows as the job reads them: instants compared with ``NOW`` by the query."""
    return pl.DataFrame(
        {
            "member_id": list(range(1, len(rows) + 1)),
            "version": [7] * len(rows),
            "tier_code": [state.tier_code for state, _ in rows],
            "in_grace": [state.downgrade_at is not None for state, _ in rows],
            "grace_running": [
                state.downgrade_at is not None and state.downgrade_at > NOW for state, _ in rows
            ],
            "evaluated_since": [
                state.evaluated_at is not None and state.evaluated_at >= NOW for state, _ in rows
            ],
            "up": [value.up for _, value in rows],
            "keep": [value.keep for _, value in rows],
        },
        schema=decisions.STATE_SCHEMA,
    )


@settings(max_examples=150, deadline=None)
@given(
    thresholds=ladders(),
    grace_days=st.sampled_from([0, 30]),
    max_levels_down=st.integers(1, 3),
    data=st.data(),
)
def test_the_vectorised_evaluation_decides_as_the_rules_do(
    thresholds: list[int], grace_days: int, max_levels_down: int, data: st.DataObject
) -> None:
    ladder = programme(thresholds, grace_days=grace_days, max_levels_down=max_levels_down)
    codes = [tier.code for tier in ladder.tiers]
    rows = data.draw(st.lists(members(codes), min_size=1, max_size=40))

    expected = []
    for member_id, (state, value) in enumerate(rows, start=1):
        decision = domain.evaluate(ladder, state, value, NOW)
        if decision is None:
            continue
        [change] = decision.changes
        due = decision.downgrade_at is not None
        assert due == (change.reason == domain.GRACE_STARTED)
        growth = value.up if change.reason == domain.UPGRADE else value.keep
        expected.append(
            (
                member_id,
                7,
                change.from_code,
                change.to_code,
                change.reason,
                growth,
                due,
                decision.tier_changed,
            )
        )

    decided = decisions.decide(ladder, frame_of(rows))

    assert decided.columns == list(decisions.DECISION_COLUMNS)
    assert decided.rows() == expected


def test_no_member_changes_when_the_frame_is_empty() -> None:
    decided = decisions.decide(programme(), frame_of([]))
    assert decided.is_empty()
    assert decided.columns == list(decisions.DECISION_COLUMNS)
