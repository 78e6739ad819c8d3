"""Pure ledger rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.ledger.domain import (
    Leg,
    LotView,
    UnbalancedEntry,
    check_balanced,
    entry_hash,
    link_hash,
    member_deltas,
    plan_consumption,
    plan_release,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

lots_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=1000), st.integers(min_value=1, max_value=400)),
    max_size=20,
).map(
    lambda items: sorted(
        (
            LotView(id=index + 1, remaining=remaining, expires_at=T0 + timedelta(days=days))
            for index, (remaining, days) in enumerate(items)
        ),
        key=lambda lot: (lot.expires_at, lot.id),
    )
)


@given(lots_strategy, st.integers(min_value=1, max_value=20_000))
def test_consumption_takes_exactly_what_is_asked_from_the_earliest_lots(lots, points) -> None:
    plan = plan_consumption(lots, points)
    total = sum(lot.remaining for lot in lots)
    if points > total:
        assert plan is None
        return
    assert plan is not None
    assert sum(taken for _lot, taken in plan) == points
    remaining = {lot.id: lot.remaining for lot in lots}
    for lot_id, taken in plan:
        assert 0 < taken <= remaining[lot_id]
    # Every lot before the last one touched is emptied: earliest expiry first.
    used = [lot_id for lot_id, _ in plan]
    order = [lot.id for lot in lots if lot.remaining > 0]
    assert used == order[: len(used)]
    for lot_id, taken in plan[:-1]:
        assert taken == remaining[lot_id]


@given(
    st.lists(st.tuples(st.integers(1, 400), st.integers(1, 1000)), min_size=1, max_size=10),
    st.data(),
)
def test_release_gives_back_latest_expiring_portions_first(portions, data) -> None:
    consumed = [
        (index + 1, T0 + timedelta(days=days), taken)
        for index, (days, taken) in enumerate(portions)
    ]
    total = sum(taken for _l, _e, taken in consumed)
    points = data.draw(st.integers(min_value=1, max_value=total))
    release = plan_release(consumed, points)
    assert sum(points for _lot, points in release) == points
    by_lot = {lot_id: (expires, taken) for lot_id, expires, taken in consumed}
    for lot_id, given_back in release:
        assert 0 < given_back <= by_lot[lot_id][1]
    released_expiries = [by_lot[lot_id][0] for lot_id, _ in release]
    kept_expiries = [
        expires for lot_id, expires, taken in consumed if dict(release).get(lot_id, 0) < taken
    ]
    if kept_expiries and released_expiries:
        assert min(released_expiries) >= min(kept_expiries)


def test_release_refuses_more_than_consumed() -> None:
    with pytest.raises(ValueError, match="more than was consumed"):
        plan_release([(1, T0, 5)], 6)


@pytest.mark.parametrize(
    "legs",
    [
        [Leg("a", 5)],
        [Leg("a", 5), Leg("b", -4)],
        [Leg("a", 0), Leg("b", 0)],
        [],
    ],
)
def test_unbalanced_entries_are_refused(legs) -> None:
    with pytest.raises(UnbalancedEntry):
        check_balanced(legs)


def test_member_deltas_net_available_and_held() -> None:
    legs = [
        Leg("member:1:held", -10),
        Leg("partner:2:redeemed", 4),
        Leg("member:1:available", 6),
        Leg("member:3:available", 0 + 1),
        Leg("system:adjustments", -1),
    ]
    assert member_deltas(legs) == {1: (6, -10), 3: (1, 0)}


def test_entry_hash_changes_with_any_field_or_leg() -> None:
    base = {
        "entry_id": "e1",
        "kind": "earn",
        "created_at": T0,
        "partner_id": 1,
        "staff_id": None,
        "member_id": 7,
        "reference": "r",
        "reverses_id": None,
        "legs": [Leg("member:7:available", 5), Leg("partner:1:issued", -5)],
    }
    original = entry_hash(**base)
    assert entry_hash(**{**base, "legs": list(reversed(base["legs"]))}) == original
    for change in (
        {"reference": "r2"},
        {"kind": "redeem"},
        {"member_id": 8},
        {"created_at": T0 + timedelta(microseconds=1)},
        {"legs": [Leg("member:7:available", 6), Leg("partner:1:issued", -6)]},
    ):
        assert entry_hash(**{**base, **change}) != original


def test_link_hash_binds_position_and_previous() -> None:
    assert link_hash("a", 1, "e") != link_hash("a", 2, "e")
    assert link_hash("a", 1, "e") != link_hash("b", 1, "e")
