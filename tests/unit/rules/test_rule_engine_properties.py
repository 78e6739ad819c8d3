"""The engine's invariants, A/B assignment and refunds: properties over random campaigns and
events, and the shares of arms over 10,000 members."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from support.rule_engine import D, book, campaign, item, member, purchase, rule
from tally.rules.engine import (
    HOLDOUT,
    Event,
    Member,
    Outcome,
    arm_of,
    bucket,
    counter_limits,
    evaluate,
)
from tally.rules.refunds import refund
from tally.rules.rule_book import (
    Cap,
    CapPer,
    FixedGrowth,
    FixedPoints,
    GrowthPer,
    Multiply,
    Period,
    PointsPer,
    RuleBook,
    Variant,
)

MEMBERS = [f"member-{n}" for n in range(10_000)]

awards = st.one_of(
    st.builds(
        PointsPer,
        st.sampled_from([D("1.00"), D("0.50"), D("3.00"), D("10.00")]),
        st.integers(1, 20),
    ),
    st.builds(FixedPoints, st.integers(1, 500)),
    st.builds(Multiply, st.sampled_from([None, D("1"), D("1.5"), D("2"), D("3.25")])),
    st.builds(GrowthPer, st.just(D("1.00")), st.integers(1, 3)),
    st.builds(FixedGrowth, st.integers(1, 50)),
)
caps = st.lists(
    st.one_of(
        st.builds(Cap, st.just(CapPer.EVENT), st.integers(1, 2000)),
        st.builds(Cap, st.just(CapPer.MEMBER), st.integers(1, 2000), st.sampled_from(Period)),
    ),
    max_size=2,
)


@st.composite
def books(draw: st.DrawFn, same_priority: bool = False) -> RuleBook:
    campaigns = []
    for index in range(draw(st.integers(1, 4))):
        rules = [
            rule(
                f"r{position}",
                draw(awards),
                0 if same_priority else draw(st.integers(0, 3)),
                items="item.category == 'beverages'" if draw(st.booleans()) else None,
                stop=not same_priority and draw(st.integers(0, 5)) == 0,
            )
            for position in range(draw(st.integers(1, 3)))
        ]
        campaigns.append(
            campaign(
                f"C{index}",
                *rules,
                caps=tuple(draw(caps)),
                budget=draw(st.none() | st.integers(0, 3000)),
            )
        )
    return book(*campaigns)


amounts = st.decimals(min_value=0, max_value=100_000, places=2).map(lambda d: f"{d:.2f}")
events = st.builds(
    lambda amount, lines: purchase(
        amount,
        items=tuple(item(f"s{n}", line, cat) for n, (line, cat) in enumerate(lines)),
    ),
    amounts,
    st.lists(st.tuples(amounts, st.sampled_from(["beverages", "snacks"])), max_size=3),
)
members = st.builds(
    lambda multiplier: member("m-1", tier_multiplier=multiplier),
    st.sampled_from([D("1.0"), D("1.4"), D("2.0")]),
)


def _remaining(book: RuleBook, draw_left: list[int]) -> dict[str, int]:
    keys = sorted(counter_limits(book, purchase(), "m-1"))
    return dict(zip(keys, draw_left, strict=False))


@settings(max_examples=150, deadline=None)
@given(books(), events, members, st.lists(st.integers(0, 3000), max_size=10))
def test_points_are_never_negative_and_counters_never_overrun(
    rule_book: RuleBook, event: Event, who: Member, left: list[int]
) -> None:
    remaining = _remaining(rule_book, left)
    outcome = evaluate(rule_book, event, who, remaining)
    assert all(applied.points >= 0 and applied.growth >= 0 for applied in outcome.applied)
    limits = counter_limits(rule_book, event, "m-1")
    for key, used in outcome.consumption.items():
        assert used <= remaining.get(key, limits[key])
    for spec in rule_book.campaigns:
        given_by = sum(a.points for a in outcome.applied if a.campaign == spec.code)
        for cap in spec.caps:
            assert given_by <= cap.points
        if spec.budget is not None:
            assert given_by <= spec.budget
    assert evaluate(rule_book, event, who, remaining) == outcome


@settings(max_examples=100, deadline=None)
@given(books(same_priority=True), events)
def test_equal_priorities_run_in_file_order(rule_book: RuleBook, event: Event) -> None:
    outcome = evaluate(rule_book, event, member())
    ran = [(a.campaign, a.rule) for a in outcome.applied]
    assert ran == sorted(ran, key=lambda pair: (int(pair[0][1:]), int(pair[1][1:])))


def _outcome(points: int, growth: int) -> Outcome:
    spec = campaign("BASE", rule("r", FixedPoints(points)), rule("g", FixedGrowth(growth)))
    return evaluate(book(spec), purchase(), member())


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 100_000),
    st.integers(1, 10_000),
    st.integers(1, 1_000_000),
    st.lists(st.integers(0, 1_000_000), max_size=6),
)
def test_refunds_sum_back_to_at_most_the_grant_and_exactly_in_full(
    points: int, growth: int, cents: int, parts: list[int]
) -> None:
    original = _outcome(points, growth)
    amount = Decimal(cents).scaleb(-2)
    refunded = Decimal(0)
    taken = 0
    for part in [Decimal(p).scaleb(-2) for p in parts]:
        back = refund(original, amount, part, refunded)
        assert back.points <= 0
        assert back.growth <= 0
        taken -= back.points
        refunded += part
        assert taken <= points
    rest = refund(original, amount, amount, refunded)
    assert taken - rest.points == points
    assert -refund(original, amount, amount).growth == growth


def test_a_refund_takes_back_in_proportion_and_never_twice() -> None:
    spec = campaign("BASE", rule("r", PointsPer(D("1.00"), 5)), budget=100_000)
    original = evaluate(book(spec), purchase("200.00"), member())
    assert original.points == 1000
    half = refund(original, D("200.00"), D("100.00"))
    assert half.points == -500
    assert half.given_back == {"budget:BASE": 500}
    assert refund(original, D("200.00"), D("100.00"), D("100.00")).points == -500
    assert refund(original, D("200.00"), D("50.00"), D("200.00")).points == 0
    assert refund(original, D("200.00"), D("300.00")).points == -1000


def test_thirds_of_a_refund_return_everything_exactly() -> None:
    original = _outcome(1001, 7)
    amount = D("3.00")
    parts = [refund(original, amount, D("1.00"), D(n)) for n in range(3)]
    assert [p.points for p in parts] == [-333, -334, -334]
    assert sum(p.points for p in parts) == -1001
    assert sum(p.growth for p in parts) == -7


def test_arms_are_deterministic_and_shares_follow_weights_and_holdout() -> None:
    spec = campaign(
        "AB",
        rule("flat", FixedPoints(1)),
        variants=(Variant("A", 1), Variant("B", 3)),
        holdout_bp=1000,
    )
    arms = Counter(arm_of(member_id, spec) for member_id in MEMBERS)
    # Binomial standard deviations over 10,000: 30 for the holdout, about 41 for A: ±4.
    assert abs(arms[HOLDOUT] - 1000) < 120
    assert abs(arms["A"] - 2250) < 170
    assert abs(arms["B"] - 6750) < 190
    assert sum(arms.values()) == 10_000
    assert [arm_of(member_id, spec) for member_id in MEMBERS[:50]] == [
        arm_of(member_id, spec) for member_id in MEMBERS[:50]
    ]
    assert bucket("member-1", "AB") == bucket("member-1", "AB")
    # Another campaign shuffles members independently.
    other = campaign("OTHER", rule("flat", FixedPoints(1)), holdout_bp=1000)
    both = sum(arm_of(m, spec) == HOLDOUT and arm_of(m, other) == HOLDOUT for m in MEMBERS)
    assert both < 200  # about 100 if independent; 1000 if the same members


def test_a_campaign_without_a_test_has_no_arm() -> None:
    assert arm_of("member-1", campaign("BASE", rule("flat", FixedPoints(1)))) is None
