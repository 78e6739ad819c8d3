"""The vectorised engine against the engine itself: random programmes and random batches of
events give, event for event, the same outcomes (points, growth, rules applied and skipped
with their reasons and details, arms, what each counter consumed), and the shapes of the demo
programme are vectorised rather than handed to the engine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from support.rule_engine import WEDNESDAY_NOON, D, book, campaign, item, member, purchase, rule
from tally.rules.engine import Event, Member, counter_limits
from tally.rules.rule_book import (
    Badge,
    Cap,
    CapPer,
    Coupon,
    FixedGrowth,
    FixedPoints,
    GrowthPer,
    Multiply,
    Period,
    PointsPer,
    RuleBook,
    Variant,
)
from tally.rules.vectorised import by_the_engine, evaluate_in_order, evaluate_many

CONDITIONS = [
    "event.amount >= 100",
    "event.weekday in [6, 7]",
    "event.hour < 12",
    "member.tier == 'GOLD'",
    "member.purchases_30d >= 3 && event.amount > 50",
    "event.channel == 'app'",
    "!(event.amount < 20) || member.tier in ['GOLD', 'PLATINUM']",
    "event.attributes.questions > 2",
]
awards = st.one_of(
    st.builds(
        PointsPer, st.sampled_from([D("1.00"), D("0.50"), D("3.00"), D("0.0001")]),
        st.integers(1, 20),
    ),
    st.builds(FixedPoints, st.integers(1, 500)),
    st.builds(Multiply, st.sampled_from([None, D("1"), D("1.5"), D("2"), D("0.75"), D("1.33333")])),
    st.builds(GrowthPer, st.sampled_from([D("1.00"), D("0.20")]), st.integers(1, 3)),
    st.builds(FixedGrowth, st.integers(1, 50)),
    st.builds(Badge, st.just("BIG")),
    st.builds(Coupon, st.just("WELCOME10")),
)  # fmt: skip
caps = st.lists(
    st.one_of(
        st.builds(Cap, st.just(CapPer.EVENT), st.integers(1, 600)),
        st.builds(Cap, st.just(CapPer.MEMBER), st.integers(1, 2000), st.sampled_from(Period)),
    ),
    max_size=2,
)
TYPES = ("purchase", "bill_paid", "sign_in", "survey_answered")


@st.composite
def books(draw: st.DrawFn) -> RuleBook:
    campaigns = []
    for index in range(draw(st.integers(1, 4))):
        on = tuple(draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)))
        conditions = [c for c in CONDITIONS if "attributes" not in c or "survey_answered" in on]
        rules = [
            rule(
                f"r{position}",
                draw(awards),
                draw(st.integers(0, 3)),
                when=draw(st.none() | st.sampled_from(conditions)),
                items="item.category == 'beverages'" if draw(st.integers(0, 4)) == 0 else None,
                stop=draw(st.integers(0, 5)) == 0,
            )
            for position in range(draw(st.integers(1, 3)))
        ]
        tested = draw(st.integers(0, 3))
        campaigns.append(
            campaign(
                f"C{index}",
                *rules,
                on=on,
                caps=tuple(draw(caps)),
                budget=draw(st.none() | st.integers(0, 3000)),
                starts=draw(st.none() | st.just(WEDNESDAY_NOON.date() + timedelta(days=2))),
                ends=draw(st.none() | st.just(WEDNESDAY_NOON.date() + timedelta(days=9))),
                holdout_bp=2500 if tested in (1, 3) else 0,
                variants=(
                    Variant("A", 1),
                    Variant("B", 2, {"r0": draw(awards)} if draw(st.booleans()) else {}),
                )
                if tested >= 2
                else (),
            )
        )  # fmt: skip
    return book(*campaigns)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Event], list[Member]]:
    who = [
        member(
            f"m-{n}",
            tier=draw(st.sampled_from([None, "GOLD", "SILVER"])),
            tier_multiplier=draw(st.sampled_from([D("1"), D("1.4"), D("2.25"), D("1.00001")])),
            aggregates={"purchases_30d": draw(st.integers(0, 5))},
        )
        for n in range(draw(st.integers(1, 4)))
    ]
    events, members = [], []
    for _ in range(draw(st.integers(1, 25))):
        lines = draw(st.lists(st.sampled_from(["beverages", "snacks"]), max_size=2))
        cents = draw(st.none() | st.integers(-100, 60_000))
        events.append(
            purchase(
                None if cents is None else f"{Decimal(cents).scaleb(-2):.2f}",
                at=WEDNESDAY_NOON + timedelta(hours=draw(st.integers(0, 24 * 14))),
                type=draw(st.sampled_from(TYPES)),
                items=tuple(item(f"s{n}", "10.00", cat) for n, cat in enumerate(lines))
                if draw(st.integers(0, 5)) == 0
                else (),
                channel=draw(st.sampled_from([None, "app", "shop"])),
                attributes={"questions": draw(st.integers(0, 5))},
            )
        )
        members.append(draw(st.sampled_from(who)))
    return events, members


@settings(max_examples=300, deadline=None)
@given(books(), batches(), st.lists(st.integers(-5, 2500), max_size=12))
def test_vectorised_and_one_by_one_agree_exactly(
    rule_book: RuleBook, batch: tuple[list[Event], list[Member]], lefts: list[int]
) -> None:
    events, members = batch
    keys = sorted(
        {
            key
            for e, m in zip(events, members, strict=True)
            for key in counter_limits(rule_book, e, m.id)
        }
    )
    remaining = dict(zip(keys, lefts, strict=False))

    assert evaluate_many(rule_book, events, members, remaining) == evaluate_in_order(
        rule_book, events, members, remaining
    )  # fmt: skip


def test_the_demo_shapes_are_vectorised() -> None:
    """Base rate, growth, tier multiplier, weekend double, capped and budgeted campaigns (a
    member's month, each event, the budget), badges, a holdout, stop: nothing for the engine
    alone, and the same outcomes."""
    demo = book(
        campaign(
            "BASE",
            rule("per-yuan", PointsPer(D("1.00"), 1), 100),
            rule("growth", GrowthPer(D("1.00"), 1), 100),
            rule("tier", Multiply(None), 50),
            on=("purchase", "bill_paid"),
        ),
        campaign("WEEKEND", rule("double", Multiply(D("2")), 40, when="event.weekday in [6, 7]")),
        campaign(
            "BILLS",
            rule("bonus", PointsPer(D("1.00"), 2), 30, when="event.amount >= 20"),
            on=("bill_paid",),
            caps=(Cap(CapPer.MEMBER, 150, Period.MONTH), Cap(CapPer.EVENT, 100)),
            holdout_bp=1000,
        ),
        campaign(
            "FREQUENT",
            rule("triple", Multiply(D("3")), 35, when="event.amount >= 50"),
            rule("badge", Badge("BIG"), 35, when="event.amount >= 150"),
            rule("coupon", Coupon("WELCOME10"), 35, when="event.amount >= 100"),
            caps=(Cap(CapPer.MEMBER, 400, Period.MONTH), Cap(CapPer.EVENT, 200)),
            budget=2000,
            holdout_bp=1000,
        ),
        campaign("BUDGET", rule("flat", FixedPoints(40), 20, stop=True), budget=150),
    )
    members = [member(f"m-{n % 7}", tier_multiplier=D("1.5")) for n in range(60)]
    events = [
        purchase(
            f"{20 + n * 3}.50",
            at=WEDNESDAY_NOON + timedelta(hours=9 * n),
            type="bill_paid" if n % 2 else "purchase",
        )
        for n in range(60)
    ]
    keys = {
        key for e, m in zip(events, members, strict=True) for key in counter_limits(demo, e, m.id)
    }
    remaining = dict.fromkeys(sorted(keys), 120)

    assert by_the_engine(demo, events, members) == set()
    outcomes = evaluate_many(demo, events, members, remaining)
    assert outcomes == evaluate_in_order(demo, events, members, remaining)
    assert sum(o.consumption.get("budget:BUDGET", 0) for o in outcomes) == 120
    assert any(s.reason == "budget_exhausted" for o in outcomes for s in o.skipped)
    assert any(a.coupon == "WELCOME10" for o in outcomes for a in o.applied)
    assert any(a.cut_by == "capped" for o in outcomes for a in o.applied)


def test_events_with_items_and_those_sharing_their_counters_go_to_the_engine() -> None:
    rules = book(
        campaign("ITEMS", rule("drinks", PointsPer(D("1.00"), 2), items="item.category == 'x'")),
        campaign("BUDGET", rule("flat", FixedPoints(5)), budget=100),
        campaign("OTHER", rule("flat", FixedPoints(1)), on=("sign_in",)),
    )
    events = [
        purchase("10.00", items=(item("a", "10.00", "x"),)),
        purchase("10.00"),
        purchase(type="sign_in"),
    ]
    members = [member("m-1")] * 3

    assert by_the_engine(rules, events, members) == {0, 1}
