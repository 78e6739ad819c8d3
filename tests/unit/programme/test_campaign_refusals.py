"""Campaigns in the programme file: each mistake refused with its line, its field and a clear
message; a valid file compiles into the engine's rule book; plans describe campaign changes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tally.programme import loader
from tally.programme.campaign_rules import rule_book
from tally.programme.changes import changes
from tally.rules.engine import Event, Item, Member, Reason, arm_of, evaluate
from tally.rules.rule_book import FixedPoints, Multiply, PointsPer
from unit.programme.test_programme_loader import GOOD

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"
EARNING = """\
event_types:
  - code: survey_answered
    attributes: {questions: int}
aggregates:
  - {code: purchases_30d, of: purchase, measure: count, days: 30}
badges:
  - {code: BIG_SPENDER, names: {zh-CN: 大买家, en: Big spender}}
campaigns:
  - code: BASE
    names: {zh-CN: 消费积分, en: Points on spend}
    on: [purchase, bill_paid]
    schedule: {from: 2026-01-01, until: 2026-12-31}
    caps: [{per: member, period: month, points: 3000}]
    budget: {points: 1000000}
    rules:
      - code: per-yuan
        priority: 100
        when: "event.amount >= 100 && member.tier in ['GOLD', 'SILVER']"
        items: "!('color:red' in item.labels) && item.sku != '0001'"
        award: {points_per: {amount: "1.00", points: 4}}
      - code: tier
        award: {multiply: tier}
  - code: SURVEY
    names: {zh-CN: 问卷, en: Surveys}
    on: [survey_answered]
    holdout: "0.10"
    variants:
      - {code: A, weight: 1}
      - code: B
        weight: 1
        rules_override: {long: {award: {points: 20}}}
    rules:
      - code: long
        when: |
          event.attributes.questions > 5 &&
          member.purchases_30d >= 1
        award: {points: 10}
        stop: true
      - code: badge
        award: {badge: BIG_SPENDER}
"""
SAMPLE = GOOD + EARNING


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_the_sample_is_valid_and_compiles() -> None:
    programme = loader.load(SAMPLE)
    book = rule_book(programme)
    assert [(rule.campaign.code, rule.spec.code) for rule in book.rules] == [
        ("BASE", "per-yuan"), ("BASE", "tier"), ("SURVEY", "long"), ("SURVEY", "badge"),
    ]  # fmt: skip
    assert book.rules[0].spec.award == PointsPer(Decimal("1.00"), 4)
    assert book.rules[1].spec.award == Multiply(None)
    survey = book.campaigns[1]
    assert survey.holdout_bp == 1000
    assert survey.variants[1].awards == {"long": FixedPoints(20)}
    assert loader.load(loader.dump(programme)) == programme


# (what is wrong, text replaced, replacement, the line's text, lines below it, field, message)
REFUSED = [
    ("duplicate campaign", "code: SURVEY", "code: BASE", "code: BASE\n    names: {zh-CN: 问卷", 0,
     "campaigns[1].code", "BASE is already used by campaigns[0]"),
    ("duplicate rule", "code: tier", "code: per-yuan", "code: per-yuan\n        award: {mul", 0,
     "campaigns[0].rules[1].code", "per-yuan is already used by campaigns[0].rules[0]"),
    ("unknown event type", "on: [purchase, bill_paid]", "on: [purchase, bill_payed]",
     "on: [purchase, bill_payed]", 0, "campaigns[0].on[1]", "no event type bill_payed"),
    ("unknown aggregate event", "of: purchase", "of: purchases", "of: purchases", 0,
     "aggregates[0].of", "no event type purchases"),
    ("unknown field in a condition", "event.amount >= 100", "event.ammount >= 100",
     "event.ammount", 0, "campaigns[0].rules[0].when",
     "unknown field 'event.ammount'; did you mean 'event.amount'? (condition_unknown_field, "
     "column 1)"),
    ("a string compared with a number", "event.amount >= 100", "event.amount >= '100'",
     "event.amount >= '100'", 0, "campaigns[0].rules[0].when", "condition_type"),
    ("item fields outside items", "event.amount >= 100", "item.amount >= 100",
     "item.amount >= 100", 0, "campaigns[0].rules[0].when", "unknown field 'item.amount'"),
    ("bad syntax in items", "item.sku != '0001'", "item.sku = '0001'", "item.sku = '0001'", 0,
     "campaigns[0].rules[0].items", "condition_syntax"),
    ("an error on the second line of a block condition", "member.purchases_30d >= 1",
     "member.purchases_31d >= 1", "event.attributes.questions", 1,
     "campaigns[1].rules[0].when", "unknown field 'member.purchases_31d'"),
    ("an attribute of another event type", "event.attributes.questions > 5",
     "event.attributes.pages > 5", "event.attributes.pages", 0, "campaigns[1].rules[0].when",
     "unknown field 'event.attributes.pages'"),
    ("unknown tier in a condition", "['GOLD', 'SILVER']", "['GOLD', 'SILVERR']",
     "['GOLD', 'SILVERR']", 0, "campaigns[0].rules[0].when",
     "no tier 'SILVERR'; the tiers are BRONZE, SILVER, GOLD"),
    ("unknown badge", "award: {badge: BIG_SPENDER}", "award: {badge: BIG_SPENDR}",
     "award: {badge: BIG_SPENDR}", 0, "campaigns[1].rules[1].award.badge",
     "no badge BIG_SPENDR in badges"),
    ("a zero amount", 'amount: "1.00", points: 4', 'amount: "0.00", points: 4', 'amount: "0.00"',
     0, "campaigns[0].rules[0].award.points_per.amount", "must be above 0"),
    ("an amount finer than the money", 'amount: "1.00", points: 4', 'amount: "1.001", points: 4',
     'amount: "1.001"', 0, "campaigns[0].rules[0].award.points_per.amount",
     "1.001 is not an exact amount of CNY (2 decimals)"),
    ("an amount as a number", 'amount: "1.00", points: 4', "amount: 1.00, points: 4",
     "amount: 1.00", 0, "campaigns[0].rules[0].award.points_per.amount",
     "quoted decimal string"),
    ("two effects in one award", "award: {multiply: tier}", "award: {multiply: tier, points: 5}",
     "award: {multiply: tier, points: 5}", 0, "campaigns[0].rules[1].award",
     "exactly one of points_per, points, multiply, growth_per, growth, badge, coupon; got "
     "points, "
     "multiply"),
    ("a factor below 1", "award: {multiply: tier}", 'award: {multiply: "0.5"}',
     'award: {multiply: "0.5"}', 0, "campaigns[0].rules[1].award.multiply",
     'must be "tier" or a decimal from 1 to 100'),
    ("a cap of nothing", "period: month, points: 3000", "period: month, points: 0",
     "caps: [", 0, "campaigns[0].caps[0].points", "greater than or equal to 1"),
    ("a per-event cap with a period", "per: member, period: month", "per: event, period: month",
     "caps: [", 0, "campaigns[0].caps[0]", "a per-member cap has a period"),
    ("a cap of points and times", "period: month, points: 3000",
     "period: month, points: 3000, times: 3", "caps: [", 0, "campaigns[0].caps[0]",
     "a cap limits either points or times, exactly one of them"),
    ("a cap of neither", "period: month, points: 3000", "period: month", "caps: [", 0,
     "campaigns[0].caps[0]", "a cap limits either points or times"),
    ("a per-event cap of times", "per: member, period: month, points: 3000",
     "per: event, times: 2", "caps: [", 0, "campaigns[0].caps[0]",
     "a per-event cap limits points; times are counted per member"),
    ("a cap of no times", "period: month, points: 3000", "period: week, times: 0", "caps: [",
     0, "campaigns[0].caps[0].times", "greater than or equal to 1"),
    ("a task without a times cap", "caps: [{per: member, period: month, points: 3000}]",
     "caps: [{per: member, period: month, points: 3000}]\n    task: {goal: 3, period: month}",
     "task: {goal", 0, "campaigns[0].task",
     "a task counts through a times cap of its period: add caps: [{per: member, period: "
     "month, times: 3}]"),
    ("a task of a cap too small", "caps: [{per: member, period: month, points: 3000}]",
     "caps: [{per: member, period: week, times: 2}]\n    task: {goal: 3, period: week}",
     "task: {goal", 0, "campaigns[0].task", "(times at least the goal)"),
    ("a task of no goal", "caps: [{per: member, period: month, points: 3000}]",
     "caps: [{per: member, period: week, times: 2}]\n    task: {goal: 0, period: week}",
     "task: {goal", 0, "campaigns[0].task.goal", "greater than or equal to 1"),
    ("a budget as text", "budget: {points: 1000000}", 'budget: {points: "1000000"}',
     "budget: {points:", 0, "campaigns[0].budget.points", "integer"),
    ("a reversed schedule", "until: 2026-12-31", "until: 2025-12-31", "schedule:", 0,
     "campaigns[0].schedule.until", "is before schedule.from (2026-01-01)"),
    ("a schedule with a time", "until: 2026-12-31", "until: 2026-12-31T10:00:00", "schedule:",
     0, "campaigns[0].schedule.until", "must be a date such as 2026-01-01, without a time"),
    ("a weight of zero", "{code: A, weight: 1}", "{code: A, weight: 0}", "{code: A, weight: 0}",
     0, "campaigns[1].variants[0].weight", "greater than or equal to 1"),
    ("a holdout of everyone", 'holdout: "0.10"', 'holdout: "1"', "holdout:", 0,
     "campaigns[1].holdout", "must be below 1"),
    ("a variant named holdout", "{code: A, weight: 1}", "{code: holdout, weight: 1}",
     "{code: holdout", 0, "campaigns[1].variants[0].code", "holdout is the held-out arm"),
    ("an override of an unknown rule", "rules_override: {long:", "rules_override: {lang:",
     "rules_override", 0, "campaigns[1].variants[1].rules_override.lang",
     "no rule lang in this campaign"),
    ("an unknown key in a rule", "stop: true", "stops: true", "stops: true", 0,
     "campaigns[1].rules[0].stops", "unknown field"),
    ("an aggregate hiding a member field", "code: purchases_30d", "code: tier", "aggregates:",
     0, "aggregates", "would hide the built-in field member.tier"),
    ("a blank campaign name", "en: Surveys}", 'en: " "}', "names: {zh-CN: 问卷", 0,
     "campaigns[1].names.en", "must not be blank"),
    ("a duplicate badge", "badges:\n", "badges:\n  - {code: BIG_SPENDER, names: {zh-CN: 大, en: B}}"
     "\n",
     "{code: BIG_SPENDER, names: {zh-CN: 大买家", 0, "badges[1].code",
     "BIG_SPENDER is already used by badges[0]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "at", "below", "path", "message"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_mistake_is_refused_with_its_line(
    old: str, new: str, at: str, below: int, path: str, message: str
) -> None:
    assert old in SAMPLE
    text = SAMPLE.replace(old, new, 1)
    errors = loader.errors_of(text)
    assert [(error.path, error.line) for error in errors] == [(path, line_of(text, at) + below)]
    assert message in errors[0].message


def test_plan_describes_campaign_changes() -> None:
    old = loader.load(SAMPLE)
    new = loader.load(
        SAMPLE.replace("priority: 100", "priority: 90")
        .replace("budget: {points: 1000000}", "budget: {points: 2000000}")
        .replace("      - code: badge\n        award: {badge: BIG_SPENDER}\n", "")
        + "  - code: NEW\n    names: {zh-CN: 新, en: New}\n    on: [sign_in]\n"
        "    rules: [{code: daily, award: {points: 5}}]\n"
    )
    assert changes(old, new) == [
        "campaign BASE budget.points: 1000000 → 2000000",
        "campaign BASE rule per-yuan priority: 100 → 90",
        "campaign SURVEY rule badge removed",
        "campaign NEW added (New): on sign_in; rules daily",
    ]
    assert changes(new, old)[-1] == "campaign NEW removed"


def test_the_demo_campaigns_on_a_saturday_basket() -> None:
    book = rule_book(loader.load(DEMO.read_text()))
    frequent = next(spec for spec in book.campaigns if spec.code == "HIGH_FREQUENCY")
    member_id = next(f"m-{n}" for n in range(100) if arm_of(f"m-{n}", frequent) is None)
    basket = (
        Item("tea", Decimal("20.00"), category="beverages"),
        Item("rice", Decimal("100.00"), category="groceries"),
    )
    saturday = datetime(2026, 5, 9, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
    event = Event("purchase", saturday, amount=Decimal("120.00"), items=basket)
    gold = Member(member_id, tier="GOLD", tier_multiplier=Decimal("1.4"),
                  aggregates={"purchases_30d": 9})  # fmt: skip

    outcome = evaluate(book, event, gold)

    assert [(a.campaign, a.rule, a.points) for a in outcome.applied] == [
        ("BASE", "per-yuan", 120),
        ("BASE", "growth-per-yuan", 0),
        ("BEVERAGES", "per-yuan-on-beverages", 40),
        ("BASE", "tier-multiplier", 64),  # 160 x 1.4
        ("WEEKEND", "double", 224),
        ("HIGH_FREQUENCY", "triple", 896),  # 448 x 3
    ]
    assert (outcome.points, outcome.growth) == (1344, 120)
    assert [
        (s.campaign, s.rule, s.reason)
        for s in outcome.skipped
        if s.reason is not Reason.NOT_THIS_EVENT_TYPE  # the engagement campaigns
    ] == [("HIGH_FREQUENCY", "big-spender-badge", Reason.CONDITION_FALSE)]
