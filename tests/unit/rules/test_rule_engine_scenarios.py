"""The rule engine, scenario by scenario: an event, the rules, the points and the explanation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import pytest

from support.rule_engine import (
    FRIDAY_UTC_SATURDAY_HERE,
    D,
    book,
    campaign,
    item,
    member,
    purchase,
    rule,
)
from tally.rules.engine import HOLDOUT, Event, Member, Reason, arm_of, cap_key, evaluate
from tally.rules.events import event_problems
from tally.rules.rule_book import (
    Badge,
    CampaignSpec,
    Cap,
    CapPer,
    FixedGrowth,
    FixedPoints,
    GrowthPer,
    Multiply,
    Period,
    PointsPer,
    Variant,
)

PER_YUAN = PointsPer(D("1.00"), 1)
FOUR_PER_YUAN = PointsPer(D("1.00"), 4)
BEVERAGES = "item.category == 'beverages'"
BASKET = (
    item("tea", "12.00", "beverages"),
    item("crisps", "8.00", "snacks"),
    item("juice", "3.50", "beverages", "sale"),
)
SATURDAY = date(2026, 5, 9)
MONTH_CAP = Cap(CapPer.MEMBER, 3000, Period.MONTH)
MONTH_KEY = cap_key("BASE", 0, Period.MONTH, "m-1", date(2026, 5, 6))


def member_in(spec: CampaignSpec, arm: str | None) -> Member:
    """The first member (m-0, m-1, …) the campaign assigns to ``arm``."""
    return next(member(f"m-{n}") for n in range(10_000) if arm_of(f"m-{n}", spec) == arm)


HELD_OUT = campaign("TEST", rule("flat", FixedPoints(10)), holdout_bp=5000)
AB = campaign(
    "AB",
    rule("flat", FixedPoints(10)),
    variants=(Variant("A", 1), Variant("B", 1, {"flat": FixedPoints(25)})),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    campaigns: tuple[CampaignSpec, ...]
    event: Event
    points: int
    applied: list[tuple[str, str, int]]  # (campaign, rule, points) in order
    skipped: list[tuple[str, str, Reason, str | None]] = field(default_factory=list)
    member: Member = field(default_factory=member)
    remaining: dict[str, int] = field(default_factory=dict)
    growth: int = 0


SCENARIOS = [
    Scenario("points per amount", (campaign("BASE", rule("r", FOUR_PER_YUAN)),),
             purchase("152.50"), 610, [("BASE", "r", 610)]),
    Scenario("points per amount round down", (campaign("BASE", rule("r", PER_YUAN)),),
             purchase("10.99"), 10, [("BASE", "r", 10)]),
    Scenario("points per two yuan", (campaign("BASE", rule("r", PointsPer(D("2.00"), 3))),),
             purchase("5.00"), 7, [("BASE", "r", 7)]),
    Scenario("fixed points", (campaign("BASE", rule("r", FixedPoints(50))),),
             purchase(), 50, [("BASE", "r", 50)]),
    Scenario("growth per amount gives no points",
             (campaign("BASE", rule("g", GrowthPer(D("1.00"), 2))),),
             purchase("10.50"), 0, [("BASE", "g", 0)], growth=21),
    Scenario("fixed growth", (campaign("BASE", rule("g", FixedGrowth(5))),),
             purchase(), 0, [("BASE", "g", 0)], growth=5),
    Scenario("multiply what was accrued",
             (campaign("BASE", rule("base", PER_YUAN, 10), rule("x", Multiply(D("1.5")))),),
             purchase("100.00"), 150, [("BASE", "base", 100), ("BASE", "x", 50)]),
    Scenario("tier multiplier",
             (campaign("BASE", rule("base", PER_YUAN, 10), rule("tier", Multiply(None))),),
             purchase("100.00"), 140, [("BASE", "base", 100), ("BASE", "tier", 40)],
             member=member(tier="GOLD", tier_multiplier=D("1.4"))),
    Scenario("a multiply of higher priority runs first, on nothing",
             (campaign("BASE", rule("x", Multiply(D("2")), 200), rule("base", PER_YUAN, 100)),),
             purchase("100.00"), 100, [("BASE", "x", 0), ("BASE", "base", 100)]),
    Scenario("equal priorities go in file order, across campaigns",
             (campaign("DOUBLE", rule("x", Multiply(D("2")))),
              campaign("BASE", rule("base", PER_YUAN))),
             purchase("100.00"), 100, [("DOUBLE", "x", 0), ("BASE", "base", 100)]),
    Scenario("a later campaign of higher priority goes first",
             (campaign("DOUBLE", rule("x", Multiply(D("2")))),
              campaign("BASE", rule("base", PER_YUAN, 1))),
             purchase("100.00"), 200, [("BASE", "base", 100), ("DOUBLE", "x", 100)]),
    Scenario("stop ends the evaluation when its rule fires",
             (campaign("VIP", rule("vip", FixedPoints(500), 10, when="member.tier == 'GOLD'",
                                   stop=True)),
              campaign("BASE", rule("base", PER_YUAN))),
             purchase("100.00"), 500, [("VIP", "vip", 500)],
             [("BASE", "base", Reason.STOPPED_BY_HIGHER_RULE, None)],
             member=member(tier="GOLD")),
    Scenario("stop does nothing when its rule does not fire",
             (campaign("VIP", rule("vip", FixedPoints(500), 10, when="member.tier == 'GOLD'",
                                   stop=True)),
              campaign("BASE", rule("base", PER_YUAN))),
             purchase("100.00"), 100, [("BASE", "base", 100)],
             [("VIP", "vip", Reason.CONDITION_FALSE, "when: member.tier == 'GOLD'")],
             member=member(tier="SILVER")),
    Scenario("the false part of a when",
             (campaign("BASE", rule("r", PER_YUAN, when="event.amount >= 100 && "
                                    "member.tier in ['GOLD', 'PLATINUM']")),),
             purchase("150.00"), 0, [],
             [("BASE", "r", Reason.CONDITION_FALSE, "when: member.tier in ['GOLD', 'PLATINUM']")],
             member=member(tier="SILVER")),
    Scenario("points per matching item",
             (campaign("BEV", rule("bev", PointsPer(D("1.00"), 2), items=BEVERAGES)),),
             purchase("23.50", items=BASKET), 31, [("BEV", "bev", 31)]),
    Scenario("no item matches",
             (campaign("BEV", rule("bev", PER_YUAN, items="item.category == 'toys'")),),
             purchase("23.50", items=BASKET), 0, [],
             [("BEV", "bev", Reason.CONDITION_FALSE, "items: item.category == 'toys'")]),
    Scenario("items on an event without items",
             (campaign("BEV", rule("bev", PER_YUAN, items=BEVERAGES)),),
             purchase("23.50"), 0, [],
             [("BEV", "bev", Reason.CONDITION_FALSE, "items: the event has no items")]),
    Scenario("multiply after items works on those items' points",
             (campaign("BEV", rule("bev", PointsPer(D("1.00"), 2), 30, items=BEVERAGES),
                       rule("base", PER_YUAN, 20),
                       rule("double-bev", Multiply(D("2")), 10,
                            items=BEVERAGES + " && !('sale' in item.labels)")),),
             purchase("23.50", items=BASKET), 31 + 23 + 24,
             [("BEV", "bev", 31), ("BEV", "base", 23), ("BEV", "double-bev", 24)]),
    Scenario("fixed points with items are given once",
             (campaign("BEV", rule("bev", FixedPoints(50), items=BEVERAGES)),),
             purchase("23.50", items=BASKET), 50, [("BEV", "bev", 50)]),
    Scenario("a member cap cuts the grant to what is left",
             (campaign("BASE", rule("r", FOUR_PER_YUAN), caps=(MONTH_CAP,)),),
             purchase("152.50"), 100, [("BASE", "r", 100)], remaining={MONTH_KEY: 100}),
    Scenario("a spent cap gives nothing",
             (campaign("BASE", rule("r", FOUR_PER_YUAN), caps=(MONTH_CAP,)),),
             purchase("152.50"), 0, [], [("BASE", "r", Reason.CAPPED, "asked 610, 0 left")],
             remaining={MONTH_KEY: 0}),
    Scenario("a per-event cap over the campaign's rules",
             (campaign("BASE", rule("a", FixedPoints(400)), rule("b", FixedPoints(400)),
                       caps=(Cap(CapPer.EVENT, 500),)),),
             purchase(), 500, [("BASE", "a", 400), ("BASE", "b", 100)]),
    Scenario("an exhausted budget gives nothing",
             (campaign("BASE", rule("r", PER_YUAN), budget=1000),),
             purchase(), 0, [], [("BASE", "r", Reason.BUDGET_EXHAUSTED, "asked 200, 0 left")],
             remaining={"budget:BASE": 0}),
    Scenario("a budget cuts the grant",
             (campaign("BASE", rule("r", PER_YUAN), budget=1000),),
             purchase(), 50, [("BASE", "r", 50)], remaining={"budget:BASE": 50}),
    Scenario("outside the schedule",
             (campaign("OLD", rule("r", PER_YUAN), ends=date(2026, 4, 30)),),
             purchase(), 0, [], [("OLD", "r", Reason.OUTSIDE_SCHEDULE, "2026-05-06")]),
    Scenario("the schedule's days are the programme's",
             (campaign("SAT", rule("r", PER_YUAN), starts=SATURDAY, ends=SATURDAY),),
             purchase(at=FRIDAY_UTC_SATURDAY_HERE), 200, [("SAT", "r", 200)]),
    Scenario("another event type",
             (campaign("BASE", rule("r", PER_YUAN)),),
             purchase(type="bill_paid"), 0, [],
             [("BASE", "r", Reason.NOT_THIS_EVENT_TYPE, None)]),
    Scenario("weekend in the programme's zone",
             (campaign("WE", rule("r", FixedPoints(7), when="event.weekday in [6, 7] && "
                                  "event.hour == 1")),),
             purchase(at=FRIDAY_UTC_SATURDAY_HERE), 7, [("WE", "r", 7)]),
    Scenario("a weekday is not the weekend",
             (campaign("WE", rule("r", FixedPoints(7), when="event.weekday in [6, 7]")),),
             purchase(), 0, [],
             [("WE", "r", Reason.CONDITION_FALSE, "when: event.weekday in [6, 7]")]),
    Scenario("a member aggregate",
             (campaign("HF", rule("r", FixedPoints(9), when="member.purchases_30d >= 8")),),
             purchase(), 9, [("HF", "r", 9)],
             member=member(aggregates={"purchases_30d": 8})),
    Scenario("a custom event's attribute",
             (campaign("SV", rule("r", FixedPoints(3), when="event.attributes.questions > 5"),
                       on=("survey_answered",)),),
             purchase(None, type="survey_answered", attributes={"questions": 6}), 3,
             [("SV", "r", 3)]),
    Scenario("points per amount on an event without one",
             (campaign("BASE", rule("r", PER_YUAN)),),
             purchase(None), 0, [],
             [("BASE", "r", Reason.CONDITION_FALSE, "the event has no amount")]),
    Scenario("a badge", (campaign("B", rule("b", Badge("BIG_SPENDER"))),),
             purchase(), 0, [("B", "b", 0)]),
    Scenario("held out", (HELD_OUT,), purchase(), 0, [],
             [("TEST", "flat", Reason.HOLDOUT, None)], member=member_in(HELD_OUT, HOLDOUT)),
    Scenario("not held out", (HELD_OUT,), purchase(), 10, [("TEST", "flat", 10)],
             member=member_in(HELD_OUT, None)),
    Scenario("a variant's award", (AB,), purchase(), 25, [("AB", "flat", 25)],
             member=member_in(AB, "B")),
    Scenario("the other variant", (AB,), purchase(), 10, [("AB", "flat", 10)],
             member=member_in(AB, "A")),
]  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    outcome = evaluate(book(*scenario.campaigns), scenario.event, scenario.member,
                       scenario.remaining)  # fmt: skip
    assert [(a.campaign, a.rule, a.points) for a in outcome.applied] == scenario.applied
    assert [(s.campaign, s.rule, s.reason, s.detail) for s in outcome.skipped] == scenario.skipped
    assert outcome.points == scenario.points
    assert outcome.growth == scenario.growth


def test_a_cut_is_explained_and_consumption_is_what_was_granted() -> None:
    spec = campaign("BASE", rule("r", FOUR_PER_YUAN), caps=(MONTH_CAP,), budget=10_000)
    outcome = evaluate(book(spec), purchase("152.50"), member(), {MONTH_KEY: 100})
    (applied,) = outcome.applied
    assert (applied.points, applied.cut, applied.cut_by) == (100, 510, Reason.CAPPED)
    assert applied.counters == ("budget:BASE", MONTH_KEY)
    assert outcome.consumption == {"budget:BASE": 100, MONTH_KEY: 100}


def test_badges_are_listed_once_and_arms_recorded() -> None:
    outcome = evaluate(
        book(campaign("B", rule("a", Badge("X")), rule("b", Badge("X"))), AB),
        purchase(),
        member_in(AB, "B"),
    )
    assert outcome.badges == ("X",)
    assert outcome.arms == {"AB": "B"}
    assert [a.variant for a in outcome.applied] == [None, None, "B"]


def test_an_event_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event("purchase", datetime(2026, 5, 6, 12, 0))  # noqa: DTZ001


def test_an_arriving_event_is_checked_against_its_declared_type() -> None:
    rule_book = book()
    assert event_problems(rule_book, "survey_answered", {"questions": 6}) == []
    assert event_problems(rule_book, "purchase", {}) == []
    assert event_problems(rule_book, "survey", {}) == [
        "unknown event type 'survey'; the types are purchase, bill_paid, refund, sign_in, "
        "share, review, content_read, profile_completed, member_enrolled, referral_completed, "
        "survey_answered"
    ]
    assert event_problems(rule_book, "survey_answered", {"questions": "6", "pages": 2}) == [
        "attribute 'questions' must be int, not str",
        "attribute 'pages' is not declared for survey_answered",
    ]
    assert event_problems(rule_book, "survey_answered", {"questions": True}) == [
        "attribute 'questions' must be int, not bool"
    ]
