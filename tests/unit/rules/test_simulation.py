"""The simulation's pure core: a replay keeps to every cap and budget in event order, and the
comparison adds up each side per campaign and rule, budget and member's tier."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.rule_engine import D, book, campaign, member, purchase, rule
from tally.rules import simulation
from tally.rules.engine import budget_key
from tally.rules.rule_book import Cap, CapPer, FixedGrowth, FixedPoints, Period, PointsPer
from tally.rules.simulation import Figures, Given, Granted, Side, Subject

LADDER = (("BRONZE", 0), ("SILVER", 1000), ("GOLD", 5000))


def tier_of(growth: int) -> str:
    return [code for code, threshold in LADDER if growth >= threshold][-1]


def side(the_book: object, points: int = 1, minor_units: int = 1) -> Side:
    return Side(the_book, points, minor_units, "CNY", tier_of)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    amounts=st.lists(st.integers(0, 50_000), min_size=1, max_size=30),
    members=st.lists(st.integers(0, 3), min_size=30, max_size=30),
    cap=st.integers(1, 400),
    budget=st.integers(0, 2_000),
)
def test_a_replay_never_passes_a_cap_or_a_budget_and_consumes_in_order(
    amounts: list[int], members: list[int], cap: int, budget: int
) -> None:
    capped = book(
        campaign(
            "C",
            rule("rate", PointsPer(D("1.00"), 1)),
            caps=(Cap(CapPer.MEMBER, cap, Period.DAY),),
            budget=budget,
        )
    )
    events = [
        (purchase(f"{D(fen).scaleb(-2):.2f}"), member(f"m-{members[n]}"))
        for n, fen in enumerate(amounts)
    ]

    given_ = simulation.replay(capped, events)

    per_member: dict[str, int] = {}
    for (_, who), result in zip(events, given_, strict=True):
        per_member[who.id] = per_member.get(who.id, 0) + result.points
    assert all(points <= cap for points in per_member.values())
    assert sum(result.points for result in given_) <= budget
    # Each event gets what it asked, cut to what the counters had left after the ones before.
    used, left = 0, dict.fromkeys(per_member, cap)
    for (event, who), result in zip(events, given_, strict=True):
        asked = int(event.amount or 0)
        expected = min(asked, left[who.id], budget - used)
        assert result.points == expected
        assert result.consumption.get(budget_key("C"), 0) == expected
        used += expected
        left[who.id] -= expected


def test_the_comparison_adds_up_each_side_budgets_costs_refusals_and_tiers() -> None:
    running = book(
        campaign(
            "BASE",
            rule("rate", PointsPer(D("1.00"), 1)),
            rule("growth", FixedGrowth(100)),
        )
    )
    draft = book(
        campaign(
            "BASE",
            rule("rate", PointsPer(D("1.00"), 3)),
            rule("growth", FixedGrowth(600)),
        ),
        campaign("NEW", rule("gift", FixedPoints(50)), budget=60),
    )
    events = [
        (purchase("10.00"), member("1")),
        (purchase("20.00"), member("2")),
        (purchase("5.00"), member("1")),
    ]
    awarded = simulation.replay(running, events)
    drafted = simulation.replay(draft, [*events[:2], "validation_error"])
    subjects = [Subject("e1", "1"), Subject("e2", "2"), Subject("e3", "1", counts_for_tier=False)]

    report = simulation.compare(
        subjects, awarded, drafted, side(running, 100, 1), side(draft, 3, 2), {"1": 500, "2": 0}
    )

    assert report.running == Figures(points=35, growth=300, events=3, members=2)
    assert report.draft == Figures(points=90 + 60, growth=1200, events=2, members=2)
    assert report.running_cost == 0  # 35 points at 100 points a fen, rounded down
    assert report.draft_cost == 100  # 150 points at 3 points for 2 fen
    assert report.draft_refused == {"validation_error": 1}
    assert report.running_refused == {}
    lines = {(line.campaign, line.rule): line for line in (*report.campaigns, *report.rules)}
    assert lines[("NEW", "gift")].draft == Figures(points=60, events=2, members=2)
    assert lines[("NEW", None)].running == Figures()
    assert [(b.campaign, b.running_limit, b.running_used, b.draft_limit, b.draft_used)
            for b in report.budgets] == [("NEW", None, 0, 60, 60)]  # fmt: skip
    # Member 1: 500 + 100 (e3 does not count) → BRONZE; 500 + 600 → SILVER. Member 2: 100/600.
    assert [(t.member_id, t.running_qualifying, t.draft_qualifying, t.draft_tier)
            for t in report.tiers] == [("1", 600, 1100, "SILVER")]  # fmt: skip
    assert [
        (d.key, d.running_points, d.draft_points, d.draft_refused) for d in report.differences
    ] == [
        ("e1", 10, 80, None),
        ("e2", 20, 60 + 10, None),
        ("e3", 5, 0, "validation_error"),
    ]


def test_stored_outcomes_read_back_as_given() -> None:
    document = {
        "rules": [{"campaign": "BASE", "rule": "rate", "points": 10, "growth": 0}],
        "consumption": {"budget:BASE": 10},
    }

    found = Given.stored(10, 0, document)

    assert found == Given(10, 0, (Granted("BASE", "rate", 10, 0),), {"budget:BASE": 10})


def test_a_replay_tells_its_progress() -> None:
    ticks: list[int] = []
    plain = book(campaign("C", rule("rate", PointsPer(D("1.00"), 1))))

    simulation.replay(plain, [(purchase(), member())] * 2_500, ticks.append)

    assert ticks == [1_000, 1_000, 500]
