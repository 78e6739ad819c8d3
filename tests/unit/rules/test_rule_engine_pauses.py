"""A paused campaign: its rules give nothing, each skipped as ``paused``, and the rest of the
book runs exactly as if the campaign were not in it (no accrual, no stop, no counter used)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rule_engine_properties import books, events, members

from support.rule_engine import book, campaign, purchase, rule
from tally.rules.engine import Event, Member, Reason, evaluate
from tally.rules.rule_book import FixedPoints, Multiply, RuleBook


@settings(max_examples=150, deadline=None)
@given(books(), events, members, st.data())
def test_pausing_is_taking_the_campaign_out(
    rule_book: RuleBook, event: Event, member: Member, data: st.DataObject
) -> None:
    codes = [spec.code for spec in rule_book.campaigns]
    paused = set(data.draw(st.lists(st.sampled_from(codes), unique=True)))
    rest = book(*(spec for spec in rule_book.campaigns if spec.code not in paused))

    outcome = evaluate(rule_book, event, member, paused=paused)
    without = evaluate(rest, event, member)

    assert outcome.applied == without.applied
    assert outcome.consumption == without.consumption
    assert [s for s in outcome.skipped if s.campaign not in paused] == list(without.skipped)
    assert {(s.campaign, s.rule) for s in outcome.skipped if s.campaign in paused} == {
        (spec.code, rule_spec.code)
        for spec in rule_book.campaigns
        if spec.code in paused
        for rule_spec in spec.rules
    }
    assert {s.reason for s in outcome.skipped if s.campaign in paused} <= {Reason.PAUSED}


def test_a_paused_campaign_is_explained_and_resumes() -> None:
    rules = book(
        campaign("BASE", rule("flat", FixedPoints(10), 10)),
        campaign("DOUBLE", rule("x2", Multiply(None), 5), on=("sign_in",)),
    )

    paused = evaluate(rules, purchase(), Member("m-1"), paused={"BASE", "DOUBLE"})
    running = evaluate(rules, purchase(), Member("m-1"))

    assert paused.points == 0
    assert [(s.campaign, s.rule, s.reason) for s in paused.skipped] == [
        ("BASE", "flat", Reason.PAUSED),
        ("DOUBLE", "x2", Reason.NOT_THIS_EVENT_TYPE),  # its type first: it never ran anyway
    ]
    assert running.points == 10
